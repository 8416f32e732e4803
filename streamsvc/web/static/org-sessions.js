// The sessions list at `/`: open one, or create one with its audience picked from the unit tree.

import { $, el, show } from "./common-dom.js";
import { fmtDateTime, fmtInt } from "./common-format.js";
import { account, api, explain, message, signIn, t, unitTree } from "./org-common.js";

function localInput(date) {
  // datetime-local wants local wall-clock time without a zone
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

function renderSessions(sessions) {
  const body = $("sessions-body");
  body.replaceChildren();
  const sorted = [...sessions].sort((a, b) => b.starts_at.localeCompare(a.starts_at) || b.id - a.id);
  for (const s of sorted) {
    const href = `/sessions/${s.id}`;
    body.append(
      el(
        "tr",
        { dataset: { sessionId: String(s.id) } },
        el("td", {}, el("a", { href }, s.title)),
        el("td", {}, fmtDateTime(s.starts_at)),
        el("td", { className: "n" }, fmtInt(s.expected)),
        el("td", {}, el("span", { className: `badge state-${s.state}` }, t("state_" + s.state))),
        el("td", {}, el("a", { href, className: "button small" }, t("open_session"))),
      ),
    );
  }
  show($("sessions-empty"), sessions.length === 0);
  show($("sessions-table"), sessions.length > 0);
  const makeup = $("f-makeup");
  const keep = makeup.value;
  makeup.replaceChildren(el("option", { value: "" }, t("makeup_none")));
  for (const s of sorted) {
    makeup.append(el("option", { value: String(s.id) }, `${s.title} (${fmtDateTime(s.starts_at)})`));
  }
  makeup.value = keep;
}

function renderUnitTree(units) {
  const tree = unitTree(units);
  // an organizer's audience lies inside their scope: offer the subtree of their unit only
  const scope = account.me?.unit && tree.byCode.get(account.me.unit);
  const roots = scope ? [scope] : tree.roots;
  const container = $("unit-tree");
  container.replaceChildren();
  if (!roots.length) {
    container.append(el("p", { className: "message" }, t("no_units")));
    return;
  }
  const list = (nodes) =>
    el(
      "ul",
      {},
      ...nodes.map((unit) =>
        el(
          "li",
          {},
          el(
            "label",
            { className: "check" },
            el("input", { type: "checkbox", name: "audience", value: unit.code }),
            el("span", {}, unit.name),
            el("span", { className: "code" }, unit.code),
          ),
          unit.children.length ? list(unit.children) : null,
        ),
      ),
    );
  container.append(list(roots));
}

async function createSession(event) {
  event.preventDefault();
  const error = $("session-error");
  message(error, "");
  const audience = [...document.querySelectorAll("input[name=audience]:checked")].map((i) => i.value);
  const makeupFor = $("f-makeup").value ? Number($("f-makeup").value) : null;
  if (!audience.length && makeupFor === null) {
    message(error, t("audience_required"), "error");
    return;
  }
  const startsAt = new Date($("f-starts").value);
  const endsAt = new Date($("f-ends").value);
  if (!(endsAt > startsAt)) {
    message(error, t("ends_before_starts"), "error");
    return;
  }
  try {
    const session = await api("/api/v1/sessions", {
      method: "POST",
      body: {
        title: $("f-title").value.trim(),
        starts_at: startsAt.toISOString(),
        ends_at: endsAt.toISOString(),
        audience,
        late_after_minutes: Number($("f-late").value),
        makeup_for: makeupFor,
      },
    });
    location.assign(`/sessions/${session.id}`);
  } catch (exc) {
    message(error, explain(exc), "error");
  }
}

export async function sessionsPage() {
  document.title = `${t("sessions_title")} · ${t("app_name")}`;
  await signIn(
    () => api("/api/v1/sessions"),
    async (data) => {
      renderSessions(data.sessions);
      const start = new Date();
      start.setSeconds(0, 0);
      start.setMinutes(Math.ceil(start.getMinutes() / 5) * 5);
      $("f-starts").value = localInput(start);
      $("f-ends").value = localInput(new Date(start.getTime() + 2 * 3600 * 1000));
      $("new-session-toggle").addEventListener("click", async () => {
        const section = $("new-session");
        show(section, section.hidden);
        if (!section.hidden) {
          $("f-title").focus();
          try {
            renderUnitTree((await api("/api/v1/units")).units);
          } catch (exc) {
            message($("session-error"), explain(exc), "error");
          }
        }
      });
      $("session-form").addEventListener("submit", createSession);
    },
  );
}
