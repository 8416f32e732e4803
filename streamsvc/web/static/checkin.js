// The coordinator's check-in page: scan or tap members in, keep a guest headcount, take a
// mistaken scan back, and never lose an event. Every event is written to an IndexedDB outbox
// before it is sent and leaves it only when the service has acked it; the websocket reconnects
// with jittered backoff and resends the outbox in batches of at most 1,000 events.
//
// This entry module wires the parts together and holds what the page speaks for (the site
// token, its last welcome, its guest headcount): checkin-outbox.js keeps the events and recent
// scans, checkin-socket.js the connection, checkin-roster.js the roster and its search,
// checkin-camera.js the camera, checkin-view.js the DOM.

import { $ } from "./common-dom.js";
import { fmtClock } from "./common-format.js";
import { uuid } from "./common-uuid.js";
import { Camera } from "./checkin-camera.js";
import { Outbox } from "./checkin-outbox.js";
import { Roster, fetchRoster } from "./checkin-roster.js";
import { CheckinSocket } from "./checkin-socket.js";
import { View, t } from "./checkin-view.js";

const TOKEN_KEY = "streamsvc.checkin.token";
const DEVICE_KEY = "streamsvc.checkin.device";
const ROSTER_RELOAD_MS = 300;
const MAX_GUESTS = 1000000;

class CheckinPage {
  constructor() {
    this.token = null;
    this.welcome = null; // {session, site}
    this.guests = 0;
    this.rosterTimer = null;
    this.roster = new Roster();
    this.view = new View(this.roster, {
      onVoid: (entry) => this.voidScan(entry),
      onPick: (code) => this.checkIn(code),
    });
    this.camera = new Camera({
      onCode: (code) => this.checkIn(code),
      onError: (err) =>
        this.view.message("bad", t("camera_error", { detail: err.message || err.name })),
    });
    this.outbox = null; // opened by start()
    this.socket = null;
  }

  async start() {
    this.conn("connecting");
    const deviceId = localStorage.getItem(DEVICE_KEY) || uuid();
    localStorage.setItem(DEVICE_KEY, deviceId);
    // The token travels in the fragment (never sent to a server, not in its logs); keep it on
    // the device and take it out of the address bar so it does not stay in the history.
    const fromUrl = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (fromUrl) {
      localStorage.setItem(TOKEN_KEY, decodeURIComponent(fromUrl[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    this.outbox = await Outbox.open();
    this.socket = new CheckinSocket(this.outbox, deviceId, {
      onState: (state) => this.conn(state),
      onWelcome: (msg) => this.welcomed(msg),
      onAck: (entries, results) => this.acked(entries, results),
      onRefused: () => {
        this.conn("offline");
        this.view.tokenPanel(t("bad_token"), Boolean(this.token));
      },
    });
    this.wire();
    this.camera.init();
    registerWorker(this.view);
    const saved = localStorage.getItem(TOKEN_KEY);
    if (saved) {
      await this.useToken(saved);
    } else {
      this.view.hideApp();
      this.conn("offline");
      this.view.tokenPanel(t("no_token"), false);
    }
  }

  wire() {
    const scan = $("scan");
    scan.addEventListener("input", () => this.view.matches());
    scan.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.submitScan();
      }
    });
    // A scanner types wherever the focus is: send stray keystrokes to the scan field.
    document.addEventListener("keydown", (e) => {
      const target = e.target;
      if (e.key.length !== 1 || e.ctrlKey || e.metaKey || e.altKey) return;
      if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
      if (this.camera.isOpen || $("app").hidden) return;
      scan.focus();
    });
    $("guests-plus").addEventListener("click", () => this.setGuests(this.guests + 1));
    $("guests-minus").addEventListener("click", () => this.setGuests(this.guests - 1));
    $("guests").addEventListener("change", (e) => this.setGuests(e.target.value));
    $("guests").addEventListener("keydown", (e) => {
      if (e.key === "Enter") e.target.blur();
    });
    $("conn").addEventListener("click", () => this.socket.reconnectNow());
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = tokenFrom($("token-input").value);
      if (value) this.useToken(value);
    });
    window.addEventListener("online", () => this.socket.reconnectNow());
  }

  async useToken(token) {
    this.token = token;
    localStorage.setItem(TOKEN_KEY, token);
    this.socket.use(token);
    this.welcome = (await this.outbox.get(`welcome:${token}`)) ?? null;
    this.roster.clear();
    const cached = await this.outbox.get(`roster:${token}`);
    if (cached) this.applyRoster(cached);
    this.showGuests((await this.outbox.get(`guests:${token}`)) ?? 0);
    this.view.showApp();
    if (this.welcome) this.view.head(this.welcome);
    this.renderCounts();
    this.renderRecent();
    this.socket.connect();
  }

  // -- what the page shows ----------------------------------------------------------------

  conn(state) {
    this.view.conn(state, Boolean(this.socket?.stopped) || !this.token);
  }

  renderCounts() {
    this.view.counts(this.outbox.waiting(this.token));
  }

  renderRecent() {
    this.view.recent(this.outbox.mine(this.token));
  }

  showGuests(n) {
    this.guests = n;
    this.view.guests(n);
  }

  // -- the roster ---------------------------------------------------------------------------

  applyRoster(body) {
    // what this device had acked may be newer than what the roster read
    const acked = this.outbox
      .mine(this.token)
      .filter((r) => !r.voided && (r.status === "ok" || r.status === "already"))
      .map((r) => r.code);
    this.roster.apply(body, acked);
    this.renderCounts();
    this.view.matches();
  }

  async loadRoster() {
    if (!this.welcome) return;
    const asked = this.token;
    const body = await fetchRoster(this.welcome.session.id, asked);
    if (!body || asked !== this.token) return;
    // a roster read while the coordinator is typing a headcount must not overwrite it (the
    // typed number is sent when the field is left)
    const typing = document.activeElement === $("guests");
    if (body.guests !== null && !this.outbox.hasGuests(asked) && !typing) {
      this.showGuests(body.guests);
    }
    this.applyRoster(body);
    try {
      await this.outbox.put(`roster:${asked}`, body);
    } catch {
      // not cached this time: the next welcome loads it again
    }
  }

  reloadRosterSoon() {
    clearTimeout(this.rosterTimer);
    this.rosterTimer = setTimeout(() => this.loadRoster(), ROSTER_RELOAD_MS);
  }

  // -- events: queue first, then send -------------------------------------------------------

  /** Enter in the scan field: a scanner's code, a typed code, or a name with one match. */
  submitScan() {
    const text = this.view.takeScan();
    if (!text) return;
    if (this.roster.has(text) || !/\s/.test(text)) {
      this.checkIn(text);
      return;
    }
    const found = this.roster.search(text);
    if (found.length === 1) {
      this.checkIn(found[0].code);
      return;
    }
    this.view.keepScan(text); // a name: let the coordinator pick from the list
    this.view.message("warn", t(found.length ? "choose_from_list" : "no_match"));
  }

  async enqueue(event, recentEntry) {
    await this.outbox.add(this.token, event, recentEntry);
    this.renderCounts();
    this.socket.pump();
  }

  async checkIn(code) {
    const event = { type: "checkin", id: uuid(), member: code, ts: new Date().toISOString() };
    const m = this.roster.get(code);
    const entry = {
      id: event.id,
      token: this.token,
      code,
      name: m?.full_name ?? "",
      unit: m?.unit_name ?? "",
      ts: event.ts,
      status: "pending",
    };
    this.outbox.unshiftScan(entry);
    this.view.result(entry, this.socket.welcomed);
    this.renderRecent();
    await this.enqueue(event, entry);
    this.outbox.trim(this.token);
  }

  async voidScan(entry) {
    const event = { type: "void", id: uuid(), target: entry.id };
    entry.voidId = event.id;
    this.renderRecent();
    await this.enqueue(event, entry);
  }

  async setGuests(n) {
    const count = Math.max(0, Math.min(MAX_GUESTS, Math.round(Number(n) || 0)));
    this.showGuests(count);
    await this.outbox.put(`guests:${this.token}`, count);
    await this.enqueue({ type: "guests", id: uuid(), count, ts: new Date().toISOString() });
  }

  // -- what the service answers ---------------------------------------------------------------

  welcomed(msg) {
    this.welcome = { session: msg.session, site: msg.site };
    this.view.head(this.welcome);
    this.loadRoster();
    return this.outbox.put(`welcome:${this.token}`, this.welcome);
  }

  async acked(entries, results) {
    const changed = [];
    entries.forEach((entry, i) => {
      const scan = this.applyResult(entry.event, results[i]);
      if (scan) changed.push(scan);
    });
    const saved = this.outbox.settle(entries, changed);
    this.renderRecent();
    this.renderCounts();
    await saved;
    const shown = this.view.shownId && this.outbox.findScan(this.view.shownId);
    if (shown) this.view.result(shown, this.socket.welcomed);
  }

  /** What one result does to the recent scan it answers (returned, to be stored). */
  applyResult(event, result) {
    if (!result) return null;
    if (event.type === "checkin") {
      const entry = this.outbox.findScan(event.id);
      if (!entry) return null;
      if (result.result === "accepted") {
        const m = result.member;
        entry.name = m.full_name;
        entry.unit = this.roster.get(m.code)?.unit_name ?? entry.unit ?? m.unit;
        const ap = result.already_present;
        if (ap) {
          const time = fmtClock(ap.ts);
          entry.status = "already";
          entry.detail =
            ap.site === this.welcome?.site.id
              ? t("result_already_here", { time })
              : t("result_already_elsewhere", { site: ap.site_name ?? ap.site, time });
        } else {
          entry.status = "ok";
        }
        this.roster.checkedIn(m.code);
      } else if (result.result === "duplicate") {
        // stored by an earlier send whose ack was lost
        if (entry.status === "pending") entry.status = "ok";
        this.roster.checkedIn(entry.code);
      } else {
        entry.status = "rejected";
        entry.reason = result.reason;
      }
      return entry;
    }
    if (event.type === "void") {
      const entry = this.outbox.findScan(event.target);
      if (!entry) return null;
      if (result.result === "rejected") {
        entry.voidId = null;
        this.view.message("bad", t(`reason_${result.reason}`), entry.name || entry.code);
      } else {
        entry.voided = true;
        this.roster.voided(entry.code);
        this.reloadRosterSoon(); // the member may still be checked in by another scan
      }
      return entry;
    }
    return null;
  }
}

/** A token pasted as itself or inside a link (`…#token=…`). */
function tokenFrom(text) {
  const m = /(?:^|[#&?])token=([^&\s]+)/.exec(text);
  return m ? decodeURIComponent(m[1]) : text.trim();
}

/** The service worker keeps the page itself available offline (a reload without network). */
function registerWorker(view) {
  if (!("serviceWorker" in navigator)) return; // plain http on a LAN: no offline reload
  navigator.serviceWorker
    .register("/checkin-sw.js", { scope: "/checkin" })
    .then(() => navigator.serviceWorker.ready)
    .then(() => view.offlineReady())
    .catch((err) => console.warn("service worker:", err));
}

new CheckinPage().start();
