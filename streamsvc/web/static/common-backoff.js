// How long a page's websocket waits before it reconnects: jittered exponential backoff, reset
// after a good connection (as python-websockets' client does), so that a thousand phones do not
// come back in lockstep after a server restart.

export class Backoff {
  /** Waits grow from `first` ms by `factor` per failed attempt, up to `max` ms. */
  constructor({ first, max, factor = 2 }) {
    this.first = first;
    this.max = max;
    this.factor = factor;
    this.attempts = 0;
  }

  /** The next wait in ms: "equal jitter", never less than half the step. */
  next() {
    const ceiling = Math.min(this.max, this.first * this.factor ** this.attempts);
    this.attempts += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** A connection worked: the next failure starts again from the shortest wait. */
  reset() {
    this.attempts = 0;
  }
}
