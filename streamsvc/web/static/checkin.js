// The coordinator's check-in page: scan or tap members in, keep a guest headcount, take a
// mistaken scan back, and never lose an event. Every event is written to an IndexedDB outbox
// before it is sent and leaves it only when the service has acked it; the websocket reconnects
// with jittered backoff and resends the outbox in batches of at most 1,000 events.

const L = JSON.parse(document.getElementById("labels").textContent);
const TEXT = { ...L.common, ...L.checkin };
const $ = (id) => document.getElementById(id);

const BATCH = 1000; // the contract's largest batch frame
const RECENT = 50; // scans kept in the recent list
const ACK_TIMEOUT = 20000; // no ack this long: the connection is dead, reconnect
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 10000;
const MAX_MATCHES = 8;
const TOKEN_KEY = "streamsvc.checkin.token";
const DEVICE_KEY = "streamsvc.checkin.device";

function t(key, vars = {}) {
  let text = TEXT[key] ?? key;
  for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, value);
  return text;
}

/** Lower case, no Vietnamese accents: "Đồng" and "dong" compare equal. */
export function fold(text) {
  return text
    .replace(/[đĐ]/g, "d")
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/\s+/g, " ")
    .trim();
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID(); // only in secure contexts
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? ""
    : d.toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// -- IndexedDB: the outbox, the recent scans, and what to show before the first welcome ------

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

/** Run `fn(stores)` in one transaction; resolves once it is committed ("strict": on disk). */
function tx(names, fn) {
  return new Promise((resolve, reject) => {
    const tr = db.transaction(names, "readwrite", { durability: "strict" });
    const stores = Object.fromEntries([names].flat().map((n) => [n, tr.objectStore(n)]));
    let result;
    const req = fn(stores);
    if (req) req.onsuccess = () => (result = req.result);
    tr.oncomplete = () => resolve(result);
    tr.onerror = tr.onabort = () => reject(tr.error);
  });
}

function getAll(name) {
  return new Promise((resolve, reject) => {
    const req = db.transaction(name).objectStore(name).getAll();
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function kvGet(key) {
  return new Promise((resolve, reject) => {
    const req = db.transaction("kv").objectStore("kv").get(key);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

const kvPut = (key, value) => tx("kv", (s) => s.kv.put(value, key));

// -- state -----------------------------------------------------------------------------------

let db;
let token = null;
let deviceId = null;
let outbox = []; // {seq, token, event, inflight}, in send order
let recent = []; // newest first: {id, token, code, name, unit, ts, status, detail, voidId, voided}
let welcome = null; // {session, site}
let members = []; // the site's roster, each with `key` for searching
let byCode = new Map();
let present = new Set(); // checked in at the session (any site)
let here = new Set(); // checked in at this site
let guests = 0;
let shownId = null; // the scan the result panel shows

let ws = null;
let welcomed = false;
let frames = []; // sent, not yet acked: [{entries, sentAt}], acks come back in this order
let attempt = 0;
let retryTimer = null;
let stopped = false; // a refused token: no more reconnecting until a new one is given
let rosterTimer = null;

// -- rendering ---------------------------------------------------------------------------

function setConn(state) {
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = t(
    { connected: "connected", offline: "disconnected", connecting: "reconnecting" }[state] ??
      "disconnected",
  );
  $("offline-note").hidden = state === "connected" || stopped || !token;
}

function renderHead() {
  if (!welcome) return;
  $("site-name").textContent = welcome.site.name;
  const kind = t(`kind_${welcome.site.kind}`);
  $("session-title").textContent = `${kind} · ${welcome.session.title}`;
  document.title = `${welcome.site.name} · ${t("page_title")}`;
  $("closed-note").hidden = welcome.session.state !== "closed";
}

const numbers = new Intl.NumberFormat("vi-VN"); // 37.000, as the organizers' pages write it

function renderCounts() {
  const count = $("here-count");
  count.textContent = numbers.format(here.size);
  count.dataset.value = String(here.size);
  // the site's count takes in everyone checked in here; beside it, how much of the list is in
  let listed = 0;
  for (const m of members) if (present.has(m.code)) listed += 1;
  $("expected").textContent = members.length
    ? t("of_expected", { p: numbers.format(listed), n: numbers.format(members.length) })
    : "";
  const waiting = outbox.filter((e) => e.token === token).length;
  const box = $("pending-box");
  box.dataset.value = String(waiting);
  $("pending").textContent = waiting ? t("pending_n", { n: waiting }) : t("pending_none");
}

const STATUS_LABEL = {
  pending: "status_pending",
  ok: "status_ok",
  already: "status_already",
  rejected: "status_rejected",
};

function renderRecent() {
  const list = $("recent");
  const mine = recent.filter((r) => r.token === token);
  $("recent-empty").hidden = mine.length > 0;
  list.replaceChildren(
    ...mine.map((r) => {
      const li = document.createElement("li");
      li.dataset.id = r.id;
      li.dataset.status = r.voided ? "voided" : r.status;
      const main = document.createElement("div");
      main.className = "recent-main";
      const name = document.createElement("b");
      name.textContent = r.name || r.code;
      const info = document.createElement("small");
      info.textContent = [clock(r.ts), r.name ? r.code : "", r.unit || ""]
        .filter(Boolean)
        .join(" · ");
      main.append(name, info);
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = r.voided
        ? t("voided")
        : r.voidId
          ? t("void_pending")
          : t(STATUS_LABEL[r.status] ?? "status_pending");
      li.append(main, chip);
      if (!r.voided && !r.voidId && r.status !== "rejected") {
        const undo = document.createElement("button");
        undo.type = "button";
        undo.className = "void";
        undo.textContent = t("void");
        undo.addEventListener("click", () => armVoid(undo, r));
        li.append(undo);
      }
      return li;
    }),
  );
}

/** The big coloured answer to the latest scan. */
function showResult(entry) {
  shownId = entry.id;
  const panel = $("result");
  const onList = byCode.has(entry.code) || !members.length;
  let kind;
  let head;
  let detail = entry.unit || "";
  if (entry.status === "rejected") {
    kind = "bad";
    head = t(`reason_${entry.reason}`) === `reason_${entry.reason}`
      ? t("reason_other", { reason: entry.reason })
      : t(`reason_${entry.reason}`);
    if (entry.reason === "unknown_member") detail = t("reason_unknown_member_detail", { code: entry.code });
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

function showMessage(kind, head, name = "") {
  shownId = null;
  const panel = $("result");
  panel.dataset.kind = kind;
  $("result-head").textContent = head;
  $("result-name").textContent = name;
  $("result-detail").textContent = "";
  panel.hidden = false;
}

// -- the roster and searching -------------------------------------------------------------

function applyRoster(body) {
  members = body.members.map((m) => ({ ...m, key: `${fold(m.full_name)} ${m.code.toLowerCase()}` }));
  members.sort((a, b) => a.key.localeCompare(b.key));
  byCode = new Map(members.map((m) => [m.code, m]));
  present = new Set(body.present);
  here = new Set(body.here);
  // what this device had acked may be newer than what the roster read
  for (const r of recent) {
    if (r.token === token && !r.voided && (r.status === "ok" || r.status === "already")) {
      present.add(r.code);
      here.add(r.code);
    }
  }
  renderCounts();
  renderMatches();
}

async function loadRoster() {
  if (!welcome) return;
  const asked = token;
  try {
    const resp = await fetch(`/api/v1/sessions/${welcome.session.id}/roster`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (!resp.ok) return;
    const body = await resp.json();
    if (asked !== token) return;
    const pendingGuests = outbox.some((e) => e.token === token && e.event.type === "guests");
    if (body.guests !== null && !pendingGuests) setGuestsShown(body.guests);
    applyRoster(body);
    await kvPut(`roster:${token}`, body);
  } catch {
    // offline: the cached roster stays; the next welcome loads it again
  }
}

function reloadRosterSoon() {
  clearTimeout(rosterTimer);
  rosterTimer = setTimeout(loadRoster, 300);
}

function search(text) {
  const words = fold(text).split(" ").filter(Boolean);
  if (!words.length) return [];
  return members.filter((m) => words.every((w) => m.key.includes(w)));
}

let matchTimer = null;
function renderMatches() {
  clearTimeout(matchTimer);
  matchTimer = setTimeout(() => {
    const list = $("matches");
    const text = $("scan").value;
    const found = text.trim() ? search(text) : [];
    if (!text.trim()) {
      list.hidden = true;
      list.replaceChildren();
      return;
    }
    const items = found.slice(0, MAX_MATCHES).map((m) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.code = m.code;
      const name = document.createElement("b");
      name.textContent = m.full_name;
      const info = document.createElement("small");
      info.textContent = `${m.unit_name} · ${m.code}`;
      button.append(name, info);
      if (present.has(m.code)) {
        const tag = document.createElement("span");
        tag.className = "chip";
        tag.textContent = t("is_present");
        button.append(tag);
        button.classList.add("is-present");
      }
      button.addEventListener("click", () => {
        $("scan").value = "";
        renderMatches();
        checkIn(m.code);
      });
      li.append(button);
      return li;
    });
    if (!found.length) {
      const li = document.createElement("li");
      li.className = "hint";
      li.textContent = t("no_match");
      items.push(li);
    } else if (found.length > MAX_MATCHES) {
      const li = document.createElement("li");
      li.className = "hint";
      li.textContent = t("more_matches", { n: found.length - MAX_MATCHES });
      items.push(li);
    }
    list.replaceChildren(...items);
    list.hidden = false;
  }, 80);
}

/** Enter in the scan field: a scanner's code, a typed code, or a name with one match. */
function submitScan() {
  const input = $("scan");
  const text = input.value.trim();
  input.value = "";
  renderMatches();
  if (!text) return;
  if (byCode.has(text) || !/\s/.test(text)) {
    checkIn(text);
    return;
  }
  const found = search(text);
  if (found.length === 1) {
    checkIn(found[0].code);
    return;
  }
  input.value = text; // a name: let the coordinator pick from the list
  renderMatches();
  showMessage("warn", t(found.length ? "choose_from_list" : "no_match"));
}

// -- events: queue first, then send -------------------------------------------------------

async function enqueue(event, recentEntry) {
  const item = { token, event };
  // A newer headcount replaces the ones not sent yet: the latest ts wins anyway.
  const stale =
    event.type === "guests"
      ? outbox.filter((e) => e.token === token && e.event.type === "guests" && !e.inflight)
      : [];
  const seq = await tx(["outbox", "recent"], (s) => {
    for (const e of stale) s.outbox.delete(e.seq);
    if (recentEntry) s.recent.put(recentEntry);
    return s.outbox.add(item);
  });
  outbox = outbox.filter((e) => !stale.includes(e));
  outbox.push({ ...item, seq, inflight: false });
  renderCounts();
  pump();
}

async function checkIn(code) {
  const event = { type: "checkin", id: uuid(), member: code, ts: new Date().toISOString() };
  const m = byCode.get(code);
  const entry = {
    id: event.id,
    token,
    code,
    name: m?.full_name ?? "",
    unit: m?.unit_name ?? "",
    ts: event.ts,
    status: "pending",
  };
  recent.unshift(entry);
  showResult(entry);
  renderRecent();
  await enqueue(event, entry);
  trimRecent();
}

function trimRecent() {
  const mine = recent.filter((r) => r.token === token);
  const old = mine.slice(RECENT).filter((r) => r.status !== "pending");
  if (!old.length) return;
  recent = recent.filter((r) => !old.includes(r));
  tx("recent", (s) => {
    for (const r of old) s.recent.delete(r.id);
  });
}

function armVoid(button, entry) {
  if (button.dataset.armed) {
    voidScan(entry);
    return;
  }
  button.dataset.armed = "1";
  button.textContent = t("void_confirm");
  setTimeout(() => {
    if (!button.isConnected) return;
    delete button.dataset.armed;
    button.textContent = t("void");
  }, 4000);
}

async function voidScan(entry) {
  const event = { type: "void", id: uuid(), target: entry.id };
  entry.voidId = event.id;
  renderRecent();
  await enqueue(event, entry);
}

function setGuestsShown(n) {
  guests = n;
  $("guests").value = String(n);
}

async function setGuests(n) {
  const count = Math.max(0, Math.min(1000000, Math.round(Number(n) || 0)));
  setGuestsShown(count);
  await kvPut(`guests:${token}`, count);
  await enqueue({ type: "guests", id: uuid(), count, ts: new Date().toISOString() });
}

/** Send every queued event of this token that is not on its way yet, ≤1,000 per frame. */
function pump() {
  if (!ws || !welcomed || ws.readyState !== WebSocket.OPEN) return;
  const ready = outbox.filter((e) => !e.inflight && e.token === token);
  for (let i = 0; i < ready.length; i += BATCH) {
    const entries = ready.slice(i, i + BATCH);
    const frame =
      entries.length === 1 ? entries[0].event : { type: "batch", items: entries.map((e) => e.event) };
    for (const e of entries) e.inflight = true;
    frames.push({ entries, sentAt: Date.now() });
    ws.send(JSON.stringify(frame));
  }
}

async function onAck(results) {
  const frame = frames.shift();
  if (!frame) return;
  frame.entries.forEach((entry, i) => applyResult(entry.event, results[i]));
  const done = new Set(frame.entries);
  outbox = outbox.filter((e) => !done.has(e));
  renderRecent();
  renderCounts();
  await tx(["outbox", "recent"], (s) => {
    for (const e of frame.entries) s.outbox.delete(e.seq);
    for (const r of touched.splice(0)) s.recent.put(r);
  });
  if (shownId) {
    const shown = recent.find((r) => r.id === shownId);
    if (shown) showResult(shown);
  }
}

const touched = []; // recent entries changed by acks, written with the outbox deletion

function applyResult(event, result) {
  if (!result) return;
  if (event.type === "checkin") {
    const entry = recent.find((r) => r.id === event.id);
    if (!entry) return;
    if (result.result === "accepted") {
      const m = result.member;
      entry.name = m.full_name;
      entry.unit = byCode.get(m.code)?.unit_name ?? entry.unit ?? m.unit;
      const ap = result.already_present;
      if (ap) {
        entry.status = "already";
        entry.detail =
          ap.site === welcome?.site.id
            ? t("result_already_here", { time: clock(ap.ts) })
            : t("result_already_elsewhere", { site: ap.site_name ?? ap.site, time: clock(ap.ts) });
      } else {
        entry.status = "ok";
      }
      present.add(m.code);
      here.add(m.code);
    } else if (result.result === "duplicate") {
      // stored by an earlier send whose ack was lost
      if (entry.status === "pending") entry.status = "ok";
      present.add(entry.code);
      here.add(entry.code);
    } else {
      entry.status = "rejected";
      entry.reason = result.reason;
    }
    touched.push(entry);
  } else if (event.type === "void") {
    const entry = recent.find((r) => r.id === event.target);
    if (!entry) return;
    if (result.result === "rejected") {
      entry.voidId = null;
      showMessage("bad", t(`reason_${result.reason}`), entry.name || entry.code);
    } else {
      entry.voided = true;
      here.delete(entry.code);
      present.delete(entry.code);
      reloadRosterSoon(); // the member may still be checked in by another scan
    }
    touched.push(entry);
  }
}

// -- the websocket ------------------------------------------------------------------------

function connect() {
  clearTimeout(retryTimer);
  if (!token || stopped) return;
  if (ws && ws.readyState <= WebSocket.OPEN) return;
  setConn("connecting");
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/checkin`;
  const sock = new WebSocket(url);
  ws = sock;
  welcomed = false;
  sock.onopen = () => sock.send(JSON.stringify({ type: "hello", token, client: deviceId }));
  sock.onmessage = (e) => {
    if (sock === ws) onMessage(sock, e.data);
  };
  sock.onclose = (e) => {
    if (sock === ws) onClose(e.code);
  };
}

async function onMessage(sock, data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  if (msg.type === "welcome") {
    welcome = { session: msg.session, site: msg.site };
    welcomed = true;
    attempt = 0;
    setConn("connected");
    renderHead();
    pump();
    loadRoster();
    await kvPut(`welcome:${token}`, welcome);
  } else if (msg.type === "ack") {
    await onAck(msg.results ?? []);
  } else if (msg.type === "error") {
    if (msg.code === "unauthorized") {
      refuseToken();
    } else if (welcomed) {
      // our frames are well formed; if one is refused anyway, it stays queued for the next
      // connection rather than being resent in a loop
      frames.shift();
    }
  }
}

function onClose(code) {
  ws = null;
  welcomed = false;
  frames = [];
  for (const e of outbox) e.inflight = false;
  if (code === 4401) {
    refuseToken();
    return;
  }
  setConn("offline");
  scheduleReconnect();
}

function scheduleReconnect() {
  if (stopped || !token) return;
  clearTimeout(retryTimer);
  const ceiling = Math.min(BACKOFF_MAX, BACKOFF_MIN * 1.8 ** attempt);
  attempt += 1;
  retryTimer = setTimeout(connect, ceiling / 2 + (Math.random() * ceiling) / 2);
}

function reconnectNow() {
  if (stopped || !token) return;
  attempt = 0;
  if (!ws) connect();
}

function refuseToken() {
  stopped = true;
  clearTimeout(retryTimer);
  if (ws) {
    const sock = ws;
    ws = null;
    sock.close();
  }
  setConn("offline");
  showTokenPanel(t("bad_token"));
}

// A connection that stopped answering (a phone moving between networks) does not always
// close by itself: an ack that never comes gives it away.
setInterval(() => {
  if (ws && frames.length && Date.now() - frames[0].sentAt > ACK_TIMEOUT) ws.close();
}, 2000);

// -- token -------------------------------------------------------------------------------

function tokenFrom(text) {
  const m = /(?:^|[#&?])token=([^&\s]+)/.exec(text);
  return m ? decodeURIComponent(m[1]) : text.trim();
}

function showTokenPanel(message) {
  $("token-message").textContent = message;
  $("token-panel").hidden = false;
  $("app").hidden = !token;
}

async function useToken(newToken) {
  token = newToken;
  localStorage.setItem(TOKEN_KEY, token);
  stopped = false;
  attempt = 0;
  welcome = (await kvGet(`welcome:${token}`)) ?? null;
  members = [];
  byCode = new Map();
  present = new Set();
  here = new Set();
  const cached = await kvGet(`roster:${token}`);
  if (cached) applyRoster(cached);
  setGuestsShown((await kvGet(`guests:${token}`)) ?? 0);
  $("token-panel").hidden = true;
  $("app").hidden = false;
  if (welcome) renderHead();
  renderCounts();
  renderRecent();
  connect();
}

// -- camera (BarcodeDetector where the browser has it) -------------------------------------

let detector = null;
let stream = null;
let lastCode = "";
let lastCodeAt = 0;

async function initCamera() {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return;
  try {
    const formats = await window.BarcodeDetector.getSupportedFormats();
    if (!formats.includes("qr_code")) return;
    detector = new window.BarcodeDetector({ formats });
    $("camera").hidden = false;
  } catch {
    // no detector on this device: the button stays hidden
  }
}

async function openCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment" },
      audio: false,
    });
  } catch (err) {
    showMessage("bad", t("camera_error", { detail: err.message || err.name }));
    return;
  }
  const video = $("camera-video");
  video.srcObject = stream;
  $("camera-result").textContent = "";
  $("camera-dialog").showModal();
  await video.play();
  detectLoop();
}

async function detectLoop() {
  if (!stream) return;
  try {
    for (const found of await detector.detect($("camera-video"))) {
      const code = found.rawValue.trim();
      // the same card held in front of the camera is one scan, not one per frame
      if (code && (code !== lastCode || Date.now() - lastCodeAt > 3000)) {
        lastCode = code;
        lastCodeAt = Date.now();
        navigator.vibrate?.(60);
        checkIn(code);
      }
    }
  } catch {
    // a frame that could not be read; try the next one
  }
  setTimeout(detectLoop, 200);
}

function closeCamera() {
  for (const track of stream?.getTracks() ?? []) track.stop();
  stream = null;
  $("camera-dialog").close();
}

// -- start ---------------------------------------------------------------------------------

function wire() {
  for (const el of document.querySelectorAll("[data-l]")) el.textContent = t(el.dataset.l);
  document.title = t("page_title");
  $("scan").placeholder = t("scan_placeholder");
  $("guests-minus").setAttribute("aria-label", t("guests_minus"));
  $("guests-plus").setAttribute("aria-label", t("guests_plus"));
  $("guests").setAttribute("aria-label", t("guests_field"));
  $("scan").addEventListener("input", renderMatches);
  $("scan").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      submitScan();
    }
  });
  // A scanner types wherever the focus is: send stray keystrokes to the scan field.
  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (e.key.length !== 1 || e.ctrlKey || e.metaKey || e.altKey) return;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
    if ($("camera-dialog").open || $("app").hidden) return;
    $("scan").focus();
  });
  $("guests-plus").addEventListener("click", () => setGuests(guests + 1));
  $("guests-minus").addEventListener("click", () => setGuests(guests - 1));
  $("guests").addEventListener("change", (e) => setGuests(e.target.value));
  $("guests").addEventListener("keydown", (e) => {
    if (e.key === "Enter") e.target.blur();
  });
  $("conn").addEventListener("click", reconnectNow);
  $("camera").addEventListener("click", openCamera);
  $("camera-close").addEventListener("click", closeCamera);
  $("camera-dialog").addEventListener("close", () => stream && closeCamera());
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = tokenFrom($("token-input").value);
    if (value) useToken(value);
  });
  window.addEventListener("online", reconnectNow);
}

async function start() {
  wire();
  setConn("connecting");
  deviceId = localStorage.getItem(DEVICE_KEY) || uuid();
  localStorage.setItem(DEVICE_KEY, deviceId);
  // The token travels in the fragment (never sent to a server, not in its logs); keep it on
  // the device and take it out of the address bar so it does not stay in the history.
  const fromUrl = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(fromUrl[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  db = await openDb();
  outbox = (await getAll("outbox")).map((e) => ({ ...e, inflight: false }));
  recent = (await getAll("recent")).sort((a, b) => (a.ts < b.ts ? 1 : -1));
  initCamera();
  registerWorker();
  const saved = localStorage.getItem(TOKEN_KEY);
  if (saved) {
    await useToken(saved);
  } else {
    $("app").hidden = true;
    setConn("offline");
    showTokenPanel(t("no_token"));
  }
}

/** The service worker keeps the page itself available offline (a reload without network). */
function registerWorker() {
  if (!("serviceWorker" in navigator)) return; // plain http on a LAN: no offline reload
  navigator.serviceWorker
    .register("/checkin-sw.js", { scope: "/checkin" })
    .then(() => navigator.serviceWorker.ready)
    .then(() => {
      document.body.dataset.offlineReady = "1";
      $("conn").title = t("offline_ready");
    })
    .catch((err) => console.warn("service worker:", err));
}

start();
