// The `/ws/monitor` client: hello → snapshot → deltas in `seq` order; a gap asks for a resync.
// It reconnects with jittered exponential backoff (reset once a snapshot arrives), so a server
// restart shows as "not live" and then the same numbers again, read back from the store.
// Its options (`sites`, `depth`, `unit`) go in the hello; `reopen` changes them, e.g. when a big
// session's dashboard drills into a unit.

import { Backoff } from "./common-backoff.js";

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const CLOSE_NOT_FOUND = 4404;
const FATAL = { [CLOSE_UNAUTHORIZED]: "unauthorized", [CLOSE_FORBIDDEN]: "forbidden", [CLOSE_NOT_FOUND]: "not_found" };

export class LiveConnection {
  /**
   * handlers: onSnapshot(live), onDelta(delta), onState("connecting" | "live" | "offline"),
   * onFatal(code) when retrying cannot help (a bad token, an unknown session, a unit outside
   * the scope). options: {sites: "all" | "none", depth: n, unit: code}, each optional.
   */
  constructor(sessionId, getToken, handlers, options = {}) {
    this.sessionId = sessionId;
    this.getToken = getToken;
    this.handlers = handlers;
    this.options = options;
    this.ws = null;
    this.seq = null;
    this.backoff = new Backoff({ first: 500, max: 8000 });
    this.timer = null;
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  start() {
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  /** Watch with other options: the current socket is dropped and a new hello sent at once. */
  reopen(options) {
    this.options = options;
    this.stopped = false;
    clearTimeout(this.timer);
    this.timer = null;
    const old = this.ws;
    this.ws = null;
    this.seq = null;
    if (old) {
      old.onmessage = null; // a delta of the old view must not reach the new one
      old.close(1000);
    }
    this.backoff.reset();
    this.connect();
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.backoff.reset();
    this.connect();
  }

  connect() {
    this.timer = null;
    if (this.stopped) return;
    this.handlers.onState(this.backoff.attempts ? "offline" : "connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/monitor`);
    this.ws = ws;
    this.seq = null;
    ws.onopen = () => {
      const hello = { type: "hello", token: this.getToken(), session: this.sessionId };
      for (const key of ["sites", "depth", "unit"]) {
        const value = this.options[key];
        if (value !== undefined && value !== null) hello[key] = value;
      }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onerror = () => {}; // a close always follows; that is where we retry
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.seq = null;
      if (this.stopped) return;
      if (event.code in FATAL) {
        this.stopped = true;
        this.handlers.onFatal(FATAL[event.code]);
        return;
      }
      this.handlers.onState("offline");
      this.schedule();
    };
  }

  schedule() {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => this.connect(), this.backoff.next());
  }

  receive(ws, raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (msg.type === "snapshot") {
      this.seq = msg.seq;
      this.backoff.reset();
      this.handlers.onSnapshot(msg.live);
      this.handlers.onState("live");
    } else if (msg.type === "delta") {
      if (this.seq === null || msg.seq <= this.seq) return; // waiting for a snapshot, or old
      if (msg.seq !== this.seq + 1) {
        this.seq = null; // ignore deltas until the fresh snapshot
        ws.send(JSON.stringify({ type: "resync" }));
        return;
      }
      this.seq = msg.seq;
      this.handlers.onDelta(msg);
    } else if (msg.type === "error" && Object.values(FATAL).includes(msg.code)) {
      this.stopped = true;
      this.handlers.onFatal(msg.code);
    }
  }
}
