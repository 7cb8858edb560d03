"""Every command the document API sends to the server is scoped by the org field, and
leads with it (docs/scaling.md: the shard key of a sharded MongoDB starts with the org
field, so a filter that leads with it is what lets mongos target one org's chunks).

PyMongo's command monitoring sees the commands exactly as the driver sends them to a real
server (here the stack's Mongo-wire server), after the API's rewriting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pymongo import monitoring

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from orgbase.services.mongo.guard import ORG
from tests.support.http import bearer, member_tokens


class Recorder(monitoring.CommandListener):
    """Keeps the commands sent while recording (registered once per process: PyMongo has
    no way to unregister a global listener)."""

    def __init__(self) -> None:
        self.recording = False
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording:
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...


RECORDER = Recorder()
monitoring.register(RECORDER)


@pytest.fixture
async def monitored(settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    """A gateway whose Mongo client was made after the listener was registered."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


def _filters(command: dict[str, Any]) -> list[tuple[str, Any]]:
    """(what, filter) of every filter a command carries, as sent."""
    name = next(iter(command))
    found: list[tuple[str, Any]] = []
    if name in ("find", "count", "distinct", "findAndModify"):
        key = "filter" if name == "find" else "query"
        found.append((name, command.get(key)))
    elif name == "delete":
        found += [(name, d["q"]) for d in command["deletes"]]
    elif name == "update":
        found += [(name, u["q"]) for u in command["updates"]]
    elif name == "aggregate":
        first = command["pipeline"][0] if command["pipeline"] else {}
        found.append((name, first.get("$match")))
    return found


async def test_every_filter_sent_to_the_driver_leads_with_the_org(
    monitored: AsyncTestClient[OrgbaseApp],
) -> None:
    client = monitored
    org_id, tokens = await member_tokens(client, ("admin",))
    admin = bearer(tokens["admin"])
    RECORDER.commands.clear()
    RECORDER.recording = True
    try:
        created = await client.post(
            "/v1/docs/fruit",
            headers=admin,
            json=[{"kind": "fruit", "name": n, "price": p} for n, p in (("apple", 3), ("pear", 5))],
        )
        assert created.status_code == 201, created.text
        oid = created.json()[0]["_id"]["$oid"]
        steps = [
            client.get(
                "/v1/docs/fruit", headers=admin, params={"filter": json.dumps({"kind": "fruit"})}
            ),
            client.get("/v1/docs/fruit", headers=admin),
            client.get(f"/v1/docs/fruit/{oid}", headers=admin),
            client.post(
                "/v1/docs/fruit/query", headers=admin, json={"filter": {"price": {"$gt": 1}}}
            ),
            client.post("/v1/docs/fruit/count", headers=admin, json={"filter": {"kind": "fruit"}}),
            client.post(
                "/v1/docs/fruit/aggregate",
                headers=admin,
                json={"pipeline": [{"$group": {"_id": "$kind", "n": {"$sum": 1}}}]},
            ),
            client.post(
                "/v1/docs/fruit/update",
                headers=admin,
                json={"filter": {"name": "pear"}, "update": {"$set": {"price": 6}}},
            ),
            client.patch(f"/v1/docs/fruit/{oid}", headers=admin, json={"$set": {"price": 4}}),
            client.post("/v1/docs/fruit/delete", headers=admin, json={"filter": {"name": "pear"}}),
            client.delete(f"/v1/docs/fruit/{oid}", headers=admin),
        ]
        for step in steps:
            response = await step
            assert response.status_code < 300, response.text
    finally:
        RECORDER.recording = False

    filters = [f for command in RECORDER.commands for f in _filters(command)]
    kinds = {what for what, _ in filters}
    # The API really went through the driver for reads, counts, aggregations and writes.
    assert {"find", "aggregate", "update", "delete"} <= kinds, kinds
    for what, sent in filters:
        assert isinstance(sent, dict), (what, sent)
        assert sent, what
        assert next(iter(sent)) == ORG, f"{what} filter does not lead with {ORG}: {sent}"
        assert sent[ORG] == org_id, (what, sent)
    inserts = [c for c in RECORDER.commands if next(iter(c)) == "insert"]
    assert inserts
    for command in inserts:
        for document in command["documents"]:
            assert document[ORG] == org_id
