"""Typed application keys: everything the handlers share lives on the app, not in globals."""

from __future__ import annotations

import weakref

from aiohttp import web

from streamsvc.config import Settings
from streamsvc.ports import Bus, Store
from streamsvc.services.access import AccessService
from streamsvc.services.accounts import AccountService
from streamsvc.services.admission import Admission
from streamsvc.services.attendance import AttendanceService
from streamsvc.services.checkins import CheckinService, GroupCommitter
from streamsvc.services.live import LiveHub
from streamsvc.services.revocations import Revocations
from streamsvc.services.roster import RosterService
from streamsvc.services.sessions import SessionService
from streamsvc.web.fanout import Fanout

settings_key = web.AppKey("settings", Settings)
store_key = web.AppKey("store", Store)
admin_hash_key = web.AppKey("admin_hash", str)
#: An admin token made at this start (shown once; the demo puts it in its links).
new_admin_token_key = web.AppKey("new_admin_token", str)
roster_key = web.AppKey("roster", RosterService)
sessions_key = web.AppKey("sessions", SessionService)
checkins_key = web.AppKey("checkins", CheckinService)
committer_key = web.AppKey("committer", GroupCommitter)
#: Whether a coordinator connection may come in now (`services.admission`).
admission_key = web.AppKey("admission", Admission)
sockets_key: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey(
    "sockets", weakref.WeakSet
)
live_key = web.AppKey("live", LiveHub)
#: The monitors of each watched session, fed one delta per session by the hub.
fanout_key = web.AppKey("fanout", Fanout)
#: A bus to use instead of the one the settings name (tests share one between two apps).
bus_key = web.AppKey("bus", Bus)
attendance_key = web.AppKey("attendance", AttendanceService)
accounts_key = web.AppKey("accounts", AccountService)
access_key = web.AppKey("access", AccessService)
#: Revoked site and sign-in tokens: closes their sockets here and on every other instance.
revocations_key = web.AppKey("revocations", Revocations)
#: A control bus to use instead of the one the settings name (tests share one between apps).
control_bus_key = web.AppKey("control_bus", Bus)
