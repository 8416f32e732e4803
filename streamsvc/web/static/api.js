// The API reference page: draws every operation of /api/v1/openapi.json, so the page cannot
// drift from the document the tests check against the service.
import { $, el, show } from "./common-dom.js";
import { labelsFor } from "./common-labels.js";

const SPEC = "/api/v1/openapi.json";
const { t, applyLabels } = labelsFor("api");

/** A schema as a short, readable type: refs by name, objects as {field: type}. */
function typeText(schema, depth = 0) {
  if (!schema) return "any";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.allOf) return schema.allOf.map((s) => typeText(s, depth)).join(" & ");
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const types = [].concat(schema.type ?? "any");
  if (types.includes("array")) return `[${typeText(schema.items, depth)}]`;
  if (types.includes("object") && schema.properties) {
    const pad = "  ".repeat(depth + 1);
    const required = new Set(schema.required ?? []);
    const lines = Object.entries(schema.properties).map(
      ([name, sub]) => `${pad}${name}${required.has(name) ? "" : "?"}: ${typeText(sub, depth + 1)}`,
    );
    return `{\n${lines.join(",\n")}\n${"  ".repeat(depth)}}`;
  }
  const format = schema.format ? ` (${schema.format})` : "";
  return types.join(" | ") + format;
}

function resolve(spec, item) {
  if (!item?.$ref) return item;
  return item.$ref.slice(2).split("/").reduce((node, key) => node[key], spec);
}

/** One line per media type; a schema that spans lines gets a block of its own. */
function contentList(content) {
  return Object.entries(content ?? {}).map(([type, media]) => {
    const text = media.schema ? typeText(media.schema) : "";
    if (!text.includes("\n")) {
      return el("dd", {}, el("span", { className: "api-code" }, text ? `${type}: ${text}` : type));
    }
    return el("dd", {}, el("span", { className: "api-code" }, type),
      el("pre", { className: "api-schema" }, text));
  });
}

function operation(spec, path, method, op) {
  const id = `${method}-${path}`.replace(/[^a-z0-9]+/gi, "-");
  const auth = (op.security ?? []).flatMap((s) => Object.keys(s));
  const parts = [
    el("dt", {}, t("auth")),
    el("dd", {}, auth.length
      ? auth.map((name) => `${name}: ${spec.components.securitySchemes[name].description}`).join("; ")
      : t("auth_none")),
  ];
  if (op.parameters?.length) {
    parts.push(el("dt", {}, t("parameters")));
    for (const p of op.parameters) {
      parts.push(el("dd", {},
        el("span", { className: "api-code" }, `${p.name} (${p.in}): ${typeText(p.schema)}`),
        p.required ? ` — ${t("required")}` : "",
        p.description ? el("span", { className: "api-muted" }, ` — ${p.description}`) : ""));
    }
  }
  if (op.requestBody) {
    parts.push(el("dt", {}, t("body")), ...contentList(op.requestBody.content));
  }
  parts.push(el("dt", {}, t("responses")));
  for (const [status, raw] of Object.entries(op.responses)) {
    const answer = resolve(spec, raw);
    parts.push(el("dd", {}, el("strong", {}, status), ` ${answer.description ?? ""}`));
    parts.push(...contentList(answer.content));
  }
  return el("section", { className: "card api-op", id },
    el("h3", {}, el("span", { className: `api-method ${method}` }, method),
      el("span", { className: "api-path" }, path), el("span", { className: "api-muted" }, op.summary)),
    op.description ? el("p", {}, op.description) : null,
    el("dl", {}, ...parts));
}

function draw(spec) {
  document.title = `${spec.info.title} API ${spec.info.version}`;
  $("intro").textContent = t("intro", { spec: SPEC });
  const toc = el("ul");
  const ops = $("operations");
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const section = operation(spec, path, method, op);
      ops.append(section);
      toc.append(el("li", {}, el("a", { href: `#${section.id}` }, `${method.toUpperCase()} ${path}`)));
    }
  }
  $("toc").append(toc);
  for (const [name, schema] of Object.entries(spec.components.schemas)) {
    $("schemas").append(el("h3", { id: `schema-${name}` }, name),
      el("pre", { className: "api-schema" }, typeText(schema)));
  }
}

async function main() {
  applyLabels();
  try {
    const response = await fetch(SPEC);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    draw(await response.json());
  } catch (err) {
    $("error").textContent = t("load_failed", { detail: err.message });
    show($("error"));
  }
}

main();
