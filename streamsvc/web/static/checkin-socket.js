// The check-in page's `/ws/checkin` connection: hello with the site token and the device id,
// then the outbox's events in frames of at most 1,000; the service acks each frame, in order.
// It reconnects with jittered backoff (reset once a connection proves good: an ack, or a welcome
// with nothing to send) and, on every new connection, sends
// again whatever was not acked. A refused token stops it until a new token is given.

import { Backoff } from "./common-backoff.js";

const BATCH = 1000; // the contract's largest batch frame
const ACK_TIMEOUT = 20000; // no ack this long: the connection is dead, reconnect
const CLOSE_UNAUTHORIZED = 4401;

export class CheckinSocket {
  /**
   * `outbox` gives the events to send (`takeReady`, `requeue`); `client` is the device id.
   * handlers: onState("connecting" | "connected" | "offline"), onWelcome(msg) and
   * onAck(entries, results) (either may return a promise), onRefused() for a refused token.
   */
  constructor(outbox, client, handlers) {
    this.outbox = outbox;
    this.client = client;
    this.handlers = handlers;
    this.token = null;
    this.ws = null;
    this.welcomed = false;
    this.frames = []; // sent, not yet acked: [{entries, sentAt}], acks come back in this order
    this.backoff = new Backoff({ first: 500, max: 10000, factor: 1.8 });
    this.timer = null;
    this.stopped = false; // a refused token: no more reconnecting until a new one is given
    // A connection that stopped answering (a phone moving between networks) does not always
    // close by itself: an ack that never comes gives it away.
    setInterval(() => {
      if (this.ws && this.frames.length && Date.now() - this.frames[0].sentAt > ACK_TIMEOUT) {
        this.ws.close();
      }
    }, 2000);
  }

  /** Speak for `token` from now on (the caller connects). */
  use(token) {
    this.token = token;
    this.stopped = false;
    this.backoff.reset();
  }

  connect() {
    clearTimeout(this.timer);
    if (!this.token || this.stopped) return;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
    this.handlers.onState("connecting");
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/checkin`;
    const sock = new WebSocket(url);
    this.ws = sock;
    this.welcomed = false;
    sock.onopen = () =>
      sock.send(JSON.stringify({ type: "hello", token: this.token, client: this.client }));
    sock.onmessage = (e) => {
      if (sock === this.ws) this.receive(e.data);
    };
    sock.onclose = (e) => {
      if (sock === this.ws) this.closed(e.code);
    };
  }

  /** Send every queued event of this token that is not on its way yet, ≤1,000 per frame. */
  pump() {
    const ws = this.ws;
    if (!ws || !this.welcomed || ws.readyState !== WebSocket.OPEN) return;
    const ready = this.outbox.takeReady(this.token);
    for (let i = 0; i < ready.length; i += BATCH) {
      const entries = ready.slice(i, i + BATCH);
      const frame =
        entries.length === 1 ? entries[0].event : { type: "batch", items: entries.map((e) => e.event) };
      this.frames.push({ entries, sentAt: Date.now() });
      ws.send(JSON.stringify(frame));
    }
  }

  /** The phone is back online, or the coordinator tapped the status: try at once. */
  reconnectNow() {
    if (this.stopped || !this.token) return;
    this.backoff.reset();
    if (!this.ws) this.connect();
  }

  async receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === "welcome") {
      this.welcomed = true;
      this.handlers.onState("connected");
      const saved = this.handlers.onWelcome(msg);
      this.pump();
      // A service that welcomes but cannot store (its database down, its disk full) closes
      // with 1013 at the first frame: only an ack shows the connection is good, or else every
      // phone would come back twice a second while storing fails.
      if (!this.frames.length) this.backoff.reset();
      await saved;
    } else if (msg.type === "ack") {
      const frame = this.frames.shift();
      this.backoff.reset();
      if (frame) await this.handlers.onAck(frame.entries, msg.results ?? []);
    } else if (msg.type === "error") {
      if (msg.code === "unauthorized") {
        this.refuse();
      } else if (this.welcomed) {
        // our frames are well formed; if one is refused anyway, it stays queued for the next
        // connection rather than being resent in a loop
        this.frames.shift();
      }
    }
  }

  closed(code) {
    this.ws = null;
    this.welcomed = false;
    this.frames = [];
    this.outbox.requeue();
    if (code === CLOSE_UNAUTHORIZED) {
      this.refuse();
      return;
    }
    this.handlers.onState("offline");
    if (this.stopped || !this.token) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.backoff.next());
  }

  refuse() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const sock = this.ws;
      this.ws = null;
      sock.close();
    }
    this.handlers.onRefused();
  }
}
