// A site's coordinator link and its QR code, and the tokens of a list of sites just registered:
// one home for them, used by the session page (one site after registering or a token reset, or
// an uploaded list) and by the printable QR sheet of that list.

import qrcode from "./vendor/qrcode-generator.mjs";

/** The link a coordinator opens: the token travels in the fragment, never to the server. */
export function checkinLink(token) {
  return `${location.origin}/checkin#token=${encodeURIComponent(token)}`;
}

/** The SVG markup of a QR code of `link` (the library escapes what it writes; the link is ours). */
export function qrSvg(link, title) {
  const qr = qrcode(0, "M");
  qr.addData(link);
  qr.make();
  return qr.createSvgTag({ cellSize: 4, margin: 16, scalable: true, title });
}

// -- the tokens of an uploaded list, handed from the session page to its QR sheet ------------
// The server shows each token once: the page keeps them in this tab's sessionStorage (gone when
// the tab closes) until the organizer says they are done, and never sends them back.

const uploadKey = (sid) => `streamsvc.sites_upload.${sid}`;

/** Keep `{title, sites: [{id, name, kind, unit, unit_name, capacity, token}]}` for the sheet. */
export function keepUpload(sid, upload) {
  sessionStorage.setItem(uploadKey(sid), JSON.stringify(upload));
}

/** The upload kept for session `sid`, or null. */
export function keptUpload(sid) {
  try {
    const upload = JSON.parse(sessionStorage.getItem(uploadKey(sid)) || "null");
    return upload && Array.isArray(upload.sites) ? upload : null;
  } catch {
    return null;
  }
}

export function forgetUpload(sid) {
  sessionStorage.removeItem(uploadKey(sid));
}

/** Signing out takes every kept upload's tokens out of the tab, whoever uses it next. */
export function forgetAllUploads() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith(uploadKey(""))) sessionStorage.removeItem(key);
  }
}

// -- the links as CSV, made in the page -------------------------------------------------------

const csvField = (value) => {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

/** name,kind,unit,link,token of every site, UTF-8 with a BOM so that Excel reads the accents. */
export function linksCsv(sites) {
  const lines = [["name", "kind", "unit", "link", "token"]];
  for (const s of sites) lines.push([s.name, s.kind, s.unit, checkinLink(s.token), s.token]);
  return "\ufeff" + lines.map((line) => line.map(csvField).join(",")).join("\r\n") + "\r\n";
}

/** Hand `text` to the browser as the download `name`. */
export function saveText(text, name, type = "text/csv;charset=utf-8") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
