"""Text from the network, made safe to log (`sources.kraken.text.printable`): one line, no
terminal control, a bounded length with a note of the real one."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.kraken.text import LIMIT, printable

ESCAPED = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("EGeneral:Internal error", "EGeneral:Internal error"),
        ("two\nlines\r\n", "two\\nlines\\r\\n"),
        ("\x1b[31mred\x1b[0m \x1b[2J", "\\x1b[31mred\\x1b[0m \\x1b[2J"),
        (
            "tab\there, bell\x07, del\x7f, c1\x85\x9b",
            "tab\\there, bell\\x07, del\\x7f, c1\\x85\\x9b",
        ),
        ("rtl \u202eevil\u202c, zw\u200b", "rtl \\u202eevil\\u202c, zw\\u200b"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("Prix: 65 000,1 €, 比特币, C:\\path", "Prix: 65 000,1 €, 比特币, C:\\path"),
        (b"bytes\n\xff", "bytes\\n\ufffd"),
        (42, "42"),
    ],
)
def test_controls_are_shown_escaped_and_the_rest_as_it_is(raw: object, shown: str) -> None:
    assert printable(raw) == shown


def test_a_long_text_is_cut_with_a_note_of_its_length() -> None:
    assert printable("x" * 1000) == "x" * LIMIT + "… (1000 chars)"
    assert printable("y" * 50, limit=10) == "y" * 10 + "… (50 chars)"
    assert printable("z" * LIMIT) == "z" * LIMIT  # at the limit: whole, no note


def test_a_hostile_str_does_not_break_the_log_line() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert printable(Hostile()) == "<Hostile>"


@settings(deadline=None)  # no timing: machines under load are slow
@given(st.text(), st.integers(min_value=1, max_value=300))
def test_any_text_becomes_one_safe_line(text: str, limit: int) -> None:
    shown = printable(text, limit)
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown
    assert not any(unicodedata.category(char) in ESCAPED for char in shown)
    shown.encode("utf-8")  # a log handler can write it (no lone surrogate)
    assert len(shown) <= 10 * limit + 30  # bounded: an escape is 10 characters at most
    assert printable(shown, 10**6) == shown  # escaping twice changes nothing
    if text.isprintable() and len(text) <= limit:
        assert shown == text
