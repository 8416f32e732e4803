// What the coordinator sees on the check-in page: the connection status, the site, the counts,
// the big coloured answer to the latest scan, the search matches, the recent scans with their
// take-back buttons, the guest headcount and the token panel. Only this module writes the DOM
// (the camera's own dialog aside); it reads the state it shows from the roster it is given.

import { $, el } from "./common-dom.js";
import { fmtClock, fmtInt } from "./common-format.js";
import { labelsFor } from "./common-labels.js";

export const { t, hasLabel, applyLabels } = labelsFor("checkin");

const MAX_MATCHES = 8;
const MATCH_DELAY_MS = 80; // typing fast (a scanner) renders the matches once
const ARMED_MS = 4000; // a take-back button stays armed this long

const CONN_LABEL = { connected: "connected", offline: "disconnected", connecting: "reconnecting" };

const STATUS_LABEL = {
  pending: "status_pending",
  ok: "status_ok",
  already: "status_already",
  rejected: "status_rejected",
};

export class View {
  /** onVoid(entry) when a take-back is confirmed; onPick(code) when a match is tapped. */
  constructor(roster, { onVoid, onPick }) {
    this.roster = roster;
    this.onVoid = onVoid;
    this.onPick = onPick;
    this.shownId = null; // the scan the result panel shows
    this.matchTimer = null;
    applyLabels();
    document.title = t("page_title");
  }

  /** `quiet`: no "waiting for the service" note (no token yet, or a refused one). */
  conn(state, quiet) {
    const node = $("conn");
    node.dataset.state = state;
    node.textContent = t(CONN_LABEL[state] ?? "disconnected");
    $("offline-note").hidden = state === "connected" || quiet;
  }

  offlineReady() {
    document.body.dataset.offlineReady = "1";
    $("conn").title = t("offline_ready");
  }

  head(welcome) {
    $("site-name").textContent = welcome.site.name;
    const kind = t(`kind_${welcome.site.kind}`);
    $("session-title").textContent = `${kind} · ${welcome.session.title}`;
    document.title = `${welcome.site.name} · ${t("page_title")}`;
    $("closed-note").hidden = welcome.session.state !== "closed";
  }

  /** The site's count takes in everyone checked in here; beside it, how much of the list is in. */
  counts(waiting) {
    const { here, members } = this.roster;
    const count = $("here-count");
    count.textContent = fmtInt(here.size);
    count.dataset.value = String(here.size);
    $("expected").textContent = members.length
      ? t("of_expected", { p: fmtInt(this.roster.listedPresent()), n: fmtInt(members.length) })
      : "";
    const box = $("pending-box");
    box.dataset.value = String(waiting);
    $("pending").textContent = waiting ? t("pending_n", { n: waiting }) : t("pending_none");
  }

  recent(entries) {
    $("recent-empty").hidden = entries.length > 0;
    $("recent").replaceChildren(...entries.map((r) => this.recentItem(r)));
  }

  recentItem(r) {
    const info = [fmtClock(r.ts), r.name ? r.code : "", r.unit || ""].filter(Boolean).join(" · ");
    const chip = r.voided
      ? t("voided")
      : r.voidId
        ? t("void_pending")
        : t(STATUS_LABEL[r.status] ?? "status_pending");
    const li = el(
      "li",
      { dataset: { id: r.id, status: r.voided ? "voided" : r.status } },
      el("div", { className: "recent-main" }, el("b", {}, r.name || r.code), el("small", {}, info)),
      el("span", { className: "chip" }, chip),
    );
    if (!r.voided && !r.voidId && r.status !== "rejected") {
      const undo = el("button", { type: "button", className: "void" }, t("void"));
      undo.addEventListener("click", () => this.armVoid(undo, r));
      li.append(undo);
    }
    return li;
  }

  /** A take-back needs two taps: the first arms the button for a few seconds. */
  armVoid(button, entry) {
    if (button.dataset.armed) {
      this.onVoid(entry);
      return;
    }
    button.dataset.armed = "1";
    button.textContent = t("void_confirm");
    setTimeout(() => {
      if (!button.isConnected) return;
      delete button.dataset.armed;
      button.textContent = t("void");
    }, ARMED_MS);
  }

  /** The big coloured answer to the latest scan; `welcomed`: the service is there to answer. */
  result(entry, welcomed) {
    this.shownId = entry.id;
    const panel = $("result");
    const onList = this.roster.has(entry.code) || !this.roster.members.length;
    let kind;
    let head;
    let detail = entry.unit || "";
    if (entry.status === "rejected") {
      kind = "bad";
      const reason = `reason_${entry.reason}`;
      head = hasLabel(reason) ? t(reason) : t("reason_other", { reason: entry.reason });
      if (entry.reason === "unknown_member") {
        detail = t("reason_unknown_member_detail", { code: entry.code });
      }
    } else if (entry.status === "already") {
      kind = "warn";
      head = entry.detail;
    } else if (entry.status === "ok") {
      kind = onList ? "ok" : "warn";
      head = t("result_accepted");
      if (!onList) detail = [detail, t("result_not_on_list")].filter(Boolean).join(" · ");
    } else {
      kind = "pending";
      head = welcomed ? t("result_sending") : t("result_queued");
    }
    panel.dataset.kind = kind;
    panel.dataset.id = entry.id;
    $("result-head").textContent = head;
    $("result-name").textContent = entry.name || entry.code;
    $("result-detail").textContent = [entry.name ? entry.code : "", detail]
      .filter(Boolean)
      .join(" · ");
    panel.hidden = false;
    const cam = $("camera-result");
    cam.dataset.kind = kind;
    cam.textContent = `${head}: ${entry.name || entry.code}`;
  }

  message(kind, head, name = "") {
    this.shownId = null;
    const panel = $("result");
    panel.dataset.kind = kind;
    $("result-head").textContent = head;
    $("result-name").textContent = name;
    $("result-detail").textContent = "";
    panel.hidden = false;
  }

  /** The members matching the scan field, shortly after the last keystroke. */
  matches() {
    clearTimeout(this.matchTimer);
    this.matchTimer = setTimeout(() => this.renderMatches(), MATCH_DELAY_MS);
  }

  renderMatches() {
    const list = $("matches");
    const text = $("scan").value;
    if (!text.trim()) {
      list.hidden = true;
      list.replaceChildren();
      return;
    }
    const found = this.roster.search(text);
    const items = found.slice(0, MAX_MATCHES).map((m) => {
      const button = el(
        "button",
        { type: "button", dataset: { code: m.code } },
        el("b", {}, m.full_name),
        el("small", {}, `${m.unit_name} · ${m.code}`),
      );
      if (this.roster.present.has(m.code)) {
        button.append(el("span", { className: "chip" }, t("is_present")));
        button.classList.add("is-present");
      }
      button.addEventListener("click", () => {
        this.clearScan();
        this.onPick(m.code);
      });
      return el("li", {}, button);
    });
    if (!found.length) {
      items.push(el("li", { className: "hint" }, t("no_match")));
    } else if (found.length > MAX_MATCHES) {
      const more = t("more_matches", { n: found.length - MAX_MATCHES });
      items.push(el("li", { className: "hint" }, more));
    }
    list.replaceChildren(...items);
    list.hidden = false;
  }

  /** What is in the scan field, which is emptied (and its matches with it). */
  takeScan() {
    const input = $("scan");
    const text = input.value.trim();
    this.clearScan();
    return text;
  }

  clearScan() {
    $("scan").value = "";
    this.matches();
  }

  /** A name with several matches goes back into the field, for the coordinator to pick from. */
  keepScan(text) {
    $("scan").value = text;
    this.matches();
  }

  guests(n) {
    $("guests").value = String(n);
  }

  tokenPanel(message, hasToken) {
    $("token-message").textContent = message;
    $("token-panel").hidden = false;
    $("app").hidden = !hasToken;
  }

  showApp() {
    $("token-panel").hidden = true;
    $("app").hidden = false;
  }

  hideApp() {
    $("app").hidden = true;
  }
}
