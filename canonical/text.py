"""Text that people type or systems store, made safe to show and checked on the way in (pure functions).

:func:`printable` is the one escape every CLI path uses before it prints stored or user-supplied text: a
control character (ANSI escapes, newlines, carriage returns, backspaces, C1 controls) or a character that
reorders or hides text (bidi overrides, line and paragraph separators, zero-width) is shown as a visible
``\\xNN`` / ``\\uNNNN`` escape, so a value can neither rewrite an operator's terminal nor forge extra lines.
:func:`operator_text` refuses such characters in what an operator writes (an acknowledgement's reason, who
acknowledged) before it is stored.
"""

from __future__ import annotations

import unicodedata

#: characters outside Unicode's control category that still change how a line reads
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2028", "\u2029", "\u2060", "\ufeff",
              *(chr(c) for c in range(0x202A, 0x202F)), *(chr(c) for c in range(0x2066, 0x206A))}


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or ch in _INVISIBLE


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, *, limit: int | None = None) -> str:
    """``value`` as one line of visible text: unsafe characters escaped, cut at ``limit`` characters."""
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def operator_text(value: str, *, what: str, max_length: int) -> str:
    """``value`` trimmed, or ``ValueError`` naming ``what`` when it is empty, too long, or holds a control or
    invisible character (the refusal never echoes the value)."""
    text = value.strip()
    if not text:
        raise ValueError(f"{what} is required")
    if len(text) > max_length:
        raise ValueError(f"{what} is longer than {max_length} characters")
    if any(_unsafe(ch) for ch in text):
        raise ValueError(f"{what} may not contain control characters, line breaks or invisible characters")
    return text


__all__ = ["operator_text", "printable"]
