"""Text that came from a device or a file, made safe to show.

A device (or whoever answers in its place) chooses the bytes of its HTTP
reason phrase, its ``config.txt`` values and its unknown lines.  Shown raw, they
could forge log lines (a CR or LF followed by "relays A--D -> A--B"), drive the
terminal with escape sequences, or flood ``crm_mon`` with kilobytes.
:func:`shown` escapes every control character and bounds the length; every
device-supplied string goes through it before it reaches a message, a log line,
an exit reason or the command's output.
"""

from __future__ import annotations

__all__ = ["MAX_SHOWN", "shown"]

MAX_SHOWN = 200


def shown(text: str | bytes, limit: int = MAX_SHOWN) -> str:
    """``text`` with control characters escaped (``\\r``, ``\\x1b`` ...), cut to ``limit``.

    Bytes are decoded as Latin-1 (every byte stays visible); a text that had to
    be cut ends with ``...`` and its full length, so the cut cannot pass for the
    whole.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    escaped = "".join(_escape(char) for char in text[:limit])
    if len(text) <= limit and len(escaped) <= limit:
        return escaped
    return f"{escaped[:limit]}... ({len(text)} characters)"


def _escape(char: str) -> str:
    # isprintable() is False for control, format, separator (but the space),
    # private-use and unassigned characters: everything that can hide or move text
    if char.isprintable():
        return char
    code = ord(char)
    named = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
    return named.get(char) or (f"\\x{code:02x}" if code < 0x100 else
                               f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
