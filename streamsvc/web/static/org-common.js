// Shared by the organizer's pages: their labels, the admin token, API calls, sign-in, the unit
// tree. The helpers the check-in page uses too live in the common-*.js modules.

import { $, show } from "./common-dom.js";
import { labelsFor } from "./common-labels.js";

const TOKEN_KEY = "streamsvc.admin_token";
const REASON_KEY = "streamsvc.signin_reason"; // why the sign-in form is back, across a reload

/** The organizer's labels (then common ones): `t(key, vars)`, `hasLabel`, `applyLabels`. */
export const { t, hasLabel, applyLabels } = labelsFor("organizer");

export function message(node, text, kind = "") {
  node.textContent = text || "";
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
  node.hidden = !text;
}

// -- the admin token: sessionStorage, or a #token= fragment taken once from the address ------

export function takeTokenFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    setToken(token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function clearToken(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (reason) sessionStorage.setItem(REASON_KEY, reason);
}

// -- the API -------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
  }
}

/** What to tell a person about a failed call: our label for its code, else the server's words. */
export function explain(error) {
  if (error instanceof ApiError) {
    if (hasLabel("error_" + error.code)) return t("error_" + error.code);
    return t("error_with_detail", { detail: error.message });
  }
  return t("error_network");
}

export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: "Bearer " + getToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (exc) {
    throw new ApiError(0, "network", String(exc));
  }
  if (!response.ok) {
    let code = "http_" + response.status;
    let detail = response.statusText;
    try {
      const data = await response.json();
      code = data.error?.code || code;
      detail = data.error?.message || detail;
    } catch {
      // not a JSON error body: keep the status
    }
    throw new ApiError(response.status, code, detail);
  }
  return raw ? response : response.json();
}

export const ratio = (part, whole) => (whole > 0 ? part / whole : 0);

// -- sign-in -------------------------------------------------------------------------------

/**
 * Run `start` once the admin token is known to be good. `check` makes one admin call; a 401
 * or 403 there means the token is wrong, so the sign-in form comes back with a clear message.
 */
export async function signIn(check, start) {
  takeTokenFromHash();
  const form = $("signin-form");
  const error = $("signin-error");
  const signOut = $("sign-out");
  signOut.addEventListener("click", () => {
    clearToken();
    location.reload();
  });

  async function attempt() {
    let result;
    try {
      result = await check();
    } catch (exc) {
      show($("app"), false);
      show($("signin"), true);
      if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) {
        clearToken();
        message(error, exc.status === 403 ? t("token_forbidden") : t("token_rejected"), "error");
      } else {
        // the server cannot be reached (or failed): say so, and let the person try again
        message(error, explain(exc), "error");
      }
      $("signin-token").focus();
      return;
    }
    show($("signin"), false);
    show(signOut, true);
    show($("app"), true);
    await start(result);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("signin-token").value.trim();
    if (!value) return;
    setToken(value);
    message(error, "");
    $("signin-token").value = "";
    await attempt();
  });

  if (getToken()) {
    await attempt();
  } else {
    show($("signin"), true);
    const reason = sessionStorage.getItem(REASON_KEY);
    if (reason) message(error, t(reason), "error");
    sessionStorage.removeItem(REASON_KEY);
    $("signin-token").focus();
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
