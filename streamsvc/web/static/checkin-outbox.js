// What the check-in page keeps on the phone, in IndexedDB: the outbox of events not yet acked,
// the recent scans, and a few values per token (the last welcome, the roster, the guest
// headcount) so that the page shows its site before the first welcome, even offline.
// An event enters the outbox before it is sent and leaves it only once the service acked it,
// in the same transaction that stores what the ack changed in the recent scans.

const RECENT = 50; // scans kept in the recent list

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open("streamsvc-checkin", 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
      db.createObjectStore("recent", { keyPath: "id" });
      db.createObjectStore("kv");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function read(db, name, fn) {
  return new Promise((resolve, reject) => {
    const req = fn(db.transaction(name).objectStore(name));
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export class Outbox {
  /** The outbox as the phone kept it: nothing is in flight after a reload. */
  static async open() {
    const db = await openDb();
    const queued = await read(db, "outbox", (s) => s.getAll());
    const recent = await read(db, "recent", (s) => s.getAll());
    return new Outbox(
      db,
      queued.map((e) => ({ ...e, inflight: false })),
      recent.sort((a, b) => (a.ts < b.ts ? 1 : -1)),
    );
  }

  constructor(db, queued, recent) {
    this.db = db;
    this.queued = queued; // {seq, token, event, inflight}, in send order
    // newest first: {id, token, code, name, unit, ts, status, reason, detail, voidId, voided}
    this.recent = recent;
  }

  /** Run `fn(stores)` in one transaction; resolves once it is committed ("strict": on disk). */
  tx(names, fn) {
    return new Promise((resolve, reject) => {
      const tr = this.db.transaction(names, "readwrite", { durability: "strict" });
      const stores = Object.fromEntries([names].flat().map((n) => [n, tr.objectStore(n)]));
      let result;
      const req = fn(stores);
      if (req) req.onsuccess = () => (result = req.result);
      tr.oncomplete = () => resolve(result);
      tr.onerror = tr.onabort = () => reject(tr.error);
    });
  }

  // -- the queue ------------------------------------------------------------------------------

  /** How many events of this token wait for an ack. */
  waiting(token) {
    return this.queued.filter((e) => e.token === token).length;
  }

  hasGuests(token) {
    return this.queued.some((e) => e.token === token && e.event.type === "guests");
  }

  /** Store `event` (and the recent scan it belongs to) before anything is sent. */
  async add(token, event, recentEntry) {
    const item = { token, event };
    // A newer headcount replaces the ones not sent yet: the latest ts wins anyway.
    const stale =
      event.type === "guests"
        ? this.queued.filter((e) => e.token === token && e.event.type === "guests" && !e.inflight)
        : [];
    const seq = await this.tx(["outbox", "recent"], (s) => {
      for (const e of stale) s.outbox.delete(e.seq);
      if (recentEntry) s.recent.put(recentEntry);
      return s.outbox.add(item);
    });
    this.queued = this.queued.filter((e) => !stale.includes(e));
    this.queued.push({ ...item, seq, inflight: false });
  }

  /** This token's events not on their way yet, marked as sent. */
  takeReady(token) {
    const ready = this.queued.filter((e) => !e.inflight && e.token === token);
    for (const e of ready) e.inflight = true;
    return ready;
  }

  /** The connection dropped: whatever was on its way is sent again on the next one. */
  requeue() {
    for (const e of this.queued) e.inflight = false;
  }

  /**
   * Acked `entries` leave the outbox, and the recent scans their results `changed` are stored,
   * in one transaction. The memory copy changes at once; the promise resolves once on disk.
   */
  settle(entries, changed) {
    const done = new Set(entries);
    this.queued = this.queued.filter((e) => !done.has(e));
    return this.tx(["outbox", "recent"], (s) => {
      for (const e of entries) s.outbox.delete(e.seq);
      for (const r of changed) s.recent.put(r);
    });
  }

  // -- the recent scans -----------------------------------------------------------------------

  mine(token) {
    return this.recent.filter((r) => r.token === token);
  }

  findScan(id) {
    return this.recent.find((r) => r.id === id);
  }

  /** A new scan, shown at once; `add` stores it with its event. */
  unshiftScan(entry) {
    this.recent.unshift(entry);
  }

  /** Keep the newest RECENT scans of this token (and any still waiting for an ack). */
  trim(token) {
    const old = this.mine(token)
      .slice(RECENT)
      .filter((r) => r.status !== "pending");
    if (!old.length) return;
    this.recent = this.recent.filter((r) => !old.includes(r));
    this.tx("recent", (s) => {
      for (const r of old) s.recent.delete(r.id);
    });
  }

  // -- small values per token -----------------------------------------------------------------

  get(key) {
    return read(this.db, "kv", (s) => s.get(key));
  }

  put(key, value) {
    return this.tx("kv", (s) => s.kv.put(value, key));
  }
}
