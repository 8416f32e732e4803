// The per-site table of a session with many sites (thousands of viewing points): LIVE then
// carries no sites (`"sites": "none"`), so the table is read a page at a time from
// GET /api/v1/sessions/{sid}/live/sites, filtered on the server, and read again every few
// seconds while the page is visible. A phone on a mobile network never holds the whole list.

import { $ } from "./common-dom.js";
import { fmtInt } from "./common-format.js";
import { api, explain, message, t } from "./org-common.js";

export const PAGE_SIZE = 100;
const REFRESH_MS = 5_000;
const TYPING_MS = 300;

export class SitePager {
  /**
   * `render(sites)` draws one page's rows (the caller's own row builder, shared with the
   * small-session table); `unit()` is the unit drilled into (null: the whole view).
   */
  constructor(sessionId, { render, unit }) {
    this.sessionId = sessionId;
    this.render = render;
    this.unit = unit;
    this.offset = 0;
    this.total = 0;
    this.running = false;
    this.asked = 0; // the number of the latest request: an older answer is dropped
    this.timer = null;
    this.typing = null;
  }

  /** Wire the filters and paging controls once, then read the first page. */
  start() {
    if (this.running) return;
    this.running = true;
    const again = () => {
      this.offset = 0;
      this.load();
    };
    $("sites-silent").addEventListener("change", again);
    $("sites-kind").addEventListener("change", again);
    $("sites-order").addEventListener("change", again);
    $("sites-q").addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(again, TYPING_MS);
    });
    $("sites-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(this.typing);
      again();
    });
    // paging above the table and under it: on a phone a page of 100 rows is a long way down
    for (const button of document.querySelectorAll(".pager [data-page]")) {
      button.addEventListener("click", () => this.move(Number(button.dataset.page)));
    }
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.load();
    });
    this.load();
  }

  /** The drilled unit changed: back to the first page of its sites. */
  reset() {
    this.offset = 0;
    if (this.running) this.load();
  }

  move(step) {
    const offset = this.offset + step * PAGE_SIZE;
    if (offset < 0 || offset >= this.total) return;
    this.offset = offset;
    this.load();
  }

  query() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(this.offset) });
    const unit = this.unit();
    if (unit) params.set("unit", unit);
    if ($("sites-silent").checked) params.set("silent", "true");
    if ($("sites-kind").value) params.set("kind", $("sites-kind").value);
    const q = $("sites-q").value.trim();
    if (q) params.set("q", q);
    params.set("order", $("sites-order").value || "name");
    return params.toString();
  }

  async load() {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.running) return;
    const ticket = ++this.asked;
    const query = this.query();
    const error = $("sites-error");
    try {
      const data = await api(`/api/v1/sessions/${this.sessionId}/live/sites?${query}`);
      if (ticket !== this.asked) return;
      message(error, "");
      this.total = data.total;
      if (this.offset > 0 && this.offset >= data.total) {
        // the filter now matches fewer sites than the page we were on: show the last page
        this.offset = Math.max(0, Math.floor((data.total - 1) / PAGE_SIZE) * PAGE_SIZE);
        this.load();
        return;
      }
      this.render(data.sites);
      this.renderPaging(data.sites.length);
    } catch (exc) {
      if (ticket !== this.asked) return;
      message(error, explain(exc), "error");
    }
    if (ticket === this.asked) this.schedule();
  }

  /** Read the page again in a few seconds, but only while someone can see it. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (document.visibilityState === "visible") this.load();
      else this.timer = null; // `visibilitychange` reads it again
    }, REFRESH_MS);
  }

  renderPaging(shown) {
    const pager = $("sites-pager");
    pager.dataset.total = String(this.total);
    pager.dataset.offset = String(this.offset);
    const range = this.total
      ? t("sites_range", {
          from: fmtInt(this.offset + 1),
          to: fmtInt(this.offset + shown),
          total: fmtInt(this.total),
        })
      : t("sites_none_match");
    for (const node of document.querySelectorAll(".pager .pager-range")) node.textContent = range;
    for (const button of document.querySelectorAll(".pager [data-page]")) {
      button.disabled = button.dataset.page === "-1" ? this.offset === 0 : this.offset + PAGE_SIZE >= this.total;
    }
  }
}
