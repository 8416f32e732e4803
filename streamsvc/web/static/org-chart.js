// The per-minute check-in curve as an inline SVG: one bar per minute, zero minutes included,
// the session's start marked. Drawn by hand: a few dozen elements, no library needed.

import { el } from "./common-dom.js";
import { fmtInt, fmtTime } from "./common-format.js";
import { t } from "./org-common.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 200;
const PAD = { left: 36, right: 10, top: 12, bottom: 24 };
const MINUTE = 60_000;
const MIN_MINUTES = 30;
const MAX_MINUTES = 24 * 60; // a longer span is drawn from its last day

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Draw `curve` ([{minute, checkins}], oldest first) into `container`; `startsAt` is marked,
 * and the axis does not run past `until` (the session's close) when it is given.
 */
export function drawCurve(container, curve, startsAt, until) {
  const points = curve.filter((p) => p.checkins > 0);
  if (!points.length) {
    container.replaceChildren(el("p", { className: "message" }, t("curve_empty")));
    return;
  }
  // the axis runs to the current minute (or the last check-in, if later) and spans at least
  // MIN_MINUTES, so that a first burst is not drawn as one bar across the whole chart
  const nowMinute = Math.floor(Date.now() / MINUTE) * MINUTE;
  const cap = until ? Math.floor(until / MINUTE) * MINUTE : nowMinute;
  const last = Math.max(Date.parse(points[points.length - 1].minute), Math.min(nowMinute, cap));
  let first = Math.min(Date.parse(points[0].minute), last - (MIN_MINUTES - 1) * MINUTE);
  first = Math.max(first, last - (MAX_MINUTES - 1) * MINUTE);
  const counts = new Map(points.map((p) => [Date.parse(p.minute), p.checkins]));
  const span = Math.max(1, Math.round((last - first) / MINUTE) + 1);
  let peak = 1;
  let total = 0;
  for (const p of points) {
    total += p.checkins;
    if (Date.parse(p.minute) >= first) peak = Math.max(peak, p.checkins);
  }

  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / span;
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": t("curve_aria", { total: fmtInt(total), peak: fmtInt(peak) }),
    class: "curve-svg",
  });
  chart.append(svg("line", { x1: PAD.left, y1: PAD.top + plotH, x2: W - PAD.right, y2: PAD.top + plotH, class: "axis" }));
  chart.append(svg("line", { x1: PAD.left, y1: PAD.top, x2: W - PAD.right, y2: PAD.top, class: "grid" }));
  chart.append(svg("text", { x: PAD.left - 4, y: PAD.top + 4, class: "tick end" }, fmtInt(peak)));
  chart.append(svg("text", { x: PAD.left - 4, y: PAD.top + plotH, class: "tick end" }, "0"));

  const bars = svg("g", { class: "bars" });
  for (let i = 0; i < span; i += 1) {
    const minute = first + i * MINUTE;
    const n = counts.get(minute) || 0;
    if (!n) continue;
    const h = (n / peak) * plotH;
    const bar = svg("rect", {
      x: PAD.left + i * step + Math.max(step * 0.1, (step - 40) / 2),
      y: PAD.top + plotH - h,
      width: Math.max(Math.min(step * 0.8, 40), 1),
      height: h,
    });
    bar.append(svg("title", {}, t("curve_bar", { time: fmtTime(minute), count: fmtInt(n) })));
    bars.append(bar);
  }
  chart.append(bars);

  const start = startsAt ? Date.parse(startsAt) : NaN;
  if (start >= first && start <= last + MINUTE) {
    const x = PAD.left + ((start - first) / MINUTE) * step;
    chart.append(svg("line", { x1: x, y1: PAD.top - 4, x2: x, y2: PAD.top + plotH, class: "start" }));
    chart.append(svg("text", { x: x + 3, y: PAD.top + 6, class: "tick start-label" }, t("curve_start")));
  }
  chart.append(svg("text", { x: PAD.left, y: H - 6, class: "tick" }, fmtTime(first)));
  if (span > 1) {
    chart.append(svg("text", { x: W - PAD.right, y: H - 6, class: "tick end" }, fmtTime(last)));
  }
  container.replaceChildren(
    chart,
    el("p", { className: "hint" }, t("curve_total", { total: fmtInt(total), peak: fmtInt(peak) })),
  );
}
