// The sessions list at `/`: open one, or create one with its audience picked from the unit tree.

import { $, el, show } from "./common-dom.js";
import { fmtDateTime, fmtInt, localInput } from "./common-format.js";
import { account, api, explain, message, signIn, subtree, t, unitTree } from "./org-common.js";

let tree = null; // the unit tree the audience is picked from

function renderSessions(sessions) {
  const body = $("sessions-body");
  body.replaceChildren();
  const sorted = [...sessions].sort((a, b) => b.starts_at.localeCompare(a.starts_at) || b.id - a.id);
  for (const s of sorted) {
    const href = `/sessions/${s.id}`;
    body.append(
      el(
        "tr",
        { dataset: { sessionId: String(s.id) } },
        el("td", {}, el("a", { href }, s.title)),
        el("td", {}, fmtDateTime(s.starts_at)),
        el("td", { className: "n" }, fmtInt(s.expected)),
        el("td", {}, el("span", { className: `badge state-${s.state}` }, t("state_" + s.state))),
        el("td", {}, el("a", { href, className: "button small" }, t("open_session"))),
      ),
    );
  }
  show($("sessions-empty"), sessions.length === 0);
  show($("sessions-table"), sessions.length > 0);
  const makeup = $("f-makeup");
  const keep = makeup.value;
  makeup.replaceChildren(el("option", { value: "" }, t("makeup_none")));
  for (const s of sorted) {
    makeup.append(el("option", { value: String(s.id) }, `${s.title} (${fmtDateTime(s.starts_at)})`));
  }
  makeup.value = keep;
}

function renderUnitTree(units) {
  tree = unitTree(units);
  // an organizer's audience lies inside their scope: offer the subtree of their unit only
  const scope = account.me?.unit && tree.byCode.get(account.me.unit);
  const roots = scope ? [scope] : tree.roots;
  const container = $("unit-tree");
  container.replaceChildren();
  if (!roots.length) {
    container.append(el("p", { className: "message" }, t("no_units")));
    return;
  }
  const list = (nodes) =>
    el(
      "ul",
      {},
      ...nodes.map((unit) =>
        el(
          "li",
          {},
          el(
            "label",
            { className: "check" },
            el("input", { type: "checkbox", name: "audience", value: unit.code }),
            el("span", {}, unit.name),
            el("span", { className: "code" }, unit.code),
          ),
          unit.children.length ? list(unit.children) : null,
        ),
      ),
    );
  container.append(list(roots));
  fillPlanDepths();
}

// -- the plan rule: which level of the tree owes an action plan -------------------------

const NAMES_SHOWN = 3;

/** The units under the audience picked so far (the whole scope while none is picked). */
function audienceUnits() {
  if (!tree) return [];
  const picked = [...document.querySelectorAll("input[name=audience]:checked")].map((i) => i.value);
  const roots = picked.length ? picked : [account.me?.unit || null];
  const seen = new Map();
  for (const root of roots) for (const u of subtree(tree, root)) seen.set(u.code, u);
  return [...seen.values()];
}

/** One option per depth of the tree under the audience, named by that depth's units. */
function fillPlanDepths() {
  const select = $("f-plan-depth");
  const keep = select.value;
  const byDepth = new Map();
  for (const u of audienceUnits()) {
    if (!byDepth.has(u.depth)) byDepth.set(u.depth, []);
    byDepth.get(u.depth).push(u.name);
  }
  select.replaceChildren(el("option", { value: "" }, t("plan_depth_none")));
  for (const depth of [...byDepth.keys()].sort((a, b) => a - b)) {
    const names = byDepth.get(depth);
    const shown = names.slice(0, NAMES_SHOWN).join(", ");
    const text =
      names.length > NAMES_SHOWN ? t("plan_depth_more", { names: shown, n: fmtInt(names.length - NAMES_SHOWN) }) : shown;
    select.append(el("option", { value: String(depth) }, t("plan_depth_option", { depth, names: text })));
  }
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
  planRuleChanged();
}

function planRuleChanged() {
  const none = $("f-plan-depth").value === "";
  $("f-plan-heads").disabled = none;
  $("f-plan-due").disabled = none;
}

/** `requires` and `plans` of the new session, or a problem to show instead. */
function rules() {
  const max = $("f-quiz-max").value === "" ? 100 : Number($("f-quiz-max").value);
  const pass = $("f-quiz-pass").value === "" ? null : Number($("f-quiz-pass").value);
  if (pass !== null && !(pass >= 0 && pass <= max)) return { problem: t("quiz_pass_over_max", { max }) };
  const requires = { reflection: $("f-reflection").checked, quiz_pass: pass, quiz_max: max };
  const depth = $("f-plan-depth").value;
  const due = $("f-plan-due").value;
  const plans =
    depth === ""
      ? null
      : { depth: Number(depth), heads: $("f-plan-heads").checked, due: due ? new Date(due).toISOString() : null };
  return { requires, plans };
}

async function createSession(event) {
  event.preventDefault();
  const error = $("session-error");
  message(error, "");
  const audience = [...document.querySelectorAll("input[name=audience]:checked")].map((i) => i.value);
  const makeupFor = $("f-makeup").value ? Number($("f-makeup").value) : null;
  if (!audience.length && makeupFor === null) {
    message(error, t("audience_required"), "error");
    return;
  }
  const { requires, plans, problem } = rules();
  if (problem) {
    message(error, problem, "error");
    return;
  }
  const startsAt = new Date($("f-starts").value);
  const endsAt = new Date($("f-ends").value);
  if (!(endsAt > startsAt)) {
    message(error, t("ends_before_starts"), "error");
    return;
  }
  try {
    const session = await api("/api/v1/sessions", {
      method: "POST",
      body: {
        title: $("f-title").value.trim(),
        starts_at: startsAt.toISOString(),
        ends_at: endsAt.toISOString(),
        audience,
        late_after_minutes: Number($("f-late").value),
        makeup_for: makeupFor,
        requires,
        plans,
      },
    });
    location.assign(`/sessions/${session.id}`);
  } catch (exc) {
    message(error, explain(exc), "error");
  }
}

export async function sessionsPage() {
  document.title = `${t("sessions_title")} · ${t("app_name")}`;
  await signIn(
    () => api("/api/v1/sessions"),
    async (data) => {
      renderSessions(data.sessions);
      const start = new Date();
      start.setSeconds(0, 0);
      start.setMinutes(Math.ceil(start.getMinutes() / 5) * 5);
      $("f-starts").value = localInput(start);
      $("f-ends").value = localInput(new Date(start.getTime() + 2 * 3600 * 1000));
      $("new-session-toggle").addEventListener("click", async () => {
        const section = $("new-session");
        show(section, section.hidden);
        if (!section.hidden) {
          $("f-title").focus();
          try {
            renderUnitTree((await api("/api/v1/units")).units);
          } catch (exc) {
            message($("session-error"), explain(exc), "error");
          }
        }
      });
      $("session-form").addEventListener("submit", createSession);
      $("unit-tree").addEventListener("change", fillPlanDepths);
      $("f-plan-depth").addEventListener("change", planRuleChanged);
    },
  );
}
