"""The client against answers built to hurt: compressed, endless, cut short, forged.

A raw-socket server on 127.0.0.1 answers what each test tells it to; the last
test lets hypothesis choose the answers.  Every call must end within its
deadline (plus a margin for a busy machine, never a timing claim), allocate
a bounded amount of memory, and fail, when it fails, with one of the
project's own errors, whose message is one printable line without the password.
"""

from __future__ import annotations

import base64
import functools
import socket
import socketserver
import struct
import threading
import time
import traceback
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berofos_ocf.bnfosconf import DeviceEntry
from berofos_ocf.client import READ_ATTEMPTS, BerofosClient
from berofos_ocf.configtxt import Settings
from berofos_ocf.deadline import Deadline
from berofos_ocf.errors import (
    BerofosError,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)

from .conftest import FIXTURES

MB = 1024 * 1024
MEMORY_BOUND = 50 * MB
DEADLINE = 2.0
MARGIN = 2.0  # a loaded CI machine, not a claim about speed
# The firmware 1.53 answer with the watchdog on: the line a cut would lose.
CONFIG = (FIXTURES / "config-1.53.txt").read_bytes().replace(b"6_wen=0\n", b"6_wen=1\n")
ENDLESS_CAP = 256 * MB  # "endless" streams stop here, or after ENDLESS_SECONDS
ENDLESS_SECONDS = 30


class RawServer(socketserver.ThreadingTCPServer):
    """A TCP server on loopback answering every connection with ``answer(conn)``.

    The request is read first (kept in ``requests``); each connection has a
    thread of its own, so that an answer still being sent does not hold back
    the client's next try.  ``with RawServer(answer) as server:`` stops it.
    """

    daemon_threads = True

    def __init__(self, answer) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.answer = answer
        self.requests: list[bytes] = []
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def server_close(self) -> None:
        self.shutdown()
        super().server_close()


class _Answer(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            self.server.requests.append(_read_request(self.request))
            self.server.answer(self.request)
        except OSError:
            pass  # the client hung up: what it saw is what the test checks


def _read_request(conn: socket.socket) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        data = conn.recv(4096)
        if not data:
            break
        request += data
    return request


def read(server: RawServer, seconds: float = DEADLINE) -> Settings:
    """``read_settings()`` within ``seconds`` by a client that does not pause between tries."""
    entry = DeviceEntry("fos1", host="127.0.0.1", port=server.port)
    with BerofosClient(entry, sleep=lambda seconds: None) as client:
        return client.read_settings(Deadline(seconds))


class Cost:
    """What a block of code took: ``seconds`` and ``peak`` bytes allocated by Python."""

    seconds = peak = 0.0


@functools.lru_cache(maxsize=None)
def gzip_bomb() -> bytes:
    """3.5 kB of gzip inside gzip that expand to 2 GiB of zeros.

    The inner gzip is one member of 64 MiB of zeros sent 32 times over (a
    gzip stream may hold several members), which builds in a fraction of
    the time that compressing 2 GiB would take.
    """
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MB)
    inner = b"".join(member.compress(zeros) for _ in range(64)) + member.flush()
    outer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return outer.compress(inner * 32) + outer.flush()


class measured:
    """``with measured() as cost:`` times the block and traces its memory peak."""

    def __enter__(self) -> Cost:
        self.cost = Cost()
        tracemalloc.start()
        self.started = time.monotonic()
        return self.cost

    def __exit__(self, *exc_info) -> None:
        self.cost.seconds = time.monotonic() - self.started
        self.cost.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def endless(head: bytes, unit: bytes, pause: float):
    """An answer: ``head``, then ``unit`` over and over, ``pause`` seconds apart.

    Capped in bytes and seconds only so that a client without limits ends too.
    """
    def answer(conn: socket.socket) -> None:
        conn.sendall(head)
        sent, stop = 0, time.monotonic() + ENDLESS_SECONDS
        while sent < ENDLESS_CAP and time.monotonic() < stop:
            conn.sendall(unit)
            sent += len(unit)
            time.sleep(pause)

    return answer


def assert_bounded(cost: Cost) -> None:
    assert cost.seconds < DEADLINE + MARGIN
    assert cost.peak < MEMORY_BOUND


# -- 1. compressed and endless answers: refused on the wire, within the deadline ----------

@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip", "deflate", "x-unknown"])
def test_compressed_answer_is_refused_undecoded(encoding):
    bomb = gzip_bomb()
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: %s\r\n"
            b"Content-Length: %d\r\n\r\n" % (encoding.encode(), len(bomb)))
    with RawServer(lambda conn: conn.sendall(head + bomb)) as server:
        with measured() as cost, pytest.raises(ProtocolError, match="compressed answer"):
            read(server)
        assert b"\r\nAccept-Encoding: identity\r\n" in server.requests[0]
    assert_bounded(cost)


@pytest.mark.parametrize("pause, error", [(0, ProtocolError), (0.01, DeviceTimeout)])
def test_endless_chunk_size_line(pause, error):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    unit = b"f" * (64 * 1024 if not pause else 16)
    with RawServer(endless(head, unit, pause)) as server:
        with measured() as cost, pytest.raises(error):
            read(server)
    assert_bounded(cost)


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nX-Pad: ", b"HTTP/1.1 200 OK"],
                         ids=["header", "status"])
@pytest.mark.parametrize("pause, error", [(0, ProtocolError), (0.01, DeviceTimeout)])
def test_endless_head_line(head, pause, error):
    unit = b"a" * (64 * 1024 if not pause else 16)
    with RawServer(endless(head, unit, pause)) as server:
        with measured() as cost, pytest.raises(error):
            read(server)
    assert_bounded(cost)


def test_endless_headers():
    with RawServer(endless(b"HTTP/1.1 200 OK\r\n", b"X-Pad: a\r\n", 0.001)) as server:
        with measured() as cost, pytest.raises(ProtocolError):
            read(server)
    assert_bounded(cost)


# -- 6. an answer shorter than its Content-Length is a dropped connection ----------------

def cut_answer(conn: socket.socket) -> None:
    body = CONFIG[:CONFIG.index(b"6_wen=")]  # cut at a line end, before the watchdog
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(CONFIG), body))


def whole_answer(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(CONFIG), CONFIG))


def test_answer_cut_short_is_asked_again_then_reported():
    with RawServer(cut_answer) as server:
        with pytest.raises(DeviceUnreachable, match=r"cut short \(\d+ of \d+ bytes\)") as caught:
            read(server, 10)
        assert caught.value.transient
        assert len(server.requests) == READ_ATTEMPTS


def test_answer_cut_short_once_is_absorbed_by_a_retry():
    answers = iter([cut_answer, whole_answer])
    with RawServer(lambda conn: next(answers)(conn)) as server:
        settings = read(server, 10)
    assert settings["wdog"] is True and len(server.requests) == 2


def test_answer_without_magic_is_a_protocol_error():
    body = CONFIG.replace(b"bnfos_confmap_magic=0.1\n", b"")
    with RawServer(lambda conn: conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))) as server:
        with pytest.raises(ProtocolError, match="magic line is missing"):
            read(server)


# -- 7. device text in errors: escaped, one line, bounded -------------------------------

def assert_one_printable_line(message: str) -> None:
    assert message.isprintable() and len(message) < 400, message


FORGED = b"\r\x1b[2J\rrelays A--D -> A--B"


@pytest.mark.parametrize("tail, error", [(b"", DeviceError),
                                         (b"\nrelays A--D -> A--B", ProtocolError)],
                         ids=["one-line", "forged-line"])
def test_reason_phrase_is_escaped_and_bounded(tail, error):
    reason = b"Error" + FORGED + b"x" * 10_000 + FORGED + b"y" * 10_000 + tail
    with RawServer(lambda conn: conn.sendall(b"HTTP/1.1 500 " + reason + b"\r\n\r\n")) as server:
        with pytest.raises(error) as caught:
            read(server)
    message = str(caught.value)
    assert_one_printable_line(message)
    if error is DeviceError:
        assert r"HTTP 500 Error\r\x1b[2J\rrelays A--D -> A--Bxxx" in message
        assert message.endswith(f"... ({len(reason)} characters)")


def test_header_line_that_is_no_header_is_refused_and_not_logged(caplog):
    head = b"HTTP/1.1 200 OK\r\n\x1b[2Jrelays A--D -> A--B\r\nContent-Length: 0\r\n\r\n"
    with RawServer(lambda conn: conn.sendall(head)) as server:
        with pytest.raises(ProtocolError, match="header lines that are not HTTP"):
            read(server)
    # urllib3 would warn with the raw line and the URL, which may hold a password
    assert not [r for r in caplog.records if r.name.startswith("urllib3")]


def test_header_quoted_in_an_error_is_escaped():
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\x1b[2J\x07" + b"z" * 5000 + b"\r\n\r\n"
    with RawServer(lambda conn: conn.sendall(head)) as server:
        with pytest.raises(ProtocolError) as caught:
            read(server)
    assert_one_printable_line(str(caught.value))


# -- the fuzz: hypothesis writes the answers ------------------------------------------------

FUZZ_DEADLINE = 1.5
PASSWORD = "fuzz-" + "pass" + "word-7"  # not spelled out: tracebacks quote this file

STATUS_LINES = st.one_of(
    st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 200", b"HTTP/1.1 204 No",
                     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", b"HTTP/2 200", b"",
                     b"ICY 200 OK", b"HTTP/1.1 99999 x"]),
    st.builds(lambda status, reason: b"HTTP/1.1 %d %s" % (status, reason),
              st.sampled_from([200, 302, 401, 500, 503]), st.binary(max_size=300)))
HEADERS = st.one_of(
    st.sampled_from([
        b"Content-Encoding: gzip", b"Content-Encoding: gzip, gzip", b"Content-Encoding: deflate",
        b"Content-Encoding: identity", b"Content-Encoding: br", b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: identity",
        b"Content-Length: -1", b"Content-Length: 5, 5", b"Content-Length: 1_0",
        b"Content-Length: 99999999999999999999999", b"WWW-Authenticate: Basic realm=\"x\"",
        b"Location: http://[::1", b"Location: /config.txt", b"Connection: close",
        b"Content-Type: text/plain", b"Set-Cookie: a=b", b" folded", b"no colon",
        b"X-Long: " + b"a" * 40_000]),
    st.integers(0, 100_000).map(lambda n: b"Content-Length: %d" % n),
    st.binary(max_size=60))
BODIES = st.one_of(st.just(CONFIG), st.just(CONFIG.replace(b"\n", b"\r\n")),
                   st.sampled_from(["bomb", "big"]), st.binary(max_size=300))


@st.composite
def answers(draw) -> tuple[list[bytes], list[float], str]:
    """An answer as pieces to send with pauses between them, and how it ends."""
    body = draw(BODIES)
    body = {"bomb": gzip_bomb(), "big": b"x" * 70_000}.get(body, body)
    headers = draw(st.lists(HEADERS, max_size=5))
    if draw(st.booleans()):
        headers.append(b"Content-Length: %d" % len(body))
    if draw(st.booleans()):
        body = draw(chunked(body))
    if draw(st.booleans()):
        body = body[:draw(st.integers(0, len(body)))]
    wire = draw(STATUS_LINES) + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=3)))
    pieces = [wire[start:end] for start, end in zip([0] + cuts, cuts + [len(wire)])]
    pauses = draw(st.lists(st.floats(0, 0.03), min_size=len(pieces), max_size=len(pieces)))
    return pieces, pauses, draw(st.sampled_from(["close", "reset", "linger"]))


CHUNK_LINES = [lambda n: b"%x" % n, lambda n: b"%X" % n, lambda n: b"%x;ext=1" % n,
               lambda n: b" %x " % n, lambda n: b"%x" % n + b"0" * 70, lambda n: b"zz",
               lambda n: b"%x;" % n + b"e" * 70_000]


@st.composite
def chunked(draw, body: bytes) -> bytes:
    """``body`` in chunked transfer coding, with honest or odd chunk-size lines."""
    out, rest = [], body
    while rest:
        size = draw(st.integers(1, len(rest)))
        out.append(draw(st.sampled_from(CHUNK_LINES))(size) + b"\r\n" + rest[:size] + b"\r\n")
        rest = rest[size:]
    return b"".join(out) + draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nX-Trailer: 1\r\n\r\n", b""]))


def send(conn: socket.socket, answer) -> None:
    pieces, pauses, ending = answer
    for piece, pause in zip(pieces, pauses):
        conn.sendall(piece)
        time.sleep(pause)
    if ending == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # now, before the server's orderly shutdown of the connection
    elif ending == "linger":
        time.sleep(0.05)


def test_fuzz_hostile_answers(caplog):
    state = {}
    secrets = [PASSWORD, base64.b64encode(f"admin:{PASSWORD}".encode()).decode()]
    with RawServer(lambda conn: send(conn, state["answer"])) as server:
        entry = DeviceEntry("fos1", host="127.0.0.1", port=server.port, user="admin",
                            password=PASSWORD)

        @settings(max_examples=150, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(answer=answers())
        def one_read(answer):
            state["answer"] = answer
            caplog.clear()
            client = BerofosClient(entry, timeout=1.0, sleep=lambda seconds: None)
            with client, measured() as cost:
                try:
                    outcome = client.read_settings(Deadline(FUZZ_DEADLINE))
                except BerofosError as err:
                    outcome = err
            assert cost.seconds < FUZZ_DEADLINE + 1.5
            assert cost.peak < MEMORY_BOUND
            assert not [r for r in caplog.records if r.name.startswith("urllib3")]
            if isinstance(outcome, Settings):
                return
            assert_one_printable_line(str(outcome))
            told = "".join(traceback.format_exception(outcome))
            assert not any(secret in told for secret in secrets), told

        one_read()
