// Numbers and times written the Vietnamese way (37.000; 07:30), the same on every page.

const intFormat = new Intl.NumberFormat("vi-VN");
const pctFormat = new Intl.NumberFormat("vi-VN", { style: "percent", maximumFractionDigits: 1 });
const dateTimeFormat = new Intl.DateTimeFormat("vi-VN", {
  hour: "2-digit",
  minute: "2-digit",
  day: "2-digit",
  month: "2-digit",
  year: "numeric",
});
const timeFormat = new Intl.DateTimeFormat("vi-VN", { hour: "2-digit", minute: "2-digit" });
const clockFormat = new Intl.DateTimeFormat("vi-VN", {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

const numberFormat = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 2 });

export const fmtInt = (n) => intFormat.format(n || 0);
/** A score or mark as written in Vietnamese (8,5); "" for none. */
export const fmtNumber = (n) => (n === null || n === undefined ? "" : numberFormat.format(n));
export const fmtPct = (r) => pctFormat.format(r || 0);
export const fmtDateTime = (iso) => (iso ? dateTimeFormat.format(new Date(iso)) : "");
export const fmtTime = (value) => timeFormat.format(value instanceof Date ? value : new Date(value));

/** Hours, minutes and seconds of a scan; "" for a time that cannot be read. */
export function fmtClock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : clockFormat.format(d);
}

/** A moment as a datetime-local input wants it: local wall-clock time, no zone. */
export function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}
