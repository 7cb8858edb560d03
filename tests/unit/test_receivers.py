"""The loopback webhook receivers (tests/support/receivers.py): each mode against a real HTTP
client, keep-alive and chunked bodies, strict parsing, and a prompt stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.support.receivers import (
    Answer,
    Close,
    FailTimes,
    Hang,
    Huge,
    Receiver,
    Redirect,
)


async def _raw(receiver: Receiver, data: bytes, within: float = 5.0) -> bytes:
    """Send bytes as they are (what httpx would never send) and read until the receiver
    closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_answer_gives_its_status_and_body_and_records_the_request() -> None:
    async with Receiver(Answer(201, b"made")) as receiver, httpx.AsyncClient() as http:
        assert receiver.url.startswith("http://127.0.0.1:")
        assert receiver.url.endswith("/hook")
        before = time.monotonic()
        response = await http.post(
            receiver.url + "?try=1", content=b'{"event":"x"}', headers={"X-Signature": "v1=abc"}
        )
        assert (response.status_code, response.content) == (201, b"made")
        assert response.headers["content-length"] == "4"
        (request,) = await receiver.wait_for(1)
        assert (request.method, request.path, request.body) == (
            "POST",
            "/hook?try=1",
            b'{"event":"x"}',
        )
        assert request.headers["x-signature"] == "v1=abc"
        assert request.headers["content-length"] == "13"
        assert before <= request.at <= time.monotonic()


async def test_answer_delay_comes_after_the_request_is_recorded() -> None:
    async with Receiver(Answer(delay=0.3)) as receiver, httpx.AsyncClient() as http:
        response = await http.post(receiver.url, content=b"late")
        answered = time.monotonic()
        assert response.status_code == 200
        assert answered - receiver.received[0].at >= 0.3


async def test_fail_times_fails_the_first_n_then_succeeds() -> None:
    async with Receiver(FailTimes(2)) as receiver, httpx.AsyncClient() as http:
        statuses = [(await http.post(receiver.url, content=b"x")).status_code for _ in range(4)]
        assert statuses == [500, 500, 200, 200]
        receiver.set_mode(FailTimes(1, status=503, then=204))
        statuses = [(await http.post(receiver.url, content=b"x")).status_code for _ in range(3)]
        assert statuses == [503, 204, 204]
        assert len(receiver.received) == 7


async def test_hang_never_answers() -> None:
    async with Receiver(Hang()) as receiver, httpx.AsyncClient(timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(receiver.url, content=b"anyone?")
        (request,) = await receiver.wait_for(1)
        assert request.body == b"anyone?"


async def test_close_drops_the_connection_without_an_answer() -> None:
    async with Receiver(Close()) as receiver, httpx.AsyncClient() as http:
        with pytest.raises(httpx.TransportError):
            await http.post(receiver.url, content=b"bye")
        assert [r.body for r in receiver.received] == [b"bye"]


async def test_redirect_is_a_302_the_client_may_not_follow() -> None:
    async with (
        Receiver(Answer(body=b"elsewhere")) as other,
        Receiver(Redirect(other.url)) as receiver,
    ):
        async with httpx.AsyncClient(follow_redirects=False) as http:
            response = await http.post(receiver.url, content=b"x")
        assert response.status_code == 302
        assert response.headers["location"] == other.url
        assert response.headers["content-length"] == "0"
        assert other.received == []
        # The Location is real: a client that follows it lands on the other receiver.
        async with httpx.AsyncClient(follow_redirects=True) as http:
            followed = await http.get(receiver.url)
        assert followed.content == b"elsewhere"
        assert len(other.received) == 1


async def test_huge_can_be_read_partially() -> None:
    size = 256 * 1024 * 1024
    async with Receiver(Huge(size)) as receiver, httpx.AsyncClient() as http:
        started = time.monotonic()
        async with http.stream("POST", receiver.url, content=b"x") as response:
            assert response.headers["content-length"] == str(size)
            prefix = b""
            async for chunk in response.aiter_raw():
                prefix += chunk
                if len(prefix) >= 4096:
                    break
        assert prefix[:4096] == b"x" * 4096
        assert time.monotonic() - started < 2.0  # far too little time to move 256 MiB


async def test_huge_body_has_exactly_its_size() -> None:
    async with Receiver(Huge(200_001)) as receiver, httpx.AsyncClient() as http:
        first = await http.get(receiver.url)
        second = await http.get(receiver.url)
        assert len(first.content) == len(second.content) == 200_001
        assert receiver.connections == 1  # the framing held: the connection was reused


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with Receiver(Answer()) as receiver, httpx.AsyncClient() as http:
        for _ in range(2):
            assert (await http.post(receiver.url, content=b"x")).status_code == 200
        assert receiver.connections == 1
        assert len(receiver.received) == 2


async def test_connection_close_is_honoured() -> None:
    async with Receiver(Answer()) as receiver, httpx.AsyncClient() as http:
        for _ in range(2):
            response = await http.post(receiver.url, content=b"x", headers={"Connection": "close"})
            assert response.headers["connection"] == "close"
        assert receiver.connections == 2


async def test_a_chunked_body_is_recorded_whole() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"first,", b"second,", b"third"):
            yield part

    async with Receiver(Answer()) as receiver, httpx.AsyncClient() as http:
        response = await http.post(receiver.url, content=parts())
        assert response.status_code == 200
        (request,) = receiver.received
        assert request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in request.headers
        assert request.body == b"first,second,third"


async def test_pipelined_requests_with_chunk_extensions_and_trailers() -> None:
    async with Receiver(Answer()) as receiver:
        answer = await _raw(
            receiver,
            b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;name=value\r\nhello\r\n1A\r\n" + b"a" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
            b"POST /hook/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
            b"abc",
        )
        assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
        assert [(r.path, r.body) for r in receiver.received] == [
            ("/hook", b"hello" + b"a" * 26),
            ("/hook/2", b"abc"),
        ]
        assert "x-trailer" not in receiver.received[0].headers
        assert receiver.connections == 1


async def test_repeated_headers_are_joined_and_names_lower_cased() -> None:
    async with Receiver(Answer()) as receiver:
        await _raw(
            receiver,
            b"GET /hook HTTP/1.1\r\nHost: x\r\nX-Tag:  a \r\nx-tag: b\r\nConnection: close\r\n\r\n",
        )
        assert receiver.received[0].headers["x-tag"] == "a, b"


async def test_expect_100_continue_gets_an_interim_answer() -> None:
    async with Receiver(Answer()) as receiver:
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
        writer.write(
            b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"body")
        final = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
        assert final.startswith(b"HTTP/1.1 200 OK\r\n")
        assert receiver.received[0].body == b"body"


async def test_a_head_answer_has_a_length_but_no_body() -> None:
    async with Receiver(Answer(body=b"four")) as receiver, httpx.AsyncClient() as http:
        head = await http.head(receiver.url)
        after = await http.get(receiver.url)
        assert (head.headers["content-length"], head.content) == ("4", b"")
        assert after.content == b"four"  # the connection's framing survived the HEAD
        assert receiver.connections == 1


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"POST /hook\r\n\r\n", 400, id="two-part request line"),
        pytest.param(b"POST  /hook HTTP/1.1\r\n\r\n", 400, id="double space"),
        pytest.param(b"POST hook HTTP/1.1\r\n\r\n", 400, id="not origin-form"),
        pytest.param(b"POST /hook HTTP/2.0\r\n\r\n", 505, id="version"),
        pytest.param(b"POST /hook HTTP/1.1\r\nHost : x\r\n\r\n", 400, id="space before colon"),
        pytest.param(b"POST /hook HTTP/1.1\r\nNoColon\r\n\r\n", 400, id="no colon"),
        pytest.param(b"POST /hook HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, id="obs-fold"),
        pytest.param(b"POST /hook HTTP/1.1\r\nA: b\nB: c\r\n\r\n", 400, id="bare LF"),
        pytest.param(b"POST /hook HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, id="bad length"),
        pytest.param(
            b"POST /hook HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
            id="two lengths",
        ),
        pytest.param(
            b"POST /hook HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            id="length and chunked",
        ),
        pytest.param(
            b"POST /hook HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
            id="other coding",
        ),
        pytest.param(
            b"POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            id="bad chunk size",
        ),
        pytest.param(
            b"POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            400,
            id="chunk longer than said",
        ),
        pytest.param(
            b"POST /hook HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431, id="long line"
        ),
    ],
)
async def test_malformed_requests_are_refused_and_not_recorded(
    request_bytes: bytes, status: int
) -> None:
    async with Receiver(Answer()) as receiver:
        answer = await _raw(receiver, request_bytes)
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer
        assert b"\r\nConnection: close\r\n" in answer
        assert receiver.received == []


async def test_set_mode_brings_a_receiver_back() -> None:
    async with Receiver(Close()) as receiver, httpx.AsyncClient() as http:
        with pytest.raises(httpx.TransportError):
            await http.post(receiver.url, content=b"1")
        receiver.set_mode(Answer(202, b"back"))
        response = await http.post(receiver.url, content=b"2")
        assert (response.status_code, response.content) == (202, b"back")
        assert [r.body for r in receiver.received] == [b"1", b"2"]


async def test_wait_for_fails_in_bounded_time() -> None:
    async with Receiver(Answer()) as receiver:
        started = time.monotonic()
        with pytest.raises(AssertionError, match="1 requests"):
            await receiver.wait_for(1, within=0.2)
        assert time.monotonic() - started < 1.0


async def test_stopping_drops_hanging_connections_at_once() -> None:
    async with httpx.AsyncClient(timeout=30) as http:

        async def hang_then_stop() -> tuple[float, asyncio.Task[httpx.Response]]:
            async with Receiver(Hang()) as receiver:
                waiting = asyncio.create_task(http.post(receiver.url, content=b"x"))
                await receiver.wait_for(1)
                started = time.monotonic()
            return time.monotonic() - started, waiting

        # Bounded, so a stop that hangs fails here rather than at the suite's timeout.
        stopping, waiting = await asyncio.wait_for(hang_then_stop(), 5)
        assert stopping < 1.0
        with pytest.raises(httpx.TransportError):
            await asyncio.wait_for(waiting, 5)


async def test_stopping_drops_a_client_that_stopped_reading() -> None:
    async with httpx.AsyncClient(timeout=30) as http, AsyncExitStack() as streams:

        async def stall_then_stop() -> tuple[float, httpx.Response]:
            async with Receiver(Huge(256 * 1024 * 1024)) as receiver:
                # Headers read, the body left unread: the receiver's writes back up.
                response = await streams.enter_async_context(
                    http.stream("POST", receiver.url, content=b"x")
                )
                assert response.status_code == 200
                started = time.monotonic()
            return time.monotonic() - started, response

        stopping, response = await asyncio.wait_for(stall_then_stop(), 5)
        assert stopping < 1.0
        with pytest.raises(httpx.TransportError):
            await asyncio.wait_for(response.aread(), 5)
