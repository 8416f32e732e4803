"""`streamsvc user add | list | set`: accounts from the command line, straight on the store.

The command line acts as the operator of the installation: an admin of the whole tree whose
audit entries name the actor `cli` and no address. It runs the same `AccountService` the
API runs, so a user made here is checked, hashed and recorded exactly like one made there;
the first admin of a new installation is made here. A change that ends sign-ins is told to
the running instances over their shared Redis, when there is one, to close the live monitors
opened with them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path
from typing import Any

from streamsvc.config import Settings
from streamsvc.domain.models import ROLES, Site, User
from streamsvc.domain.policy import Caller, UnitTree
from streamsvc.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)

__all__ = ["COMMANDS", "OPERATOR", "add_parser", "open_migrated_store", "run"]

COMMANDS = ("user",)
#: The audit log's actor for every change made on the command line.
OPERATOR = "cli"
#: What `set` can change, for the message when nothing is given.
_CHANGE_FLAGS = ("--role", "--unit", "--full-name", "--active", "--password", "--password-file")


def add_parser(sub: Any, helps: dict[str, str]) -> None:
    """Add `user` and its subcommands to the `streamsvc` command's subparsers."""
    user = sub.add_parser("user", help="add, list and change the users who sign in")
    users = user.add_subparsers(
        dest="user_command", metavar="ACTION", required=True, parser_class=type(user)
    )

    add = users.add_parser(
        "add",
        help="add a user; the password is asked for twice unless --password-file is given",
        description="Add a user who signs in with LOGIN; their scope is the subtree of UNIT.",
    )
    add.add_argument("login", metavar="LOGIN", help="1-64 letters, digits or . _ @ -")
    add.add_argument("--unit", required=True, metavar="CODE", help="the user's unit (their scope)")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    add.add_argument("--full-name", metavar="NAME", help="the user's name (default: the login)")
    add.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="read the password from FILE's first line (- for stdin); at least 10 characters",
    )
    add.add_argument("--database", help=helps["database"])

    listing = users.add_parser("list", help="list the users, by login")
    listing.add_argument(
        "--unit", metavar="CODE", help="only users whose unit lies in CODE's subtree"
    )
    listing.add_argument("--database", help=helps["database"])

    change = users.add_parser(
        "set",
        help="change a user; a new password or deactivating ends their sign-ins at once",
        description="Change a user. A new password or --active no ends their sign-ins at once.",
    )
    change.add_argument("login", metavar="LOGIN")
    change.add_argument("--role", choices=ROLES, help="a new role")
    change.add_argument("--unit", metavar="CODE", help="a new unit (their scope)")
    change.add_argument("--full-name", metavar="NAME", help="a new name")
    change.add_argument(
        "--active", choices=("yes", "no"), help="no: the user can no longer sign in"
    )
    secret = change.add_mutually_exclusive_group()
    secret.add_argument("--password", action="store_true", help="ask for a new password (twice)")
    secret.add_argument(
        "--password-file", type=Path, metavar="FILE", help="read a new password from FILE"
    )
    change.add_argument("--database", help=helps["database"])
    change.add_argument(
        "--redis",
        help=helps["redis"] + "; the running instances' Redis, so that they close at once the "
        "live monitors open with the sign-ins a change ends",
    )


def run(args: argparse.Namespace) -> int:
    """Run `user ACTION`. A bad argument (an unknown unit or user, a short password) ends in
    one line and exit 2; a login taken in one line and exit 1; the rest is `main`'s."""
    name = f"streamsvc user {args.user_command}"
    try:
        if args.user_command == "add":
            return _add(args)
        if args.user_command == "list":
            return asyncio.run(_list(args))
        return _set(args)
    except (BadRequest, NotFound) as exc:
        print(f"{name}: error: {exc.message}", file=sys.stderr)
        return 2
    except (Conflict, Forbidden) as exc:
        print(f"{name}: error: {exc.message}", file=sys.stderr)
        return 1


async def open_migrated_store(database: str | None) -> Any:
    """The store of `--database` (or STREAMSVC_DATABASE), open and migrated."""
    from streamsvc.storage import open_store

    store = open_store(Settings.from_env(database=database).database)
    await store.open()
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store


async def _no_site(token: str) -> Site:
    raise Unauthorized("the command line takes no tokens")


async def _operator(store: Any) -> tuple[Any, Caller, set[str]]:
    """The account service, the operator as its caller, and the unit codes."""
    from streamsvc.services.accounts import AccountService

    units = {u.code for u in await store.list_units()}
    return AccountService(store, "", _no_site), Caller.operator(OPERATOR), units


def _read_password(path: Path | None, login: str) -> str:
    """From a file's first line (a trailing newline is not part of it), else asked twice on
    the terminal; without one (a script, a pipe) getpass would echo it, so it is refused."""
    if path is not None:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        password = text.splitlines()[0] if text else ""
    else:
        if not sys.stdin.isatty():
            raise BadRequest("no terminal to ask for the password: use --password-file FILE")
        password = getpass.getpass(f"Password for {login}: ")
        if getpass.getpass("The same password again: ") != password:
            raise BadRequest("the two passwords differ; nothing was changed")
    _check_length(password)
    return password


def _check_length(password: str) -> None:
    """Fail before the database is reached; the service checks the same rule again."""
    from streamsvc.services.accounts import MAX_PASSWORD, MIN_PASSWORD

    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def _describe(user: User) -> str:
    state = "" if user.active else ", inactive"
    return f"{user.login}: {user.role} at {user.unit} ({user.full_name}{state})"


def _add(args: argparse.Namespace) -> int:
    password = _read_password(args.password_file, args.login)
    return asyncio.run(_create(args, password))


async def _create(args: argparse.Namespace, password: str) -> int:
    store = await open_migrated_store(args.database)
    try:
        service, caller, units = await _operator(store)
        body = {
            "login": args.login,
            "full_name": args.full_name if args.full_name is not None else args.login,
            "unit": args.unit,
            "role": args.role,
            "password": password,
        }
        user = await service.create_user(caller, body, units)
    finally:
        await store.close()
    print(f"created {_describe(user)}")
    return 0


async def _list(args: argparse.Namespace) -> int:
    store = await open_migrated_store(args.database)
    try:
        users = await store.list_users()
        if args.unit is not None:
            tree = UnitTree(await store.list_units())
            if args.unit not in tree:
                raise NotFound(f"unit {args.unit} does not exist", code="unknown_unit")
            users = [u for u in users if tree.within(u.unit, args.unit)]
    finally:
        await store.close()
    if not users:
        print("no users" + (f" in {args.unit}" if args.unit else ""), file=sys.stderr)
        return 0
    rows = [("LOGIN", "ROLE", "UNIT", "ACTIVE", "FULL NAME")]
    rows += [(u.login, u.role, u.unit, "yes" if u.active else "no", u.full_name) for u in users]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        padded = (cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        print("  ".join((*padded, row[4])))
    return 0


def _set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for field in ("role", "unit", "full_name"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field)
    if args.active is not None:
        changes["active"] = args.active == "yes"
    if args.password or args.password_file is not None:
        changes["password"] = _read_password(args.password_file, args.login)
    if not changes:
        raise BadRequest(f"nothing to change: give some of {', '.join(_CHANGE_FLAGS)}")
    return asyncio.run(_update(args, changes))


async def _update(args: argparse.Namespace, changes: dict[str, Any]) -> int:
    store = await open_migrated_store(args.database)
    try:
        service, caller, units = await _operator(store)
        user, revoked = await service.update_user(caller, args.login, changes, units)
    finally:
        await store.close()
    ended = ""
    if revoked:
        settings = Settings.from_env(database=args.database, redis=args.redis)
        told = await _tell_instances(settings, revoked)
        ended = f"; {len(revoked)} sign-in(s) ended" + (
            "" if told else " (a live monitor open with one stops when it reconnects)"
        )
    print(f"changed {_describe(user)}{ended}")
    return 0


async def _tell_instances(settings: Settings, revoked: list[str]) -> bool:
    """Every request reads its token's row, so the ended sign-ins are refused everywhere
    already; only websockets opened with them outlive that. The instances close those when
    told on their control bus, which the command line reaches when they share a Redis."""
    if not settings.redis:
        return False
    from streamsvc.bus import open_bus
    from streamsvc.services.revocations import encode, token_key

    async def ignore(message: bytes) -> None:
        return None

    # a Redis out of reach is said here in one line, not also by the bus's reader
    quiet, level = logging.getLogger("streamsvc.bus"), logging.getLogger("streamsvc.bus").level
    quiet.setLevel(logging.ERROR)
    bus = open_bus(settings.redis, f"{settings.redis_prefix}:control")
    try:
        await bus.start(ignore)
        keys = [token_key(h) for h in revoked]
        await bus.publish(encode(OPERATOR, keys, "this token was revoked"))
    except StoreUnavailable as exc:
        print(f"streamsvc user set: warning: {exc.message}", file=sys.stderr)
        return False
    finally:
        await bus.stop()
        quiet.setLevel(level)
    return True
