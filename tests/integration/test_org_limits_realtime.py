"""Per-org limits on open sockets, through a real gateway: publishes count against the
org's allowance (an error frame past it), and an org's connections are capped."""

from __future__ import annotations

import httpx
import pytest
import websockets

from orgbase.core.settings import Settings
from tests.integration.test_realtime import command, connect, member_of_new_org, next_message
from tests.support.data import make_platform_admin
from tests.support.waiting import eventually


async def platform_admin(http: httpx.AsyncClient, settings: Settings) -> dict[str, str]:
    admin = await member_of_new_org(http)
    await make_platform_admin(settings, admin["user"])
    return {"Authorization": f"Bearer {admin['token']}"}


async def member_with_limits(
    http: httpx.AsyncClient, settings: Settings, **limits: int
) -> dict[str, str]:
    """A member of a new org whose limits a platform admin set to ``limits``."""
    admin = await platform_admin(http, settings)
    member = await member_of_new_org(http)
    answer = await http.put(f"/v1/platform/orgs/{member['org']}/limits", headers=admin, json=limits)
    assert answer.status_code == 200, answer.text
    return member


async def test_socket_publishes_count_against_the_org(live_server: str, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        # 18 a minute: a bucket of 3.
        member = await member_with_limits(http, settings, realtime_publishes_per_minute=18)
        socket = await connect(live_server, member["token"])
        try:
            for _ in range(3):
                reply = await command(socket, type="publish", channel="room", event="e")
                assert reply["type"] == "published", reply
            refused = await command(socket, type="publish", channel="room", event="e")
            assert (refused["type"], refused["code"]) == ("error", "org_rate_limited")
            # The HTTP publish shares the same allowance.
            over = await http.post(
                "/v1/realtime/room",
                headers={"Authorization": f"Bearer {member['token']}"},
                json={"event": "e"},
            )
            assert over.status_code == 429
        finally:
            await socket.close()


async def test_an_orgs_connections_are_capped(live_server: str, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        member = await member_with_limits(http, settings, realtime_connections=1)
        first = await connect(live_server, member["token"])
        # A socket is counted once its credential is checked, after the handshake: the
        # pong says the first is counted before the second is opened.
        assert (await command(first, type="ping"))["type"] == "pong"
        second = await connect(live_server, member["token"])
        error = await next_message(second)
        assert error["code"] == "realtime_connections_exceeded"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await next_message(second)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4429
        # The first still works; once it is closed, a new one is let in.
        assert (await command(first, type="ping"))["type"] == "pong"
        await first.close()

        async def admitted() -> bool:
            socket = await connect(live_server, member["token"])
            try:
                # Refused, the first frame is the error, not the pong.
                reply = await command(socket, type="ping")
                return bool(reply.get("type") == "pong")
            except websockets.ConnectionClosed:
                return False
            finally:
                await socket.close()

        await eventually(admitted, within=10, what="a connection after the first closed")


async def test_a_socket_joins_at_most_the_orgs_channels_per_connection(
    live_server: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        member = await member_with_limits(http, settings, realtime_channels_per_connection=2)
        socket = await connect(live_server, member["token"])
        try:
            for channel in ("one", "two"):
                joined = await command(socket, type="subscribe", channel=channel)
                assert joined["type"] == "subscribed", joined
            refused = await command(socket, type="subscribe", channel="three")
            assert (refused["type"], refused["code"]) == ("error", "too_many_channels")
            # Joining a channel the socket holds again is no new channel.
            again = await command(socket, type="subscribe", channel="one")
            assert again["type"] == "subscribed", again
            # Leaving one makes room on the same socket.
            left = await command(socket, type="unsubscribe", channel="one")
            assert left["type"] == "unsubscribed", left
            joined = await command(socket, type="subscribe", channel="three")
            assert joined["type"] == "subscribed", joined
        finally:
            await socket.close()
