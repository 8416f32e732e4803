// The audit page at `/audit` (admins): every recorded change about the admin's scope, newest
// first, filtered by dates, session, user and action, and the same list as CSV.

import { $, el, show } from "./common-dom.js";
import { fmtDateTime, fmtInt } from "./common-format.js";
import { api, downloadFile, explain, hasLabel, message, signIn, t } from "./org-common.js";

// the contract's actions; an action the service adds later still shows, by its code
const ACTIONS = [
  "login",
  "login_failed",
  "logout",
  "user_created",
  "user_changed",
  "roster_imported",
  "session_created",
  "session_closed",
  "site_created",
  "site_token_reset",
  "excuse_recorded",
  "excuse_withdrawn",
  "checkin_voided",
  "session_changed",
  "evidence_recorded",
  "plan_recorded",
  "plan_withdrawn",
];

const actionLabel = (action) => (hasLabel("action_" + action) ? t("action_" + action) : action);

/** The filters as a query string (empty fields left out). */
function query() {
  const params = new URLSearchParams();
  for (const [name, id] of [["from", "a-from"], ["to", "a-to"], ["session", "a-session"], ["user", "a-user"], ["action", "a-action"]]) {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  }
  const text = params.toString();
  return text ? "?" + text : "";
}

function detailText(detail) {
  if (detail === null || detail === undefined) return "";
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

function renderEntries(entries) {
  const body = $("audit-body");
  body.replaceChildren(
    ...entries.map((e) =>
      el(
        "tr",
        { dataset: { action: e.action, user: e.user || "" } },
        el("td", { className: "since" }, fmtDateTime(e.at)),
        el("td", {}, e.user || ""),
        el("td", {}, actionLabel(e.action)),
        el("td", {}, e.session ? el("a", { href: `/sessions/${e.session}` }, String(e.session)) : ""),
        el("td", {}, e.target || ""),
        el("td", { className: "detail" }, detailText(e.detail)),
        el("td", {}, e.address || ""),
      ),
    ),
  );
  show($("audit-empty"), entries.length === 0);
  show($("audit-table"), entries.length > 0);
  $("audit-count").textContent = t("entries_count", { n: fmtInt(entries.length) });
}

async function load() {
  message($("audit-error"), "");
  try {
    renderEntries((await api("/api/v1/audit" + query())).entries);
  } catch (exc) {
    message($("audit-error"), explain(exc), "error");
  }
}

async function downloadCsv() {
  message($("audit-error"), "");
  try {
    await downloadFile("/api/v1/audit.csv" + query(), "audit.csv");
  } catch (exc) {
    message($("audit-error"), explain(exc), "error");
  }
}

async function start(data) {
  if (!data) {
    message($("page-error"), t("admins_only"), "error");
    return;
  }
  $("a-action").replaceChildren(
    el("option", { value: "" }, t("action_all")),
    ...ACTIONS.map((a) => el("option", { value: a }, actionLabel(a))),
  );
  renderEntries(data.entries);
  $("audit-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("audit-csv").addEventListener("click", downloadCsv);
}

export async function auditPage() {
  document.title = `${t("audit_title")} · ${t("app_name")}`;
  await signIn((me) => (me.role === "admin" ? api("/api/v1/audit") : null), start);
}
