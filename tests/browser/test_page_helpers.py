"""The helpers both pages share (`static/common-*.js`), run in Debian's chromium.

The walks in test_checkin_page.py and test_organizer.py use them on the way; here are the cases
a walk does not reach: names typed any way, counts written the Vietnamese way, labels with
missing or odd values, the reconnect waits, and event ids on a phone that reached the service
over plain http (no `crypto.randomUUID` there).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from serverproc import ServerProcess

from .conftest import BrowserErrors

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

FOLD = [
    ("Nông Văn Đồng", "nong van dong"),
    ("  ĐẶNG   Thị\tÁnh ", "dang thi anh"),
    ("Nguyễn Thị Hường", "nguyen thi huong"),
    ("10000001", "10000001"),
]
FMT_INT = [(37000, "37.000"), (1234567, "1.234.567"), (0, "0"), (None, "0")]
# key, values, expected: placeholders filled, an unknown one kept, an unknown key shown as is,
# and a value taken literally (no "$&" replacement patterns)
LABELS = [
    ("of_expected", {"p": "3", "n": "4"}, "Trong danh sách: 3/4"),
    ("pending_n", {"n": 2}, "2 lượt chờ gửi"),
    ("pending_n", {}, "{n} lượt chờ gửi"),
    ("no_such_label", {}, "no_such_label"),
    (
        "result_already_elsewhere",
        {"site": "A $& B", "time": "08:00"},
        "Đã có mặt tại A $& B lúc 08:00",
    ),
]

EVALUATE = """async ({fold, fmtInt, labels}) => {
  const text = await import("/static/common-text.js");
  const format = await import("/static/common-format.js");
  const { labelsFor } = await import("/static/common-labels.js");
  const { Backoff } = await import("/static/common-backoff.js");
  const { uuid } = await import("/static/common-uuid.js");
  const { t } = labelsFor("checkin");

  // the check-in page's waits: from 0.5 s, x1.8 a failure, at most 10 s
  const backoff = new Backoff({ first: 500, max: 10000, factor: 1.8 });
  const waits = [];
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 12; i++) waits.push([i, backoff.next()]);
    backoff.reset();
  }

  const secure = [uuid(), uuid()];
  const randomUUID = Crypto.prototype.randomUUID;
  delete Crypto.prototype.randomUUID; // as on plain http at a LAN address
  let plain;
  let fallback;
  try {
    fallback = !("randomUUID" in crypto);
    plain = [uuid(), uuid()];
  } finally {
    Crypto.prototype.randomUUID = randomUUID;
  }
  return {
    fold: fold.map((s) => text.fold(s)),
    fmtInt: fmtInt.map((n) => format.fmtInt(n)),
    labels: labels.map(([key, vars]) => t(key, vars)),
    waits,
    uuids: { secure, plain, fallback },
  };
}"""


@pytest.fixture
def server(sqlite_server: ServerProcess) -> ServerProcess:
    """The store makes no difference here: SQLite only."""
    return sqlite_server


async def test_the_shared_page_helpers(
    server: ServerProcess, new_page: Any, browser_errors: BrowserErrors
) -> None:
    page = await new_page()
    await page.goto(f"{server.url}/checkin")
    await page.wait_for_selector("#token-panel:not([hidden])")
    got = await page.evaluate(
        EVALUATE,
        {
            "fold": [text for text, _ in FOLD],
            "fmtInt": [n for n, _ in FMT_INT],
            "labels": [[key, values] for key, values, _ in LABELS],
        },
    )

    assert got["fold"] == [folded for _, folded in FOLD]
    assert got["fmtInt"] == [written for _, written in FMT_INT]
    assert got["labels"] == [expected for _, _, expected in LABELS]

    # "equal jitter": each wait lies between half its step and the step, the steps grow from
    # 0.5 s by 1.8 up to 10 s, and a reset starts again from the shortest
    for attempt, wait in got["waits"]:
        step = min(10_000, 500 * 1.8**attempt)
        assert step / 2 <= wait <= step, (attempt, wait)
    assert max(wait for _, wait in got["waits"]) > 9_000

    assert got["uuids"]["fallback"]  # the plain ids were made without crypto.randomUUID
    ids = got["uuids"]["secure"] + got["uuids"]["plain"]
    assert all(UUID4.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    browser_errors.check()
