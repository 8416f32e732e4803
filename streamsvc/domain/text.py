"""Accent folding for Vietnamese search: "nguyen" finds "Nguyễn", "dong" finds "Đồng"."""

from __future__ import annotations

import unicodedata

__all__ = ["fold"]

_EXTRA = str.maketrans({"đ": "d", "Đ": "d"})


def fold(text: str) -> str:
    """Lower-case, strip diacritics, map đ to d, squeeze spaces.

    `Đ` has no Unicode decomposition, so NFD alone would leave it; it is mapped by hand.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_EXTRA))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.lower().split())
