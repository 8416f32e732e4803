"""Typed application keys: everything the handlers share lives on the app, not in globals."""

from __future__ import annotations

import weakref

from aiohttp import web

from streamsvc.config import Settings
from streamsvc.ports import Store
from streamsvc.services.checkins import CheckinService, GroupCommitter
from streamsvc.services.roster import RosterService
from streamsvc.services.sessions import SessionService

settings_key = web.AppKey("settings", Settings)
store_key = web.AppKey("store", Store)  # type: ignore[type-abstract]
admin_hash_key = web.AppKey("admin_hash", str)
roster_key = web.AppKey("roster", RosterService)
sessions_key = web.AppKey("sessions", SessionService)
checkins_key = web.AppKey("checkins", CheckinService)
committer_key = web.AppKey("committer", GroupCommitter)
sockets_key = web.AppKey("sockets", weakref.WeakSet)
#: The live-count hub (set once live counting is wired in); optional for the check-in path.
live_key = web.AppKey("live", object)
