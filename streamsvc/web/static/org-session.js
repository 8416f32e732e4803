// One session at `/sessions/{sid}`: the live dashboard, sites and their coordinator tokens,
// excuses, closing, and the reconciled attendance with its downloads. What changes something
// (sites, token resets, excuses, closing) is offered to organizers and admins only.

import { drawCurve } from "./org-chart.js";
import { $, el, show } from "./common-dom.js";
import { fmtDateTime, fmtInt, fmtPct, localInput } from "./common-format.js";
import {
  account,
  api,
  can,
  downloadFile,
  explain,
  getToken,
  message,
  ratio,
  requiresText,
  signIn,
  signInAgain,
  subtree,
  t,
  unitTree,
} from "./org-common.js";
import { LiveConnection } from "./org-live.js";
import { SitePager } from "./org-live-sites.js";
import { checkinLink, qrSvg } from "./org-site-link.js";
import { setupSitesUpload } from "./org-sites-upload.js";

const KINDS = ["hall", "bridge", "broadcast", "self_study"];
const MINUTE = 60_000;
// Past this many sites LIVE would be megabytes: the monitor then sends no sites and units only
// a few levels down (`DEPTH`), the unit table drills by re-opening it on a unit, and the site
// table is read a page at a time (org-live-sites.js).
const MANY_SITES = 300;
// the view's top units and their children: all the table shows. Two levels would be every
// cell of a nation's communes; whether a child opens further is read from the unit tree.
const DEPTH = 1;
const SITE_ORDERS = ["name", "present", "last_event_at"];

const state = {
  sid: Number(location.pathname.split("/").pop()),
  session: null,
  tree: null, // the whole unit tree (GET /api/v1/units)
  live: null, // expected, present, guests, unexpected
  sites: new Map(),
  units: new Map(), // LIVE units by code, in LIVE's depth-first order
  curve: new Map(), // minute (ISO) -> check-ins
  focus: null, // the unit whose children the unit table shows; null: the audience roots
  connection: null,
  big: false, // many sites: see MANY_SITES
  path: [], // big: the units drilled into, [{code, name}], the last one watched (`unit`)
  pager: null, // big: the per-site table read page by page
};

/** The unit a big session's monitor watches (null: the caller's whole view). */
const viewUnit = () => state.path.at(-1)?.code || null;

function monitorOptions() {
  return state.big ? { sites: "none", depth: DEPTH, unit: viewUnit() } : {};
}

// -- the live dashboard -------------------------------------------------------------------

function setLiveState(kind) {
  const pill = $("live-status");
  pill.dataset.state = kind;
  pill.textContent = t(kind === "live" ? "live" : kind === "offline" ? "not_live" : "connecting");
  $("numbers").dataset.stale = String(kind !== "live");
  const banner = $("live-banner");
  if (kind === "offline" || (kind === "connecting" && state.live)) {
    banner.textContent = t(kind === "offline" ? "not_live_banner" : "connecting_banner");
    show(banner, true);
  } else {
    show(banner, false);
  }
}

function setLive(node, text, value) {
  node.textContent = text;
  node.dataset.value = String(value);
}

function renderNumbers() {
  const { present, expected, guests, unexpected } = state.live;
  const rate = ratio(present, expected);
  setLive(document.querySelector('[data-live="present"]'), fmtInt(present), present);
  setLive(document.querySelector('[data-live="expected"]'), fmtInt(expected), expected);
  setLive(document.querySelector('[data-live="rate"]'), fmtPct(rate), rate.toFixed(4));
  setLive(document.querySelector('[data-live="guests"]'), fmtInt(guests), guests);
  setLive(document.querySelector('[data-live="unexpected"]'), fmtInt(unexpected), unexpected);
  $("rate-bar").style.width = `${Math.min(100, rate * 100)}%`;
  $("rate-bar").classList.toggle("done", expected > 0 && present >= expected);
  const missing = Math.max(0, expected - present);
  $("rate-goal").textContent = missing ? t("goal_missing", { n: fmtInt(missing) }) : t("goal_reached");
}

function bar(part, whole) {
  const r = ratio(part, whole);
  return el(
    "div",
    { className: "bar" + (whole > 0 && part >= whole ? " done" : "") },
    el("div", { className: "bar-fill", style: { width: `${Math.min(100, r * 100)}%` } }),
  );
}

function unitRow(u, drill, className = "") {
  const name = drill
    ? el("button", { type: "button", className: "link-button drill", onclick: drill, title: t("drill_down") }, u.name)
    : el("span", {}, u.name);
  return el(
    "tr",
    { className, dataset: { unit: u.code, present: String(u.present), expected: String(u.expected) } },
    el("td", {}, name, el("span", { className: "code" }, u.code)),
    el("td", { className: "n" }, `${fmtInt(u.present)} / ${fmtInt(u.expected)}`),
    el("td", {}, el("div", { className: "rate-cell" }, bar(u.present, u.expected), el("span", { className: "pct" }, fmtPct(ratio(u.present, u.expected))))),
  );
}

/**
 * A big session's units: LIVE holds only the view's top levels, so drilling re-opens the
 * monitor on the unit (the server keeps it inside the scope) and the crumbs lead back up.
 */
function renderBigUnits() {
  const units = [...state.units.values()];
  const inLive = new Set(units.map((u) => u.parent).filter(Boolean));
  // past DEPTH, LIVE cannot say whether a unit has children: the unit tree can (if it loaded)
  const opens = (code) => inLive.has(code) || !state.tree || Boolean(state.tree.byCode.get(code)?.children.length);
  const tops = units.filter((u) => !u.parent);
  // one top (the unit drilled into, or a province's whole committee): its children under it
  const single = tops.length === 1 ? tops[0] : null;
  const rows = single ? [single, ...units.filter((u) => u.parent === single.code)] : tops;

  const crumbs = $("unit-crumbs");
  crumbs.setAttribute("aria-label", t("units_path"));
  const last = state.path.length - 1;
  const crumb = (label, depth) =>
    depth === last
      ? el("span", { className: "crumb current" }, label)
      : el("button", { type: "button", className: "crumb link-button", onclick: () => watchUnit(depth) }, label);
  crumbs.replaceChildren(crumb(t("units_all"), -1), ...state.path.map((p, i) => crumb(p.name, i)));

  const body = $("units-body");
  body.replaceChildren(
    ...rows.map((u) => {
      const head = single && u.code === single.code;
      const drill = !head && opens(u.code) ? () => drillInto(u) : null;
      return unitRow(u, drill, single && !head ? "child" : "");
    }),
  );
  if (!rows.length) body.append(el("tr", {}, el("td", { colSpan: 3, className: "message" }, t("no_units"))));
}

/** Big session: watch `unit`'s subtree (one level further down the crumbs). */
function drillInto(unit) {
  state.path.push({ code: unit.code, name: unit.name });
  rewatch();
}

/** Big session: back up the crumbs to `depth` (-1: the caller's whole view). */
function watchUnit(depth) {
  state.path = state.path.slice(0, depth + 1);
  rewatch();
}

function rewatch() {
  state.units = new Map();
  renderBigUnits();
  renderSitesScope();
  state.pager?.reset();
  state.connection.reopen(monitorOptions());
}

function renderUnits() {
  if (state.big) {
    renderBigUnits();
    return;
  }
  const units = [...state.units.values()];
  if (state.focus && !state.units.has(state.focus)) state.focus = null;
  let rows = units.filter((u) => (u.parent || null) === state.focus);
  const hasChildren = new Set(units.map((u) => u.parent).filter(Boolean));
  // One root (a province's whole committee) says little alone: show its children under it.
  const single = state.focus === null && rows.length === 1 ? rows[0].code : null;
  if (single) rows = [rows[0], ...units.filter((u) => u.parent === single)];

  const crumbs = $("unit-crumbs");
  crumbs.replaceChildren();
  crumbs.setAttribute("aria-label", t("units_path"));
  const chain = [];
  for (let code = state.focus; code; code = state.units.get(code)?.parent) chain.unshift(code);
  const crumb = (label, code, current) =>
    current
      ? el("span", { className: "crumb current" }, label)
      : el("button", { type: "button", className: "crumb link-button", onclick: () => focusUnit(code) }, label);
  crumbs.append(crumb(t("units_all"), null, chain.length === 0));
  chain.forEach((code, i) => crumbs.append(crumb(state.units.get(code).name, code, i === chain.length - 1)));

  const body = $("units-body");
  body.replaceChildren();
  for (const u of rows) {
    const drill = hasChildren.has(u.code) ? () => focusUnit(u.code) : null;
    body.append(unitRow(u, drill, single && u.code !== single ? "child" : ""));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { colSpan: 3, className: "message" }, t("no_units"))));
}

function focusUnit(code) {
  state.focus = code;
  renderUnits();
}

function minutesSince(iso) {
  if (!iso) return t("never");
  const minutes = Math.floor((Date.now() - Date.parse(iso)) / MINUTE);
  return minutes < 1 ? t("just_now") : t("minutes_ago", { n: fmtInt(minutes) });
}

function siteRow(s) {
  const count = el("td", { className: "n" }, fmtInt(s.present));
  if (s.guests) count.append(el("span", { className: "guests" }, t("plus_guests", { n: fmtInt(s.guests) })));
  if (s.capacity) count.append(el("span", { className: "capacity" }, t("of_capacity", { n: fmtInt(s.capacity) })));
  return el(
    "tr",
    {
      className: s.connected ? "" : "silent",
      dataset: { siteId: String(s.id), connected: String(s.connected), present: String(s.present) },
    },
    el("td", {}, s.name),
    el("td", {}, t("kind_" + s.kind)),
    count,
    el("td", {}, el("span", { className: "dot " + (s.connected ? "on" : "off") }), s.connected ? t("site_connected") : t("site_silent")),
    el("td", { className: "since" }, minutesSince(s.last_event_at)),
    el(
      "td",
      { dataset: { needs: "organizer" } },
      el("button", { type: "button", className: "small secondary reset-token", onclick: () => askReset(s) }, t("reset_token")),
    ),
  );
}

function renderSites() {
  if (state.big) return; // the pager draws the page it read
  const sites = [...state.sites.values()].sort((a, b) => a.id - b.id);
  $("sites-body").replaceChildren(...sites.map(siteRow));
  show($("sites-empty"), sites.length === 0);
  show($("sites-table"), sites.length > 0);
}

/** One page of a big session's sites, as the pager read it. */
function renderSitePage(sites) {
  $("sites-body").replaceChildren(...sites.map(siteRow));
  show($("sites-table"), true);
}

function renderSitesScope() {
  const unit = state.path.at(-1);
  $("sites-scope").textContent = unit ? t("sites_in_unit", { unit: unit.name }) : t("sites_in_view");
}

/** Many sites: the site table turns into pages read from the server (the caller re-opens the
 * monitor without sites). */
function enterBig() {
  if (state.big) return;
  state.big = true;
  state.focus = null;
  state.sites = new Map();
  show($("sites-empty"), false);
  show($("sites-paged"), true);
  show($("sites-pager"), true);
  $("sites-kind").replaceChildren(
    el("option", { value: "" }, t("sites_kind_any")),
    ...KINDS.map((k) => el("option", { value: k }, t("kind_" + k))),
  );
  $("sites-order").replaceChildren(...SITE_ORDERS.map((o) => el("option", { value: o }, t("sites_order_" + o))));
  renderSitesScope();
  state.pager = new SitePager(state.sid, { render: renderSitePage, unit: viewUnit });
  state.pager.start();
}

/** How many sites the session has, from one row of the paged list (null: not known). */
async function countSites() {
  try {
    return (await api(`/api/v1/sessions/${state.sid}/live/sites?limit=1`)).total;
  } catch {
    return null; // a server without the paged list: the first snapshot tells
  }
}

/**
 * Is LIVE restricted to a subtree? Its `curve` is then always empty (a curve per scope would
 * cost work per check-in), which must not read as "no check-ins yet". A signed-in user's unit
 * may be the tree's one root (the whole tree, with a curve); the page cannot tell that from
 * its units (a scoped user's tree has one root too), so a curve that arrives says so.
 */
function scopedView() {
  if (state.big && viewUnit()) return true;
  return Boolean(account.me?.unit) && state.curve.size === 0;
}

function renderCurve() {
  if (scopedView()) {
    $("curve").replaceChildren(el("p", { className: "hint curve-scoped" }, t("curve_whole_session_only")));
    return;
  }
  const curve = [...state.curve.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([minute, checkins]) => ({ minute, checkins }));
  const until = state.session.closed_at ? Date.parse(state.session.closed_at) : null;
  drawCurve($("curve"), curve, state.session.starts_at, until);
}

/** Too many sites for the whole list: switch to pages (true when it did). */
function tooManySites() {
  if (state.big || state.sites.size <= MANY_SITES) return false;
  enterBig();
  state.connection.reopen(monitorOptions());
  return true;
}

function onSnapshot(live) {
  state.live = live;
  state.sites = new Map(live.sites.map((s) => [s.id, s]));
  state.units = new Map(live.units.map((u) => [u.code, u]));
  state.curve = new Map((live.curve || []).map((p) => [p.minute, p.checkins]));
  if (tooManySites()) state.sites = new Map();
  renderAll();
}

function onDelta(delta) {
  for (const key of ["present", "unexpected", "guests"]) {
    if (key in delta) state.live[key] = delta[key];
  }
  for (const s of delta.sites || []) state.sites.set(s.id, s);
  for (const u of delta.units || []) state.units.set(u.code, u);
  for (const p of delta.curve || []) {
    if (p.checkins) state.curve.set(p.minute, p.checkins);
    else state.curve.delete(p.minute);
  }
  if (tooManySites()) state.sites = new Map();
  renderAll();
}

function renderAll() {
  renderNumbers();
  renderUnits();
  renderSites();
  renderCurve();
}

function onFatal(code) {
  if (code === "forbidden" && state.big && state.path.length) {
    watchUnit(-1); // a unit out of reach (the scope changed): back to the whole view
    return;
  }
  setLiveState("offline");
  if (code === "unauthorized") {
    signInAgain();
  } else {
    message($("page-error"), t("error_unknown_session"), "error");
  }
}

// -- the session head -----------------------------------------------------------------------

/** Does the unit lie in the signed-in person's scope? (Units outside it may be unknown here.) */
function insideScope(code) {
  const root = account.me?.unit;
  if (!root) return true;
  const seen = new Set();
  for (let unit = state.tree?.byCode.get(code); unit && !seen.has(unit.code); unit = state.tree.byCode.get(unit.parent)) {
    if (unit.code === root) return true;
    seen.add(unit.code);
  }
  return false;
}

function renderSession() {
  const s = state.session;
  document.title = `${s.title} · ${t("app_name")}`;
  $("session-title").textContent = s.title;
  $("session-when").textContent = t("session_when", {
    starts: fmtDateTime(s.starts_at),
    ends: fmtDateTime(s.ends_at),
    late: fmtInt(s.late_after_minutes),
  });
  const badge = $("session-state");
  badge.textContent = t("state_" + s.state);
  badge.className = `badge state-${s.state}`;
  const names = s.audience.map((code) => state.tree?.byCode.get(code)?.name || code);
  $("session-audience").textContent = names.length
    ? t("audience_is", { units: names.join(", ") })
    : s.makeup_for
      ? t("audience_makeup", { id: s.makeup_for })
      : "";
  $("session-requires").textContent = requiresText(s.requires);
  $("evidence-link").href = `/sessions/${s.id}/evidence`;
  const closed = s.state === "closed";
  // an organizer closes only a session whose whole audience lies inside their scope
  const canClose = !closed && can("organizer") && s.audience.every(insideScope);
  show($("close-session"), canClose);
  show($("preview-summary"), !closed);
  $("close-heading").textContent = t(canClose || closed ? "close_title" : "results_title");
  $("close-hint").textContent = closed ? t("closed_at", { at: fmtDateTime(s.closed_at) }) : t("close_hint");
  show($("close-hint"), closed || canClose);
  show($("new-site-toggle"), !closed);
  show($("upload-sites-toggle"), !closed);
  if (closed) show($("site-form"), false);
}

// -- sites and their coordinator tokens -----------------------------------------------------

function fillSiteForm() {
  const kind = $("s-kind");
  kind.replaceChildren(...KINDS.map((k) => el("option", { value: k }, t("kind_" + k))));
  const unit = $("s-unit");
  const scope = account.me?.unit || null;
  // a site with no unit needs the whole tree; a scoped organizer registers sites of the scope
  unit.replaceChildren(...(scope ? [] : [el("option", { value: "" }, t("unit_none"))]));
  const units = state.tree ? subtree(state.tree, scope) : [];
  const top = units[0]?.depth || 0;
  for (const u of units) {
    unit.append(el("option", { value: u.code }, "\u00a0\u00a0".repeat(u.depth - top) + u.name));
  }
}

async function registerSite(event) {
  event.preventDefault();
  const error = $("site-error");
  message(error, "");
  const capacity = $("s-capacity").value;
  try {
    const site = await api(`/api/v1/sessions/${state.sid}/sites`, {
      method: "POST",
      body: {
        name: $("s-name").value.trim(),
        kind: $("s-kind").value,
        unit: $("s-unit").value || null,
        capacity: capacity === "" ? null : Number(capacity),
      },
    });
    $("site-form").reset();
    show($("site-form"), false);
    showToken(site);
  } catch (exc) {
    message(error, explain(exc), "error");
  }
}

/** The coordinator's token, link and QR code, shown once: after registering or a reset. */
function showToken(site, reset = false) {
  const link = checkinLink(site.token);
  $("site-token-title").textContent = t(reset ? "site_token_reset" : "site_registered", { name: site.name });
  $("site-token-note").textContent = t(reset ? "token_reset_note" : "token_once");
  $("site-token").textContent = site.token;
  $("site-link").textContent = link;
  $("site-link").href = link;
  $("site-qr").innerHTML = qrSvg(link, t("qr_title", { name: site.name }));
  show($("site-copied"), false);
  show($("site-token-panel"), true);
  $("site-token-panel").scrollIntoView({ block: "nearest" });
}

let resetSite = null;

function askReset(site) {
  resetSite = site;
  message($("reset-error"), "");
  $("reset-question").textContent = t("reset_token_question", { name: site.name });
  $("reset-dialog").returnValue = ""; // Escape keeps the last value: it must not confirm
  $("reset-dialog").showModal();
}

async function resetToken() {
  const site = resetSite;
  resetSite = null;
  if (!site) return;
  try {
    const { token } = await api(`/api/v1/sessions/${state.sid}/sites/${site.id}/token`, { method: "POST" });
    showToken({ ...site, token }, true);
  } catch (exc) {
    message($("reset-error"), explain(exc), "error");
  }
}

function hideToken() {
  // the token is shown once: take it out of the page when the organizer is done with it
  $("site-token").textContent = "";
  $("site-link").textContent = "";
  $("site-link").removeAttribute("href");
  $("site-qr").replaceChildren();
  show($("site-token-panel"), false);
}

async function copyLink() {
  const link = $("site-link").textContent;
  try {
    await navigator.clipboard.writeText(link);
  } catch {
    // no clipboard outside a secure context: select the link so that the person can copy it
    const range = document.createRange();
    range.selectNodeContents($("site-link"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  show($("site-copied"), true);
}

function printToken() {
  document.body.classList.add("print-token");
  window.print();
  document.body.classList.remove("print-token");
}

// -- excuses ----------------------------------------------------------------------------

let excuseMember = null;
let lastExcused = null; // the member just excused, whose excuse can be withdrawn at once

async function withdrawExcuse() {
  const member = lastExcused;
  if (!member) return;
  const out = $("excuse-message");
  try {
    await api(`/api/v1/sessions/${state.sid}/excuses/${encodeURIComponent(member.code)}`, { method: "DELETE" });
    lastExcused = null;
    show($("excuse-withdraw"), false);
    message(out, t("excuse_withdrawn", { name: member.full_name }), "ok");
    if (!$("summary").hidden) await loadSummary();
  } catch (exc) {
    message(out, explain(exc), "error");
  }
}

async function searchMembers(event) {
  event.preventDefault();
  const q = $("member-q").value.trim();
  const list = $("member-results");
  message($("excuse-message"), "");
  list.replaceChildren();
  if (!q) return;
  try {
    const data = await api(`/api/v1/members?q=${encodeURIComponent(q)}&limit=20`);
    if (!data.members.length) {
      list.append(el("li", { className: "message" }, t("no_members_found")));
      return;
    }
    for (const m of data.members) {
      const unit = state.tree?.byCode.get(m.unit)?.name || m.unit;
      list.append(
        el(
          "li",
          { dataset: { member: m.code } },
          el("span", { className: "who" }, el("strong", {}, m.full_name), el("span", { className: "code" }, m.code), el("span", { className: "hint" }, unit)),
          el("button", { type: "button", className: "small", onclick: () => pickMember(m) }, t("choose")),
        ),
      );
    }
    if (data.total > data.members.length) {
      list.append(el("li", { className: "hint" }, t("more_members", { n: fmtInt(data.total - data.members.length) })));
    }
  } catch (exc) {
    message($("excuse-message"), explain(exc), "error");
  }
}

function pickMember(member) {
  excuseMember = member;
  lastExcused = null;
  show($("excuse-withdraw"), false);
  $("excuse-member").textContent = `${member.full_name} (${member.code})`;
  show($("excuse-form"), true);
  $("excuse-reason").focus();
}

async function recordExcuse(event) {
  event.preventDefault();
  if (!excuseMember) return;
  const out = $("excuse-message");
  try {
    await api(`/api/v1/sessions/${state.sid}/excuses`, {
      method: "POST",
      body: { member: excuseMember.code, reason: $("excuse-reason").value.trim() },
    });
    message(out, t("excuse_recorded", { name: excuseMember.full_name }), "ok");
    lastExcused = excuseMember;
    show($("excuse-withdraw"), true);
    excuseMember = null;
    $("excuse-form").reset();
    show($("excuse-form"), false);
    $("member-results").replaceChildren();
    $("member-q").value = "";
    if (!$("summary").hidden) await loadSummary();
  } catch (exc) {
    message(out, explain(exc), "error");
  }
}

// -- closing and the reconciled attendance --------------------------------------------------

async function closeSession() {
  const error = $("close-error");
  message(error, "");
  try {
    state.session = await api(`/api/v1/sessions/${state.sid}/close`, { method: "POST" });
    renderSession();
    await loadSummary();
    if (state.session.plans) await loadPlans();
  } catch (exc) {
    message(error, explain(exc), "error");
  }
}

async function loadSummary() {
  const data = await api(`/api/v1/sessions/${state.sid}/summary`);
  const closed = state.session.state === "closed";
  $("summary-title").textContent = t(closed ? "summary_title" : "summary_preview_title");
  // after the close, completion (attended and met the session's requirements) stands next to
  // attendance: before it, reflections and quiz results are still coming in
  const completion = closed && data.total.completed !== undefined;
  for (const th of document.querySelectorAll("table.summary th.completion")) show(th, completion);
  const row = (name, s, attrs = {}, depth = 0) =>
    el(
      "tr",
      attrs,
      el("td", { style: { paddingLeft: `${0.5 + depth * 1.1}rem` } }, name),
      el("td", { className: "n" }, fmtInt(s.expected)),
      el("td", { className: "n" }, fmtInt(s.present)),
      el("td", { className: "n" }, fmtInt(s.late)),
      el("td", { className: "n" }, fmtInt(s.excused)),
      el("td", { className: "n" }, fmtInt(s.made_up)),
      el("td", { className: "n" + (s.absent ? " warn" : "") }, fmtInt(s.absent)),
      el("td", { className: "n" }, fmtPct(s.rate)),
      completion ? el("td", { className: "n completion", dataset: { completed: String(s.completed) } }, fmtInt(s.completed)) : null,
      completion ? el("td", { className: "n completion completion-rate" }, fmtPct(ratio(s.completed, s.expected))) : null,
    );
  $("summary-body").replaceChildren(
    ...data.units.map((u) => row(u.name, u, { dataset: { summaryUnit: u.code } }, state.tree?.byCode.get(u.code)?.depth || 0)),
  );
  $("summary-total").replaceChildren(row(t("total"), data.total, { dataset: { summaryUnit: "" }, className: "total" }));
  show($("summary"), true);
}

async function download(format) {
  const error = $("download-error");
  message(error, "");
  try {
    await downloadFile(`/api/v1/sessions/${state.sid}/attendance.${format}`, `session-${state.sid}-attendance.${format}`);
  } catch (exc) {
    message(error, explain(exc), "error");
  }
}

// -- action plans ---------------------------------------------------------------------------

const KIND_ORDER = ["committee", "head"];
let planTarget = null; // {unit, kind} the record dialog is about

function isLate(plan, due) {
  return Boolean(due && plan && Date.parse(plan.handed_in_at) > Date.parse(due));
}

function planCell(unit, kind, due) {
  const cell = el("td", { className: "plan-cell", dataset: { kind } });
  if (!unit.owed.includes(kind)) {
    cell.append(t("plan_not_owed"));
    return cell;
  }
  const plan = unit[kind];
  const mayRecord = can("organizer") && insideScope(unit.code);
  if (plan) {
    const box = el(
      "div",
      { className: "plan" },
      el("span", {}, t("plan_handed_in", { at: fmtDateTime(plan.handed_in_at) })),
      isLate(plan, due) ? el("span", { className: "badge late-badge" }, t("plan_late")) : null,
      el("span", { className: "hint" }, t("plan_recorded_by", { who: plan.recorded_by })),
      plan.note ? el("span", { className: "hint note" }, plan.note) : null,
    );
    cell.append(box);
    if (mayRecord) {
      cell.append(
        el("button", { type: "button", className: "small secondary withdraw-plan", onclick: () => withdrawPlan(unit, kind) }, t("withdraw_plan")),
      );
    }
  } else {
    cell.append(el("span", { className: "plan-missing" }, t("plan_missing")));
    if (mayRecord) {
      cell.append(
        " ",
        el("button", { type: "button", className: "small record-plan", onclick: () => askPlan(unit, kind) }, t("record_plan")),
      );
    }
  }
  return cell;
}

function kindNames(kinds) {
  return kinds.map((k) => t("plan_kind_" + k)).join(", ");
}

async function loadPlans() {
  let data;
  try {
    data = await api(`/api/v1/sessions/${state.sid}/plans`);
  } catch (exc) {
    message($("plans-message"), explain(exc), "error");
    show($("plans"), true);
    return;
  }
  const rule = data.rule;
  show($("plans"), Boolean(rule));
  if (!rule) return;
  const due = rule.due;
  $("plans-rule").textContent = [
    t("plans_rule", { depth: rule.depth, heads: rule.heads ? t("plans_rule_heads") : "" }),
    due ? t("plans_due", { due: fmtDateTime(due) }) : t("plans_no_due"),
  ].join(" ");
  const body = $("plans-body");
  body.replaceChildren(
    ...data.units.map((u) =>
      el(
        "tr",
        { dataset: { unit: u.code, missing: String(u.missing.length), late: String(Boolean(u.late)) } },
        el("td", {}, u.name, el("span", { className: "code" }, u.code)),
        ...KIND_ORDER.map((kind) => planCell(u, kind, due)),
        el(
          "td",
          { className: u.missing.length ? "plan-missing" : "ok" },
          u.missing.length ? kindNames(u.missing) : t("nothing_missing"),
        ),
      ),
    ),
  );
  show($("plans-table"), data.units.length > 0);
  // how many owe something still, and how many had not handed in everything by the deadline
  const missingNow = data.units.filter((u) => u.missing.length).length;
  const lines = [];
  if (!data.units.length) {
    lines.push(t("plans_none_owed"));
  } else {
    if (due) {
      try {
        const atDue = await api(`/api/v1/sessions/${state.sid}/plans/missing`);
        lines.push(t("plans_missing_at_due", { due: fmtDateTime(atDue.at || due), n: fmtInt(atDue.units.length) }));
        $("plans-missing").dataset.atDue = String(atDue.units.length);
      } catch (exc) {
        lines.push(explain(exc));
      }
    }
    lines.push(missingNow ? t("plans_missing_now", { n: fmtInt(missingNow) }) : t("plans_all_in"));
  }
  $("plans-missing").dataset.now = String(missingNow);
  $("plans-missing").textContent = lines.join(" ");
  $("plans-missing").classList.toggle("error", missingNow > 0);
}

function askPlan(unit, kind) {
  planTarget = { unit, kind };
  message($("plans-message"), "");
  $("plan-dialog-title").textContent = t("plan_dialog_title", { kind: t("plan_kind_" + kind), unit: unit.name });
  $("plan-at").value = localInput(new Date());
  $("plan-at").dataset.default = $("plan-at").value;
  $("plan-note").value = "";
  $("plan-dialog").returnValue = "";
  $("plan-dialog").showModal();
}

async function recordPlan() {
  const target = planTarget;
  planTarget = null;
  if (!target) return;
  const { unit, kind } = target;
  const at = new Date($("plan-at").value);
  const note = $("plan-note").value.trim();
  const body = {};
  // left at "now", the time is the server's own (a phone's clock may run ahead of it)
  if (!Number.isNaN(at.getTime()) && $("plan-at").value !== $("plan-at").dataset.default) {
    body.handed_in_at = at.toISOString();
  }
  if (note) body.note = note;
  try {
    await api(`/api/v1/sessions/${state.sid}/plans/${encodeURIComponent(unit.code)}/${kind}`, { method: "PUT", body });
    await loadPlans();
    message($("plans-message"), t("plan_recorded", { kind: t("plan_kind_" + kind), unit: unit.name }), "ok");
  } catch (exc) {
    const text = exc.code === "invalid" ? t("error_with_detail", { detail: exc.message }) : explain(exc);
    message($("plans-message"), text, "error");
  }
}

async function withdrawPlan(unit, kind) {
  try {
    await api(`/api/v1/sessions/${state.sid}/plans/${encodeURIComponent(unit.code)}/${kind}`, { method: "DELETE" });
    await loadPlans();
    message($("plans-message"), t("plan_withdrawn", { kind: t("plan_kind_" + kind), unit: unit.name }), "ok");
  } catch (exc) {
    message($("plans-message"), explain(exc), "error");
  }
}

// -- wiring -------------------------------------------------------------------------------

async function start(session) {
  state.session = session;
  try {
    state.tree = unitTree((await api("/api/v1/units")).units);
  } catch {
    state.tree = null; // names fall back to codes
  }
  renderSession();
  fillSiteForm();
  setupSitesUpload(state.sid, () => state.session, (code) => state.tree?.byCode.get(code)?.name || code);

  $("new-site-toggle").addEventListener("click", () => {
    show($("site-form"), $("site-form").hidden);
    if (!$("site-form").hidden) $("s-name").focus();
  });
  $("site-form").addEventListener("submit", registerSite);
  $("site-copy").addEventListener("click", copyLink);
  $("site-print").addEventListener("click", printToken);
  $("site-token-done").addEventListener("click", hideToken);
  $("member-search").addEventListener("submit", searchMembers);
  $("excuse-form").addEventListener("submit", recordExcuse);
  $("excuse-withdraw").addEventListener("click", withdrawExcuse);
  $("reset-dialog").addEventListener("close", () => {
    if ($("reset-dialog").returnValue === "reset") resetToken();
    else resetSite = null;
  });
  $("close-session").addEventListener("click", () => {
    $("close-dialog").returnValue = "";
    $("close-dialog").showModal();
  });
  $("close-dialog").addEventListener("close", () => {
    if ($("close-dialog").returnValue === "close") closeSession();
  });
  $("preview-summary").addEventListener("click", () =>
    loadSummary().catch((exc) => message($("close-error"), explain(exc), "error")),
  );
  $("download-csv").addEventListener("click", () => download("csv"));
  $("download-xlsx").addEventListener("click", () => download("xlsx"));
  setInterval(() => {
    if (!state.live) return;
    renderSites(); // "minutes since the last event" moves on without events
    renderCurve();
  }, 30_000);

  $("plan-dialog").addEventListener("close", () => {
    if ($("plan-dialog").returnValue === "record") recordPlan();
    else planTarget = null;
  });
  if (session.state === "closed") {
    loadSummary().catch((exc) => message($("close-error"), explain(exc), "error"));
  }
  if (session.plans) loadPlans();

  if ((await countSites()) > MANY_SITES) enterBig();
  state.connection = new LiveConnection(
    state.sid,
    getToken,
    { onSnapshot, onDelta, onState: setLiveState, onFatal },
    monitorOptions(),
  );
  state.connection.start();
}

export async function sessionPage() {
  document.title = t("app_name");
  setLiveState("connecting");
  await signIn(async () => {
    try {
      return await api(`/api/v1/sessions/${state.sid}`);
    } catch (exc) {
      if (exc.status === 404) {
        message($("page-error"), t("error_unknown_session"), "error");
        return null;
      }
      throw exc;
    }
  }, async (session) => {
    if (session) await start(session);
    else show($("app"), false);
  });
}
