"""Generic fixtures for the browser tests: Debian's chromium driven by Playwright.

Playwright never downloads a browser here: it launches `/usr/bin/chromium`. Without it a test
is skipped outside CI (with the command that installs it) and fails under `CI=true`.

Every page a test opens through `new_page` reports its console errors and uncaught exceptions
to `browser_errors`; the test checks them with `browser_errors.check()` (and the fixture does
again at the end), so a page that throws cannot pass. Screenshots and other files go to
`artifacts_dir` (`$STREAMSVC_ARTIFACTS/browser`, by default `test-artifacts/browser`).

tests/browser is a package (it has an `__init__.py`): otherwise pytest would load this file as
a second top-level module named `conftest`, and the `from conftest import ...` of the other
test modules would find this one. Import from it relatively: `from .conftest import LAPTOP`.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a camera that shows a test pattern, allowed without a prompt (the check-in page's camera)
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    """Skip (outside CI) or fail (CI=true) when Debian's chromium is not installed."""
    if os.path.exists(CHROMIUM):
        return
    message = f"{CHROMIUM} is missing; install it with: apt-get install chromium"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


class BrowserErrors:
    """Console errors and uncaught exceptions of the pages being watched.

    `tolerate(pattern)` accepts console errors matching `pattern` for the duration of a
    `with` block only (e.g. websocket failures while the server is deliberately down).
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.tolerated: list[str] = []
        self._patterns: list[re.Pattern[str]] = []

    def watch(self, page: Any) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = f"console.error: {message.text} ({message.location.get('url', '')})"
        if any(p.search(message.text) for p in self._patterns):
            self.tolerated.append(text)
        else:
            self.errors.append(text)

    @contextmanager
    def tolerate(self, pattern: str) -> Iterator[None]:
        compiled = re.compile(pattern)
        self._patterns.append(compiled)
        try:
            yield
        finally:
            self._patterns.remove(compiled)

    def check(self) -> None:
        assert not self.errors, "errors in the browser:\n" + "\n".join(self.errors)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test (`item.rep_call`), so that a fixture's teardown
    can tell a failed test and leave a screenshot of it."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def artifacts_dir() -> Path:
    """Where screenshots go; printed so that a CI log points at them."""
    path = Path(os.environ.get("STREAMSVC_ARTIFACTS", "test-artifacts")) / "browser"
    path.mkdir(parents=True, exist_ok=True)
    print(f"browser artifacts: {path.resolve()}")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
def browser_errors() -> Iterator[BrowserErrors]:
    errors = BrowserErrors()
    yield errors
    errors.check()


@pytest.fixture
async def new_page(
    browser: Any, browser_errors: BrowserErrors
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """`await new_page(viewport=LAPTOP, **context_options)`: a page in a fresh context
    (its own storage), watched by `browser_errors`."""
    contexts: list[Any] = []

    async def make(viewport: dict[str, int] = LAPTOP, **options: Any) -> Any:
        context = await browser.new_context(viewport=viewport, **options)
        contexts.append(context)
        page = await context.new_page()
        browser_errors.watch(page)
        return page

    try:
        yield make
    finally:
        for context in contexts:
            await context.close()
