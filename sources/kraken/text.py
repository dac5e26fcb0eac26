"""Text from the network made safe to log: one line, no terminal control, bounded length.

A server (or anything between it and us) chooses the words of its error answers, close
reasons and malformed frames. Logged as they come, a newline in them forges a log line of
its own and an ANSI escape sequence (`ESC [ 2 J`) drives the terminal of whoever reads the
log. `printable` shows such characters escaped, as Python writes them in a string literal
(`\\n`, `\\x1b`, `\\u202e`), and cuts a long text with a note of its full length.

Backslashes are left alone: the text stays readable, and escaping it twice changes nothing
(an already escaped text has nothing left to escape).
"""

from __future__ import annotations

import unicodedata
from typing import Any

__all__ = ["LIMIT", "printable"]

LIMIT = 200  # characters kept of a longer text
# Unicode categories shown escaped: controls (C0, DEL, C1: newlines, ESC), format characters
# (bidirectional overrides, zero-width ones), lone surrogates (not encodable to UTF-8: a log
# handler would fail on them), line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: Any, limit: int = LIMIT) -> str:
    """`text` (any object: its `str`) as one safe line of at most `limit` characters of its
    own, then `… (N chars)` when it was longer.

    :param limit: characters of `text` kept; the escapes of those count as written.
    """
    if not isinstance(text, str):
        text = _text_of(text)
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(_escape(char) for char in cut)
    if len(text) > limit:
        return f"{cut}… ({len(text)} chars)"
    return cut


def _text_of(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:  # a hostile __str__: say what it is
        return f"<{type(value).__name__}>"


def _escape(char: str) -> str:
    if char.isprintable() or unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char  # printable, or a space other than " " (no harm in a log line)
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
