// The organizer's pages: one entry module, the page chosen by <body data-page>.

import { applyLabels } from "./org-common.js";
import { sessionPage } from "./org-session.js";
import { sessionsPage } from "./org-sessions.js";

applyLabels();
const pages = { sessions: sessionsPage, session: sessionPage };
pages[document.body.dataset.page]?.();
