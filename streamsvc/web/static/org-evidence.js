// Study evidence at `/sessions/{sid}/evidence`, where it happens: a cell secretary (an organizer
// at a cell) sees the members of their scope, ticks the reflections handed in, confirms members
// who studied on their own (with their reflection), saves only what changed, and uploads the
// quiz platform's CSV export as it is. The server decides everything (scope, who is expected,
// scores in range); the page shows every bad row it lists, and nothing is applied then.

import { $, el, show } from "./common-dom.js";
import { fmtDateTime, fmtInt, fmtNumber } from "./common-format.js";
import {
  account,
  ApiError,
  api,
  can,
  explain,
  message,
  requiresText,
  signIn,
  subtree,
  t,
  unitTree,
} from "./org-common.js";

const ATTENDED = new Set(["present", "late", "made_up"]);
const NOT_CHECKED_IN = new Set(["absent", "excused"]);
const LIMIT = 500; // rows drawn at once: a district has thousands; filters narrow them down

const state = {
  sid: Number(location.pathname.split("/")[2]),
  session: null,
  tree: null,
  records: [], // attendance RECORDs in the caller's scope
  changes: new Map(), // member -> {reflection?, self_study?}: what the person changed, unsaved
};

// -- what a row holds: the stored record, and the person's unsaved changes over it -----------

/** Was the member confirmed as studying on their own (self_study evidence, no check-in)? */
const selfStudied = (r) => r.form === "self_study" && !r.site;

function stored(r) {
  return { reflection: Boolean(r.reflection), self_study: selfStudied(r) };
}

function current(r) {
  return { ...stored(r), ...state.changes.get(r.member) };
}

function change(r, field, value) {
  const next = { ...state.changes.get(r.member), [field]: value };
  const base = stored(r);
  for (const key of Object.keys(next)) if (next[key] === base[key]) delete next[key];
  if (Object.keys(next).length) state.changes.set(r.member, next);
  else state.changes.delete(r.member);
}

/** May the reflection be ticked here? Attended here, or studied on their own (confirmed or about to be). */
function reflectionOpen(r) {
  if (r.status === "made_up") return false; // recorded at the make-up session, where it counts
  return ATTENDED.has(r.status) || current(r).self_study;
}

// -- the table ---------------------------------------------------------------------------

function unitName(code) {
  return state.tree?.byCode.get(code)?.name || code;
}

function fold(text) {
  return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
}

function filtered() {
  const unit = $("filter-unit").value;
  const status = $("filter-status").value;
  const q = fold($("filter-q").value.trim());
  const inside = unit && state.tree ? new Set(subtree(state.tree, unit).map((u) => u.code)) : null;
  return state.records.filter(
    (r) =>
      (!inside || inside.has(r.unit)) &&
      (status !== "attended" || ATTENDED.has(r.status)) &&
      (status !== "absent" || !ATTENDED.has(r.status)) &&
      (!q || r.member.toLowerCase().includes(q) || folded.get(r.member).includes(q)),
  );
}

const folded = new Map(); // member -> name folded for the search, made once per load
const collator = new Intl.Collator("vi"); // one collator: localeCompare("vi") per pair is slow

function statusText(r) {
  return selfStudied(r) ? t("status_self_study") : t("status_" + r.status);
}

function quizCell(r) {
  const cell = el("td", { className: "n quiz" });
  if (r.quiz_score === null || r.quiz_score === undefined) return cell;
  cell.append(fmtNumber(r.quiz_score));
  const pass = state.session.requires?.quiz_pass;
  if (pass !== null && pass !== undefined) {
    const ok = r.quiz_score >= pass;
    cell.append(el("span", { className: "quiz-mark " + (ok ? "ok" : "warn") }, t(ok ? "quiz_passed" : "quiz_failed")));
  }
  return cell;
}

function completedCell(r) {
  if (r.completed === undefined) return el("td", { className: "completed" }, "—");
  return el(
    "td",
    { className: "completed " + (r.completed ? "ok" : "muted") },
    t(r.completed ? "completed_yes" : "completed_no"),
  );
}

function selfStudyCell(r) {
  const cell = el("td", { className: "self-study" });
  const now = current(r);
  const was = stored(r).self_study;
  if (!NOT_CHECKED_IN.has(r.status) && !was) return cell;
  if (now.self_study) cell.append(el("span", { className: "badge self-study-badge" }, t(was ? "self_study_confirmed" : "self_study_pending")));
  if (!can("organizer")) return cell;
  const undo = now.self_study;
  cell.append(
    el(
      "button",
      {
        type: "button",
        className: "small " + (undo ? "secondary undo-self-study" : "confirm-self-study"),
        onclick: () => toggleSelfStudy(r),
      },
      t(undo ? "undo_self_study" : "confirm_self_study"),
    ),
  );
  return cell;
}

function rowFor(r) {
  const now = current(r);
  const box = el("input", {
    type: "checkbox",
    className: "reflection",
    checked: now.reflection,
    disabled: !can("organizer") || !reflectionOpen(r),
    title: r.status === "made_up" ? t("made_up_elsewhere") : "",
    onchange: (event) => {
      change(r, "reflection", event.target.checked);
      refreshRow(r);
      renderChanges();
    },
  });
  box.setAttribute("aria-label", `${t("col_reflection")}: ${r.full_name || r.member}`);
  return el(
    "tr",
    {
      className: state.changes.has(r.member) ? "changed" : "",
      dataset: { member: r.member, status: selfStudied(r) ? "self_study" : r.status, unit: r.unit },
    },
    el("td", {}, el("strong", {}, r.full_name || ""), el("span", { className: "code" }, r.member)),
    el("td", {}, unitName(r.unit)),
    el("td", {}, el("span", { className: `status status-${r.status}` }, statusText(r))),
    el("td", { className: "check-cell" }, box),
    quizCell(r),
    completedCell(r),
    selfStudyCell(r),
  );
}

function refreshRow(r) {
  const old = $("evidence-body").querySelector(`tr[data-member="${CSS.escape(r.member)}"]`);
  if (old) old.replaceWith(rowFor(r));
}

function renderTable() {
  const rows = filtered();
  const body = $("evidence-body");
  body.replaceChildren(...rows.slice(0, LIMIT).map(rowFor));
  show($("evidence-empty"), rows.length === 0);
  show($("evidence-table"), rows.length > 0);
  const more = $("evidence-more");
  more.textContent = t("rows_limited", { shown: fmtInt(LIMIT), total: fmtInt(rows.length) });
  show(more, rows.length > LIMIT);
  const attended = rows.filter((r) => ATTENDED.has(r.status)).length;
  const reflections = rows.filter((r) => current(r).reflection).length;
  const hasCompleted = rows.some((r) => r.completed !== undefined);
  $("evidence-counts").textContent = t(hasCompleted ? "evidence_counts" : "evidence_counts_short", {
    shown: fmtInt(rows.length),
    attended: fmtInt(attended),
    reflections: fmtInt(reflections),
    completed: fmtInt(rows.filter((r) => r.completed).length),
  });
}

function renderChanges() {
  const n = state.changes.size;
  $("save-evidence").disabled = n === 0;
  $("discard-evidence").disabled = n === 0;
  $("changes-count").textContent = n ? t("changes_n", { n: fmtInt(n) }) : t("changes_none");
}

function toggleSelfStudy(r) {
  const confirming = !current(r).self_study;
  change(r, "self_study", confirming);
  // a secretary confirms self-study once the reflection is in: tick it with the confirmation
  // (it can be unticked before saving); taking the confirmation back puts the stored one back
  change(r, "reflection", confirming ? true : stored(r).reflection);
  refreshRow(r);
  renderChanges();
}

function fillUnitFilter() {
  const select = $("filter-unit");
  const keep = select.value;
  select.replaceChildren(el("option", { value: "" }, t("filter_all")));
  if (!state.tree) return;
  // the units of the scope that hold someone on the list, each counting its whole subtree
  const counts = new Map();
  for (const r of state.records) {
    const seen = new Set();
    for (let u = state.tree.byCode.get(r.unit); u && !seen.has(u.code); u = state.tree.byCode.get(u.parent)) {
      seen.add(u.code);
      counts.set(u.code, (counts.get(u.code) || 0) + 1);
    }
  }
  const units = subtree(state.tree, account.me?.unit || null).filter((u) => counts.has(u.code));
  const top = units[0]?.depth || 0;
  for (const u of units) {
    select.append(el("option", { value: u.code }, "\u00a0\u00a0".repeat(Math.max(0, u.depth - top)) + `${u.name} (${fmtInt(counts.get(u.code))})`));
  }
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
}

async function loadRecords() {
  const data = await api(`/api/v1/sessions/${state.sid}/attendance`);
  const order = new Map((state.tree?.ordered || []).map((u, i) => [u.code, i]));
  state.records = data.records.sort(
    (a, b) =>
      (order.get(a.unit) ?? 1e9) - (order.get(b.unit) ?? 1e9) ||
      collator.compare(a.full_name || "", b.full_name || "") ||
      (a.member < b.member ? -1 : a.member > b.member ? 1 : 0),
  );
  folded.clear();
  for (const r of state.records) folded.set(r.member, fold(r.full_name || ""));
  fillUnitFilter();
  renderTable();
  renderChanges();
}

// -- saving and uploading: all or nothing, every bad row shown --------------------------

/** Every bad row of a refused upload; `sent` names the member of a JSON row by its number. */
function showBadRows(list, exc, sent = null) {
  const items = Array.isArray(exc.details) ? exc.details : [];
  list.replaceChildren(
    ...items.map((d) => {
      if (typeof d !== "object" || d === null) return el("li", {}, String(d));
      const member = d.member || (sent && d.row ? sent[d.row - 1]?.member : null);
      const error = d.error || d.message || t("error_forbidden");
      const text = d.row
        ? member
          ? t("bad_row_member", { row: d.row, member, error })
          : t("bad_row", { row: d.row, error })
        : member
          ? `${member}: ${error}`
          : error;
      return el("li", { dataset: { row: String(d.row ?? "") } }, text);
    }),
  );
  show(list, items.length > 0);
}

function refusal(exc) {
  if (exc instanceof ApiError && exc.code === "import_rejected") return t("rejected_title");
  if (exc instanceof ApiError && exc.code === "forbidden" && Array.isArray(exc.details)) return t("forbidden_rows");
  if (exc instanceof ApiError && exc.code === "bad_csv") return `${t("error_bad_csv")} (${exc.message})`;
  return explain(exc);
}

async function saveEvidence() {
  const out = $("save-message");
  const list = $("save-errors");
  message(out, "");
  show(list, false);
  const byMember = new Map(state.records.map((r) => [r.member, r]));
  const rows = [...state.changes.entries()].map(([member, changed]) => {
    const row = { member, ...changed };
    // a self-study confirmation goes with the reflection it was confirmed on
    if ("self_study" in changed && !("reflection" in changed)) {
      row.reflection = current(byMember.get(member)).reflection;
    }
    return row;
  });
  if (!rows.length) return;
  $("save-evidence").disabled = true;
  try {
    const result = await api(`/api/v1/sessions/${state.sid}/evidence`, { method: "POST", body: { evidence: rows } });
    state.changes.clear();
    await loadRecords();
    message(out, t("evidence_saved", { created: fmtInt(result.created), updated: fmtInt(result.updated) }), "ok");
  } catch (exc) {
    message(out, refusal(exc), "error");
    showBadRows(list, exc, rows);
    renderChanges();
  }
}

function discardChanges() {
  state.changes.clear();
  message($("save-message"), "");
  show($("save-errors"), false);
  renderTable();
  renderChanges();
}

async function uploadQuiz(event) {
  event.preventDefault();
  const out = $("quiz-message");
  const list = $("quiz-errors");
  message(out, "");
  show(list, false);
  const file = $("quiz-file").files[0];
  if (!file) {
    message(out, t("choose_file"), "error");
    return;
  }
  $("quiz-upload-button").disabled = true;
  try {
    // the file goes as the quiz platform exported it: the server reads its header loosely
    const result = await api(`/api/v1/sessions/${state.sid}/evidence`, { method: "POST", body: file, contentType: "text/csv" });
    $("quiz-form").reset();
    message(out, t("quiz_imported", { name: file.name, created: fmtInt(result.created), updated: fmtInt(result.updated) }), "ok");
    await loadRecords();
  } catch (exc) {
    message(out, refusal(exc), "error");
    showBadRows(list, exc);
  } finally {
    $("quiz-upload-button").disabled = false;
  }
}

// -- wiring ----------------------------------------------------------------------------

function renderSession() {
  const s = state.session;
  document.title = `${t("evidence_title")} · ${s.title} · ${t("app_name")}`;
  $("evidence-heading").textContent = t("evidence_heading", { title: s.title });
  $("session-when").textContent = t("session_when", {
    starts: fmtDateTime(s.starts_at),
    ends: fmtDateTime(s.ends_at),
    late: fmtInt(s.late_after_minutes),
  });
  $("session-state").textContent = t("state_" + s.state);
  $("session-state").className = `badge state-${s.state}`;
  $("session-requires").textContent = requiresText(s.requires);
}

async function start(session) {
  state.session = session;
  renderSession();
  show(document.querySelector(".read-only"), !can("organizer"));
  try {
    state.tree = unitTree((await api("/api/v1/units")).units);
  } catch {
    state.tree = null; // names fall back to codes, and there is no unit filter
  }
  $("filter-unit").addEventListener("change", renderTable);
  $("filter-status").addEventListener("change", renderTable);
  $("filter-q").addEventListener("input", renderTable);
  $("save-evidence").addEventListener("click", saveEvidence);
  $("discard-evidence").addEventListener("click", discardChanges);
  $("quiz-form").addEventListener("submit", uploadQuiz);
  try {
    await loadRecords();
  } catch (exc) {
    message($("page-error"), explain(exc), "error");
  }
}

export async function evidencePage() {
  document.title = t("app_name");
  $("back-to-session").href = `/sessions/${state.sid}`;
  await signIn(
    async () => {
      try {
        return await api(`/api/v1/sessions/${state.sid}`);
      } catch (exc) {
        if (exc.status === 404) {
          message($("page-error"), t("error_unknown_session"), "error");
          return null;
        }
        throw exc;
      }
    },
    async (session) => {
      if (session) await start(session);
      else show($("app"), false);
    },
  );
}
