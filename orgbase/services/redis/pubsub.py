"""The realtime hub's Redis pub/sub: one connection per gateway process, kept open.

On a single primary (behind Sentinel) that is one PubSub connection with SUBSCRIBE and
PUBLISH; on a Redis Cluster, sharded pub/sub (SSUBSCRIBE/SPUBLISH, one connection per
shard, opened by redis-py as the channels' slots need). The listening loop reconnects
and subscribes again to what the hub still wants after any loss (a failover, a restart);
what it hears goes to the hub's ``received``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub

from orgbase.core.background import BackgroundTask
from orgbase.core.redis import REDIS_DOWN_ERRORS, RedisClients

log = structlog.get_logger("orgbase.realtime")

STOP_SECONDS = 5.0
"""How long shutdown waits for the listening loop."""
_MIN_IDLE_SECONDS = 0.001
_MAX_IDLE_SECONDS = 0.02


class RealtimePubSub(BackgroundTask):
    def __init__(
        self,
        redis: RedisClients,
        wanted: Callable[[], list[str]],
        received: Callable[[str, bytes], None],
    ) -> None:
        super().__init__("realtime pub/sub")
        self.redis = redis
        self._wanted = wanted
        """The channels to subscribe to on each (re)connect."""
        self._received = received
        self._pubsub: PubSub | ClusterPubSub | None = None
        self._idle = _MIN_IDLE_SECONDS

    @property
    def _sharded(self) -> bool:
        return self.redis.cluster is not None

    async def publish(self, channel: str, message: bytes) -> int:
        """Put a message on a channel of every replica; the number of receivers."""
        receivers = await self.redis.run(
            lambda r: r.spublish(channel, message) if self._sharded else r.publish(channel, message)
        )
        return int(receivers)

    async def subscribe(self, channel: str) -> None:
        """Listen on one more channel now; while disconnected, the next connection will
        (through ``wanted``)."""
        if self._pubsub is not None:
            with contextlib.suppress(*REDIS_DOWN_ERRORS):
                await self._subscribe(self._pubsub, channel)

    async def unsubscribe(self, channel: str) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(*REDIS_DOWN_ERRORS):
                if isinstance(self._pubsub, ClusterPubSub):
                    await self._pubsub.sunsubscribe(channel)
                else:
                    await self._pubsub.unsubscribe(channel)

    async def stop(self) -> None:
        # Bounded, unlike other loops': a reconnect in progress may wait on an unreachable
        # cluster, and shutdown must not.
        stopping = asyncio.ensure_future(super().stop())
        done, _ = await asyncio.wait({stopping}, timeout=STOP_SECONDS)
        if not done:
            log.warning("realtime loops did not stop in time", loops=1)
        else:
            with contextlib.suppress(Exception):
                stopping.result()

    def _new_pubsub(self) -> PubSub | ClusterPubSub:
        if self.redis.cluster is not None:
            return self.redis.cluster.pubsub()
        return self.redis.primary.pubsub(ignore_subscribe_messages=True)

    @staticmethod
    async def _subscribe(pubsub: PubSub | ClusterPubSub, *channels: str) -> None:
        if isinstance(pubsub, ClusterPubSub):
            await pubsub.ssubscribe(*channels)
        else:
            await pubsub.subscribe(*channels)

    async def _next_message(self, pubsub: PubSub | ClusterPubSub) -> dict[str, Any] | None:
        if isinstance(pubsub, ClusterPubSub):
            # redis-py reads the shards' connections in turn, waiting on each for the
            # timeout: any wait on a quiet shard delays the busy one. So poll them all
            # without waiting, and back off (1 ms up to 20 ms) only while all are quiet.
            message: dict[str, Any] | None = await pubsub.get_sharded_message(
                ignore_subscribe_messages=True, timeout=0.0
            )
            if message is None:
                await asyncio.sleep(self._idle)
                self._idle = min(self._idle * 2, _MAX_IDLE_SECONDS)
            else:
                self._idle = _MIN_IDLE_SECONDS
            return message
        plain: dict[str, Any] | None = await pubsub.get_message(timeout=1.0)
        return plain

    async def _refresh_cluster_map(self) -> None:
        """After a lost shard connection: ask the cluster who owns which slots now."""
        if self.redis.cluster is not None:
            with contextlib.suppress(Exception):
                await self.redis.cluster.nodes_manager.initialize()

    async def run(self) -> None:
        """Listen on one pub/sub connection (one per shard on a cluster); on any loss,
        reconnect and resubscribe."""
        while not self.stopping.is_set():
            pubsub = self._new_pubsub()
            try:
                await self._subscribe(pubsub, *self._wanted())
                self._pubsub = pubsub
                while not self.stopping.is_set():
                    message = await self._next_message(pubsub)
                    if message is None or str(message.get("type")) not in ("message", "smessage"):
                        continue
                    self._received(message["channel"].decode(), message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect: Redis failed over or went away
                log.warning("realtime pub/sub lost; reconnecting", error=repr(exc))
                await asyncio.sleep(0.5)
                await self._refresh_cluster_map()
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
