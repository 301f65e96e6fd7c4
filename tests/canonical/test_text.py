"""The one escape of hostile text and the check of what operators type (pure, milliseconds)."""

from __future__ import annotations

import pytest

from canonical.text import operator_text, printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
    ("one\ntwo\rthree", "one\\x0atwo\\x0dthree"),
    ("bell\x07 del\x7f c1\x9b", "bell\\x07 del\\x7f c1\\x9b"),
    ("left\u202eright", "left\\u202eright"),
    ("line\u2028sep", "line\\u2028sep"),
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("Zoë – 100 €", "Zoë – 100 €"),
    (None, ""),
])
def test_printable_escapes_every_control_and_invisible_character(raw: object, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_cuts_before_escaping() -> None:
    assert printable("x" * 10, limit=4) == "xxxx…"


def test_operator_text_refuses_without_echoing_the_value() -> None:
    assert operator_text("  bank confirms ", what="the reason", max_length=50) == "bank confirms"
    for bad in ("", "   ", "ok\x1b[31m", "two\nlines", "rtl\u202e", "x" * 51):
        with pytest.raises(ValueError) as refused:
            operator_text(bad, what="the reason", max_length=50)
        assert "the reason" in str(refused.value) and (not bad.strip() or bad.strip() not in str(refused.value))
