// The users page at `/users` (admins): the users in the admin's scope, a new user, and changes
// to one user (name, unit, role, whether they may sign in, a new password).

import { $, el, show } from "./common-dom.js";
import { account, api, explain, message, signIn, subtree, t, unitTree } from "./org-common.js";

const ROLES = ["viewer", "organizer", "admin"];
const MIN_PASSWORD = 10;

const state = {
  users: [],
  tree: null,
  editing: null, // the user the edit form holds
};

function unitName(code) {
  return state.tree?.byCode.get(code)?.name || code;
}

function fillUnits(select) {
  // the admin may place users only inside their own scope
  const units = state.tree ? subtree(state.tree, account.me.unit) : [];
  const top = units[0]?.depth || 0;
  select.replaceChildren(
    ...units.map((u) => el("option", { value: u.code }, "\u00a0\u00a0".repeat(u.depth - top) + `${u.name} (${u.code})`)),
  );
}

function fillRoles(select) {
  select.replaceChildren(...ROLES.map((r) => el("option", { value: r }, t("role_" + r))));
}

function renderUsers() {
  const body = $("users-body");
  body.replaceChildren();
  const users = [...state.users].sort((a, b) => a.login.localeCompare(b.login));
  for (const u of users) {
    body.append(
      el(
        "tr",
        { className: u.active ? "" : "inactive", dataset: { login: u.login, role: u.role, active: String(u.active) } },
        el("td", {}, el("code", {}, u.login)),
        el("td", {}, u.full_name),
        el("td", {}, unitName(u.unit), el("span", { className: "code" }, u.unit)),
        el("td", {}, t("role_" + u.role)),
        el("td", {}, t(u.active ? "user_active" : "user_inactive")),
        el("td", {}, el("button", { type: "button", className: "small secondary edit-user", onclick: () => editUser(u) }, t("edit"))),
      ),
    );
  }
  show($("users-empty"), users.length === 0);
  show($("users-table"), users.length > 0);
}

async function loadUsers() {
  state.users = (await api("/api/v1/users")).users;
  renderUsers();
}

function passwordProblem(value) {
  return value.length < MIN_PASSWORD ? t("password_too_short") : "";
}

async function createUser(event) {
  event.preventDefault();
  const error = $("user-error");
  message(error, "");
  const password = $("u-password").value;
  if (passwordProblem(password)) {
    message(error, passwordProblem(password), "error");
    return;
  }
  try {
    const user = await api("/api/v1/users", {
      method: "POST",
      body: {
        login: $("u-login").value.trim(),
        full_name: $("u-name").value.trim(),
        unit: $("u-unit").value,
        role: $("u-role").value,
        password,
      },
    });
    $("user-form").reset();
    show($("user-form"), false);
    message($("users-message"), t("user_created", { login: user.login }), "ok");
    await loadUsers();
  } catch (exc) {
    message(error, explain(exc), "error");
  }
}

function editUser(user) {
  state.editing = user;
  show($("user-form"), false);
  message($("edit-error"), "");
  $("edit-title").textContent = t("edit_user_title", { login: user.login });
  $("e-name").value = user.full_name;
  if (![...$("e-unit").options].some((o) => o.value === user.unit)) {
    $("e-unit").append(el("option", { value: user.unit }, unitName(user.unit)));
  }
  $("e-unit").value = user.unit;
  $("e-role").value = user.role;
  $("e-active").checked = user.active;
  $("e-password").value = "";
  show($("edit-form"), true);
  $("e-name").focus();
}

async function saveUser(event) {
  event.preventDefault();
  const user = state.editing;
  if (!user) return;
  const error = $("edit-error");
  message(error, "");
  // only what changed: a PATCH that repeats the password would sign the person out for nothing
  const changes = {};
  const name = $("e-name").value.trim();
  if (name !== user.full_name) changes.full_name = name;
  if ($("e-unit").value !== user.unit) changes.unit = $("e-unit").value;
  if ($("e-role").value !== user.role) changes.role = $("e-role").value;
  if ($("e-active").checked !== user.active) changes.active = $("e-active").checked;
  const password = $("e-password").value;
  if (password) {
    if (passwordProblem(password)) {
      message(error, passwordProblem(password), "error");
      return;
    }
    changes.password = password;
  }
  if (!Object.keys(changes).length) {
    message(error, t("no_changes"), "error");
    return;
  }
  try {
    await api(`/api/v1/users/${encodeURIComponent(user.login)}`, { method: "PATCH", body: changes });
    state.editing = null;
    $("edit-form").reset();
    show($("edit-form"), false);
    message($("users-message"), t("user_saved", { login: user.login }), "ok");
    await loadUsers();
  } catch (exc) {
    message(error, explain(exc), "error");
  }
}

async function start(data) {
  if (!data) {
    message($("page-error"), t("admins_only"), "error");
    return;
  }
  state.users = data.users;
  try {
    state.tree = unitTree((await api("/api/v1/units")).units);
  } catch {
    state.tree = null; // names fall back to codes; the unit lists stay empty
  }
  for (const id of ["u-unit", "e-unit"]) fillUnits($(id));
  for (const id of ["u-role", "e-role"]) fillRoles($(id));
  renderUsers();

  $("new-user-toggle").addEventListener("click", () => {
    const form = $("user-form");
    show(form, form.hidden);
    show($("edit-form"), false);
    message($("users-message"), "");
    if (!form.hidden) $("u-login").focus();
  });
  $("user-form").addEventListener("submit", createUser);
  $("edit-form").addEventListener("submit", saveUser);
  $("edit-cancel").addEventListener("click", () => {
    state.editing = null;
    show($("edit-form"), false);
  });
}

export async function usersPage() {
  document.title = `${t("users_title")} · ${t("app_name")}`;
  await signIn((me) => (me.role === "admin" ? api("/api/v1/users") : null), start);
}
