// Many sites at once on the session page (organizers): a CSV file sent as it is, or rows pasted
// from a spreadsheet. All or nothing: every bad row the server lists is shown with its site's
// name. On success the tokens, shown once, go out as a CSV of links and a printable QR sheet.

import { $, el, show } from "./common-dom.js";
import { fmtInt } from "./common-format.js";
import { ApiError, api, explain, message, t } from "./org-common.js";
import { forgetUpload, keepUpload, keptUpload, linksCsv, saveText } from "./org-site-link.js";

const COLUMNS = ["name", "kind", "unit", "capacity"];
const KINDS = ["hall", "bridge", "broadcast", "self_study"];

/** Rows of a CSV (or, with `sep` "\t", a spreadsheet's copied cells): quotes, "" and newlines inside. */
export function parseRows(text, sep = ",") {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  const src = text.replace(/^\ufeff/, "");
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"' && field === "") {
      quoted = true;
    } else if (c === sep) {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && src[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((f) => f.trim() !== ""));
}

/** Pasted rows as the API's objects: with or without the header line, by comma or by tab. */
function pastedSites(text) {
  const sep = text.split("\n", 1)[0].includes("\t") ? "\t" : ",";
  let rows = parseRows(text, sep);
  let columns = COLUMNS;
  if (rows.length && rows[0][0].trim().toLowerCase() === "name") {
    columns = rows[0].map((h) => h.trim().toLowerCase());
    rows = rows.slice(1);
  }
  // a kind may be pasted as the page names it ("Hội trường") as well as by its code
  const kinds = new Map(KINDS.map((k) => [t("kind_" + k).toLowerCase(), k]));
  return rows.map((cells) => {
    const site = Object.fromEntries(columns.map((c, i) => [c, (cells[i] ?? "").trim()]));
    const kind = kinds.get((site.kind || "").toLowerCase()) || site.kind || "";
    return { name: site.name || "", kind, unit: site.unit || null, capacity: site.capacity || null };
  });
}

/** The site names of a CSV file by row number (1: the line under the header), to name bad rows. */
async function namesOfFile(file) {
  try {
    const rows = parseRows(await file.text());
    const at = rows.length ? rows[0].map((h) => h.trim()).indexOf("name") : -1;
    return at < 0 ? [] : rows.slice(1).map((r) => r[at] ?? "");
  } catch {
    return [];
  }
}

function showBadRows(exc, names) {
  const list = $("sites-upload-errors");
  const items = Array.isArray(exc.details) ? exc.details : [];
  list.replaceChildren(
    ...items.map((d) => {
      if (typeof d !== "object" || d === null) return el("li", {}, String(d));
      const name = d.row ? names[d.row - 1] : "";
      const error = d.error || d.message || "";
      const text = !d.row ? error : name ? t("bad_site_row", { row: d.row, name, error }) : t("bad_row", { row: d.row, error });
      return el("li", { dataset: { row: String(d.row ?? "") } }, text);
    }),
  );
  show(list, items.length > 0);
}

function refusal(exc) {
  if (exc instanceof ApiError && exc.code === "import_rejected") {
    const n = Array.isArray(exc.details) ? exc.details.length : 0;
    return t("sites_rejected", { n: fmtInt(n) });
  }
  if (exc instanceof ApiError && exc.code === "forbidden" && Array.isArray(exc.details)) return t("forbidden_rows");
  if (exc instanceof ApiError && exc.code === "bad_csv") return t("sites_bad_csv", { detail: exc.message });
  return explain(exc);
}

/**
 * Wire the session page's upload control. `session()` is the session as the page last read it,
 * `unitName(code)` a unit's name for the sheet's cards.
 */
export function setupSitesUpload(sid, session, unitName) {
  let upload = keptUpload(sid); // back from the QR sheet: the tokens are still to be handed out

  function showUploaded() {
    show($("sites-uploaded"), Boolean(upload));
    if (!upload) return;
    $("sites-uploaded-title").textContent = t("sites_registered", { n: fmtInt(upload.sites.length) });
    $("sites-uploaded").dataset.count = String(upload.sites.length);
  }

  async function send(event) {
    event.preventDefault();
    const out = $("sites-upload-message");
    message(out, "");
    show($("sites-upload-errors"), false);
    const file = $("sites-file").files[0];
    const pasted = $("sites-paste").value;
    if (!file && !pasted.trim()) {
      message(out, t("upload_sites_nothing"), "error");
      return;
    }
    let request;
    let names;
    if (file) {
      request = { method: "POST", body: file, contentType: "text/csv" };
    } else {
      const sites = pastedSites(pasted);
      names = sites.map((s) => s.name);
      request = { method: "POST", body: { sites } };
    }
    $("sites-upload-button").disabled = true;
    try {
      const result = await api(`/api/v1/sessions/${sid}/sites`, request);
      upload = {
        title: session().title,
        sites: result.sites.map((s) => ({ ...s, unit_name: s.unit ? unitName(s.unit) : "" })),
      };
      $("sites-upload-form").reset();
      show($("sites-upload-form"), false);
      showUploaded();
      $("sites-uploaded").scrollIntoView({ block: "nearest" });
    } catch (exc) {
      message(out, refusal(exc), "error");
      showBadRows(exc, names || (file ? await namesOfFile(file) : []));
    } finally {
      $("sites-upload-button").disabled = false;
    }
  }

  function downloadLinks() {
    if (upload) saveText(linksCsv(upload.sites), `session-${sid}-site-links.csv`);
  }

  function printSheet() {
    if (!upload) return;
    try {
      keepUpload(sid, upload);
    } catch {
      // a list too long for this tab's storage: the CSV still holds every link
      message($("sites-uploaded-error"), t("sites_sheet_too_big"), "error");
      return;
    }
    location.assign(`/sessions/${sid}/qr-sheet`);
  }

  function forget() {
    upload = null;
    message($("sites-uploaded-error"), "");
    forgetUpload(sid);
    showUploaded();
  }

  $("upload-sites-toggle").addEventListener("click", () => {
    show($("sites-upload-form"), $("sites-upload-form").hidden);
    if (!$("sites-upload-form").hidden) $("sites-file").focus();
  });
  $("sites-upload-form").addEventListener("submit", send);
  $("sites-download-csv").addEventListener("click", downloadLinks);
  $("sites-print-sheet").addEventListener("click", printSheet);
  $("sites-uploaded-done").addEventListener("click", forget);
  showUploaded();
}
