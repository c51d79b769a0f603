"""Device-supplied text made safe to show: escaped and bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from berofos_ocf.text import MAX_SHOWN, shown


def test_a_forged_log_line_stays_on_one_line():
    forged = "OK\r\nberofos(isdn)[1]: INFO: fos1: relays A--D -> A--B\x1b[2J"
    assert shown(forged) == "OK\\r\\nberofos(isdn)[1]: INFO: fos1: relays A--D -> A--B\\x1b[2J"


def test_a_long_text_is_cut_and_says_so():
    assert shown("x" * 20_000) == "x" * MAX_SHOWN + "... (20000 characters)"


def test_bytes_keep_every_byte_visible():
    assert shown(b"\xff\x00ok") == "\xff\\x00ok"


@given(st.one_of(st.text(), st.binary()))
def test_anything_shown_is_printable_and_bounded(text):
    result = shown(text)
    assert result.isprintable()
    assert len(result) <= MAX_SHOWN + len("... (%d characters)" % len(text))
