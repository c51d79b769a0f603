"""The GBL4 datagram codec: the protocol reference's vectors and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berofos_ocf.errors import BerofosError, FormatError, InvalidValue
from berofos_ocf.gbl4 import (
    PAGE_SIZE,
    AnyReply,
    Command,
    FlashPage,
    FlashPrepare,
    KickRequest,
    NetconfRequest,
    PingRequest,
    ResetRequest,
    ScanReply,
    ScanRequest,
    StatusReply,
    decode_reply,
    decode_request,
    format_mac,
    frame,
    image_checksum,
    parse_mac,
    split_pages,
    unframe,
)

MAC = parse_mac("00:19:32:00:12:1D")


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


VECTORS = [
    ("47 42 4c 04 01 4c", ScanRequest()),
    ("47 42 4c 04 0b 00 19 32 00 12 1d 00 62", KickRequest(MAC)),
    ("47 42 4c 04 09 00 19 32 00 12 1d 00 00 60", PingRequest(MAC, 0)),
    ("47 42 4c 04 05 00 19 32 00 12 1d 6c", ResetRequest(MAC)),
    ("47 42 4c 04 02 00 19 32 00 12 1d 0a 22 01 14 ff ff ff 00 0a 22 01 01 03 00 00 50 d2",
     NetconfRequest(MAC, "10.34.1.20", "255.255.255.0", "10.34.1.1", 3, 0, 80)),
]

SCAN_REPLY = ("47 42 4c 04 01 00 19 32 00 12 1d 00 50 01 02 01 35 00 0a 22 01 32 ff ff ff 00 "
              "0a 22 01 01 03 07 00 00 50 97")


@pytest.mark.parametrize("datagram, message", VECTORS, ids=[type(m).__name__ for _, m in VECTORS])
def test_request_vectors(datagram, message):
    assert message.encode() == hexbytes(datagram)
    assert decode_request(hexbytes(datagram)) == message


def test_scan_reply_vector():
    reply = decode_reply(hexbytes(SCAN_REPLY))
    assert reply == ScanReply(MAC, 0x50, (1, 2), (1, 53), 0, "10.34.1.50", "255.255.255.0",
                              "10.34.1.1", 3, 7, 0, 80)
    assert reply.encode() == hexbytes(SCAN_REPLY)
    assert reply.firmware_version == "1.53" and reply.operational and not reply.dhcp


def test_prefix_alone_xors_to_4d():
    assert frame(Command.SCAN)[-1] == 0x4D ^ 0x01


@pytest.mark.parametrize("datagram, message", [
    (b"GBL\x04\x01", "too short"),
    (b"GBL\x05\x01\x4d", "does not start"),
    (hexbytes("47 42 4c 04 01 4d"), "check byte"),
])
def test_malformed_datagrams(datagram, message):
    with pytest.raises(FormatError, match=message):
        unframe(datagram)


def test_short_payload_is_refused():
    with pytest.raises(FormatError, match="needs 30 payload bytes"):
        decode_reply(frame(Command.SCAN, b"\x00" * 10))


def test_unknown_request_command():
    with pytest.raises(FormatError, match="unknown GBL4 command 7"):
        decode_request(frame(7, b""))


def test_status_reply_carries_error_code():
    reply = decode_reply(StatusReply(Command.NETCONF, MAC, 3).encode())
    assert reply == StatusReply(Command.NETCONF, MAC, 3)


def test_open_replies_keep_their_payload():
    assert decode_reply(frame(Command.PING, MAC)) == AnyReply(Command.PING, MAC)


def test_mac_text():
    assert format_mac(parse_mac("00-19-32-00-12-1d")) == "00:19:32:00:12:1D"
    with pytest.raises(InvalidValue):
        parse_mac("00:19:32:00:12")


def test_pages_are_zero_padded_and_checksum_is_xor():
    image = bytes(range(256)) * 3  # 768 bytes: two pages
    pages = split_pages(image)
    assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE]
    assert pages[1] == image[512:] + b"\x00" * 256
    assert image_checksum(image) == image_checksum(b"".join(pages)) == 0


def test_empty_image_is_refused():
    with pytest.raises(InvalidValue):
        split_pages(b"")


macs = st.binary(min_size=6, max_size=6)
quads = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
byte = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)

messages = st.one_of(
    st.just(ScanRequest()),
    st.builds(ScanReply, macs, u16, st.tuples(byte, byte), st.tuples(byte, byte), byte, quads,
              quads, quads, byte, byte, byte, u16),
    st.builds(NetconfRequest, macs, quads, quads, quads, byte, byte, u16),
    st.builds(FlashPrepare, macs, u16, byte),
    st.builds(FlashPage, macs, u16, st.binary(min_size=PAGE_SIZE, max_size=PAGE_SIZE)),
    st.builds(ResetRequest, macs),
    st.builds(PingRequest, macs, u16),
    st.builds(KickRequest, macs),
)


@given(messages)
def test_every_message_round_trips(message):
    datagram = message.encode()
    decoded = decode_reply(datagram) if isinstance(message, ScanReply) else decode_request(datagram)
    assert decoded == message


@given(st.builds(StatusReply, st.sampled_from([Command.NETCONF, Command.RESET]), macs, byte))
def test_status_replies_round_trip(reply):
    assert decode_reply(reply.encode()) == reply


@given(st.binary(max_size=600))
def test_arbitrary_datagrams_give_a_message_or_our_error(data):
    for decode in (decode_request, decode_reply):
        try:
            decode(data)
        except BerofosError:
            pass


@given(st.integers(0, 255), st.binary(max_size=600))
def test_well_framed_garbage_gives_a_message_or_our_error(cmd, payload):
    for decode in (decode_request, decode_reply):
        try:
            decode(frame(cmd, payload))
        except FormatError:
            pass
