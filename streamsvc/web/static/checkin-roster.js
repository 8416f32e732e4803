// The site's roster on the phone: the members expected here, who is in (at the session and at
// this site), and the accent-free search over names and codes ("nong dong" finds Nông Văn Đồng).

import { fold } from "./common-text.js";

export class Roster {
  constructor() {
    this.clear();
  }

  clear() {
    this.members = []; // sorted by name, each with `key` for searching
    this.byCode = new Map();
    this.present = new Set(); // checked in at the session (any site)
    this.here = new Set(); // checked in at this site
  }

  /** The roster as `GET /roster` answered; `acked` codes this device saw accepted may be newer. */
  apply(body, acked) {
    this.members = body.members.map((m) => ({
      ...m,
      key: `${fold(m.full_name)} ${m.code.toLowerCase()}`,
    }));
    this.members.sort((a, b) => a.key.localeCompare(b.key));
    this.byCode = new Map(this.members.map((m) => [m.code, m]));
    this.present = new Set(body.present);
    this.here = new Set(body.here);
    for (const code of acked) this.checkedIn(code);
  }

  get(code) {
    return this.byCode.get(code);
  }

  has(code) {
    return this.byCode.has(code);
  }

  /** How many of the listed members are in (at any site). */
  listedPresent() {
    let listed = 0;
    for (const m of this.members) if (this.present.has(m.code)) listed += 1;
    return listed;
  }

  checkedIn(code) {
    this.present.add(code);
    this.here.add(code);
  }

  voided(code) {
    this.here.delete(code);
    this.present.delete(code);
  }

  /** Members whose name or code holds every word typed, accents and case aside. */
  search(text) {
    const words = fold(text).split(" ").filter(Boolean);
    if (!words.length) return [];
    return this.members.filter((m) => words.every((w) => m.key.includes(w)));
  }
}

/** `GET /api/v1/sessions/{sid}/roster` with the site token; null when it cannot be read now. */
export async function fetchRoster(sessionId, token) {
  try {
    const resp = await fetch(`/api/v1/sessions/${sessionId}/roster`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    return resp.ok ? await resp.json() : null;
  } catch {
    return null; // offline: the cached roster stays; the next welcome loads it again
  }
}
