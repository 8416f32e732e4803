// The organizer's pages: one entry module, the page chosen by <body data-page>.

import { applyLabels } from "./org-common.js";
import { auditPage } from "./org-audit.js";
import { evidencePage } from "./org-evidence.js";
import { sessionPage } from "./org-session.js";
import { sessionsPage } from "./org-sessions.js";
import { usersPage } from "./org-users.js";

applyLabels();
const pages = {
  sessions: sessionsPage,
  session: sessionPage,
  evidence: evidencePage,
  users: usersPage,
  audit: auditPage,
};
pages[document.body.dataset.page]?.();
