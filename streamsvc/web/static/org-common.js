// Shared by the organizer's pages: their labels, the bearer token, API calls, sign-in and who
// is signed in, the unit tree. The helpers the check-in page uses too live in the common-*.js modules.

import { $, el, show } from "./common-dom.js";
import { fmtNumber } from "./common-format.js";
import { labelsFor } from "./common-labels.js";
import { forgetAllUploads } from "./org-site-link.js";

const TOKEN_KEY = "streamsvc.token";
const REASON_KEY = "streamsvc.signin_reason"; // why the sign-in form is back, across a reload

/** The organizer's labels (then common ones): `t(key, vars)`, `hasLabel`, `applyLabels`. */
export const { t, hasLabel, applyLabels } = labelsFor("organizer");

export function message(node, text, kind = "") {
  node.textContent = text || "";
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
  node.hidden = !text;
}

// -- the bearer token: sessionStorage, or a #token= fragment taken once from the address ------
// A token is a signed-in user's (from the login form) or the v1 admin token (pasted, or a
// #token= link); the two sign out differently and come back to different forms.

const KIND_KEY = "streamsvc.token_kind"; // "user" or "admin"

export function takeTokenFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    setToken(token, "admin");
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function tokenKind() {
  return sessionStorage.getItem(KIND_KEY) || "admin";
}

export function setToken(token, kind = "admin") {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  sessionStorage.setItem(KIND_KEY, kind);
}

/** Forget the token; `reason` (a label key) is shown on the sign-in form after a reload. */
export function clearToken(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (reason) sessionStorage.setItem(REASON_KEY, reason);
}

/** The token stopped working mid-page (expired, revoked, deactivated): back to the form. */
export function signInAgain() {
  clearToken(tokenKind() === "user" ? "session_ended" : "token_rejected");
  location.reload();
}

// -- the API -------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, detail, retryAfter = null, details = null) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, from a 429's Retry-After
    this.details = details; // the error's `details`: e.g. every bad row of an upload
  }
}

/** What to tell a person about a failed call: our label for its code, else the server's words. */
export function explain(error) {
  if (error instanceof ApiError) {
    if (error.code === "too_many_attempts") return t("error_too_many_attempts", { wait: fmtWait(error.retryAfter) });
    if (hasLabel("error_" + error.code)) return t("error_" + error.code);
    return t("error_with_detail", { detail: error.message });
  }
  return t("error_network");
}

/** "45 giây", "15 phút": how long to wait, rounded up to whole minutes past one. */
export function fmtWait(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 60));
  return s < 60 ? t("wait_seconds", { n: s }) : t("wait_minutes", { n: Math.ceil(s / 60) });
}

/**
 * Call the API with the bearer token. `body` is sent as JSON, unless `contentType` is given:
 * then it goes as it is (a file the person picked, e.g. a quiz platform's CSV export).
 */
export async function api(path, { method = "GET", body, raw = false, contentType = null } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : contentType ? body : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (exc) {
    throw new ApiError(0, "network", String(exc));
  }
  if (!response.ok) {
    let code = "http_" + response.status;
    let detail = response.statusText;
    let details = null;
    try {
      const data = await response.json();
      code = data.error?.code || code;
      detail = data.error?.message || detail;
      details = data.error?.details ?? null;
    } catch {
      // not a JSON error body: keep the status
    }
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(response.status, code, detail, retryAfter, details);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** Fetch `path` with the bearer token and hand it to the browser as a download. */
export async function downloadFile(path, fallbackName) {
  const response = await api(path, { raw: true });
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export const ratio = (part, whole) => (whole > 0 ? part / whole : 0);

/** What completing the session needs (its `requires`), in one sentence for its head. */
export function requiresText(requires) {
  const items = [];
  if (requires?.reflection) items.push(t("requires_reflection"));
  if (requires && requires.quiz_pass !== null && requires.quiz_pass !== undefined) {
    items.push(t("requires_quiz", { pass: fmtNumber(requires.quiz_pass), max: fmtNumber(requires.quiz_max ?? 100) }));
  }
  return items.length ? t("requires_is", { items: items.join("; ") }) : t("requires_none");
}

// -- who is signed in, and what their role allows ------------------------------------------

const RANK = { viewer: 0, organizer: 1, admin: 2 };

/** GET /api/v1/auth/me of the signed-in person, once signIn has checked the token. */
export const account = { me: null };

/** May the signed-in person do what `role` may? (The server decides; the page only hides.) */
export function can(role) {
  const mine = account.me?.role;
  return mine in RANK && RANK[mine] >= RANK[role];
}

function showAccount(me) {
  account.me = me;
  // CSS hides every [data-needs] element the role does not reach (organizer.css)
  document.body.dataset.role = me.role;
  $("whoami-name").textContent = me.user?.full_name || t("actor_admin_token");
  $("whoami-unit").textContent = me.unit
    ? t("unit_with_code", { name: me.unit_name || me.unit, code: me.unit })
    : t("scope_whole_tree");
  $("whoami-role").textContent = t("role_" + me.role);
  $("whoami-role").dataset.role = me.role;
  for (const link of $("account").querySelectorAll("a")) {
    if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
  }
  show($("account"), true);
}

async function signOut() {
  if (tokenKind() === "user") {
    try {
      await api("/api/v1/auth/logout", { method: "POST" });
    } catch {
      // the token is forgotten here either way; an expired one is already dead
    }
  }
  clearToken();
  sessionStorage.removeItem(KIND_KEY);
  forgetAllUploads();
  location.reload();
}

// -- sign-in -------------------------------------------------------------------------------

function signInMode(mode) {
  const token = mode === "token";
  $("signin-form").dataset.mode = mode;
  for (const [id, on] of [["signin-password-mode", !token], ["signin-token-mode", token]]) {
    show($(id), on);
    $(id).disabled = !on; // a hidden field must not block the form as `required`
  }
  show($("signin-use-token"), !token);
  show($("signin-use-password"), token);
  (token ? $("signin-token") : $("signin-login")).focus();
}

function showSignIn(text, mode) {
  show($("app"), false);
  show($("account"), false);
  show($("signin"), true);
  message($("signin-error"), text, "error");
  signInMode(mode);
}

/**
 * Run `start(result, me)` once the token is known to be good: GET /api/v1/auth/me says who is
 * signed in (the header bar and the role's controls follow from it), then `check(me)` makes
 * the page's first call. A 401 or 403 there brings the sign-in form back with a clear message.
 */
export async function signIn(check, start) {
  takeTokenFromHash();
  $("sign-out").addEventListener("click", signOut);
  $("signin-use-token").addEventListener("click", () => signInMode("token"));
  $("signin-use-password").addEventListener("click", () => signInMode("password"));

  async function attempt() {
    let me;
    let result;
    try {
      me = await api("/api/v1/auth/me");
      result = await check(me);
    } catch (exc) {
      const kind = tokenKind();
      const mode = kind === "admin" ? "token" : "password";
      if (me && kind === "user" && exc instanceof ApiError && exc.status === 403) {
        // signed in, but this page's first call is beyond the role: say so, stay signed in
        show($("signin"), false);
        showAccount(me);
        message($("page-error"), explain(exc), "error");
        return;
      }
      if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) {
        clearToken();
        const reason = kind === "admin" ? (exc.status === 403 ? "token_forbidden" : "token_rejected") : "session_ended";
        showSignIn(t(reason), mode);
      } else {
        // the server cannot be reached (or failed): say so, and let the person try again
        showSignIn(explain(exc), mode);
      }
      return;
    }
    show($("signin"), false);
    showAccount(me);
    show($("app"), true);
    await start(result, me);
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("signin-error");
    message(error, "");
    if ($("signin-form").dataset.mode === "token") {
      const value = $("signin-token").value.trim();
      if (!value) return;
      setToken(value, "admin");
      $("signin-token").value = "";
      await attempt();
      return;
    }
    const login = $("signin-login").value.trim();
    const password = $("signin-password").value;
    if (!login || !password) return;
    clearToken();
    try {
      const data = await api("/api/v1/auth/login", { method: "POST", body: { login, password } });
      setToken(data.token, "user");
    } catch (exc) {
      message(error, explain(exc), "error");
      $("signin-password").select();
      return;
    }
    $("signin-password").value = "";
    await attempt();
  });

  if (getToken()) {
    await attempt();
  } else {
    const reason = sessionStorage.getItem(REASON_KEY);
    sessionStorage.removeItem(REASON_KEY);
    showSignIn(reason ? t(reason) : "", reason === "token_rejected" ? "token" : "password");
  }
}

/** Units from GET /api/v1/units, with children lists and depth, in tree order. */
export function unitTree(units) {
  const byCode = new Map(units.map((u) => [u.code, { ...u, children: [], depth: 0 }]));
  const roots = [];
  for (const unit of byCode.values()) {
    const parent = unit.parent && byCode.get(unit.parent);
    if (parent && parent !== unit) parent.children.push(unit);
    else roots.push(unit);
  }
  const byName = (a, b) => a.code.localeCompare(b.code);
  const ordered = [];
  const seen = new Set();
  const walk = (unit, depth) => {
    if (seen.has(unit.code)) return;
    seen.add(unit.code);
    unit.depth = depth;
    ordered.push(unit);
    unit.children.sort(byName).forEach((child) => walk(child, depth + 1));
  };
  roots.sort(byName).forEach((root) => walk(root, 0));
  return { byCode, roots, ordered };
}

/** The units of the subtree under `root` (all of them when `root` is null), in tree order. */
export function subtree(tree, root) {
  if (!root) return tree.ordered;
  const inside = new Set([root]);
  return tree.ordered.filter((u) => {
    if (u.code === root || inside.has(u.parent)) {
      inside.add(u.code);
      return true;
    }
    return false;
  });
}
