// The printable QR sheet of the sites just uploaded on the session page, at
// `/sessions/{sid}/qr-sheet`: one card per site (its QR code, name, unit and link), 12 to an A4
// page. The tokens come from this tab's sessionStorage, where the session page left them; they
// are never sent to the server again, and "forget" takes them out of the browser.

import { $, el, show } from "./common-dom.js";
import { fmtInt } from "./common-format.js";
import { applyLabels, t } from "./org-common.js";
import { checkinLink, forgetUpload, keptUpload, linksCsv, qrSvg, saveText } from "./org-site-link.js";

const PER_PAGE = 12; // 3 x 4 cards of 62 x 67 mm on A4 (qr-sheet.css)

function card(site) {
  const link = checkinLink(site.token);
  const qr = el("div", { className: "qr-code" });
  qr.innerHTML = qrSvg(link, t("qr_title", { name: site.name }));
  return el(
    "article",
    { className: "qr-card", dataset: { siteId: String(site.id) } },
    qr,
    el("div", { className: "qr-name" }, site.name),
    el("div", { className: "qr-unit" }, site.unit_name || site.unit || ""),
    el("div", { className: "qr-link" }, link),
  );
}

function render(upload) {
  const sheet = $("sheet");
  const pages = [];
  for (let i = 0; i < upload.sites.length; i += PER_PAGE) {
    pages.push(el("section", { className: "sheet-page" }, ...upload.sites.slice(i, i + PER_PAGE).map(card)));
  }
  sheet.replaceChildren(...pages);
}

function start() {
  applyLabels();
  const sid = Number(location.pathname.split("/")[2]);
  $("back-to-session").href = `/sessions/${sid}`;
  const upload = keptUpload(sid);
  document.title = `${t("qr_sheet_title")} · ${t("app_name")}`;
  show($("sheet-empty"), !upload);
  show($("sheet-warning"), Boolean(upload));
  show($("sheet-actions"), Boolean(upload));
  if (!upload) return;
  $("sheet-title").textContent = upload.title || "";
  $("sheet-count").textContent = t("qr_sheet_count", {
    n: fmtInt(upload.sites.length),
    pages: fmtInt(Math.ceil(upload.sites.length / PER_PAGE)),
  });
  render(upload);
  $("sheet-print").addEventListener("click", () => window.print());
  $("sheet-download-csv").addEventListener("click", () =>
    saveText(linksCsv(upload.sites), `session-${sid}-site-links.csv`),
  );
  $("sheet-forget").addEventListener("click", () => {
    forgetUpload(sid);
    $("sheet").replaceChildren();
    show($("sheet-actions"), false);
    show($("sheet-printed"), false);
    show($("sheet-warning"), false);
    $("sheet-count").textContent = t("qr_sheet_forgotten");
  });
  // printed (or the dialog closed): remind that the tokens are still kept in this tab
  window.addEventListener("afterprint", () => {
    show($("sheet-printed"), true);
    $("sheet-forget").focus();
  });
}

start();
