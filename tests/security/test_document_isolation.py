"""Findings 2 and 7: documents of two orgs met.

2. Org B made a unique index on ``email``; org A's viewer listed it, org A's admin dropped it
   (204), and B's next duplicate insert succeeded. A client ``_id`` used by org B made the
   same ``_id`` a 409 for org A (which so learned that B has it).
7. ``$objectToArray`` of ``$$ROOT`` returned the hidden ``_org`` and ``_owner``, and
   ``$$ROOT._org`` inside ``$expr`` passed the guard.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, member_tokens

Client = AsyncTestClient[OrgbaseApp]
HIDDEN = ("_org", "_owner")


@pytest.fixture
async def orgs(client: Client) -> dict[str, Any]:
    _, a = await member_tokens(client, ("admin", "viewer"))
    _, b = await member_tokens(client, ())
    return {"a": {k: bearer(v) for k, v in a.items()}, "b": {k: bearer(v) for k, v in b.items()}}


async def test_an_orgs_indexes_are_its_own(client: Client, orgs: dict[str, Any]) -> None:
    a, b = orgs["a"], orgs["b"]
    made = await client.post(
        "/v1/docs/people/indexes", headers=b["owner"], json={"keys": {"email": 1}, "unique": True}
    )
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert (
        await client.post("/v1/docs/people", headers=b["owner"], json={"email": "e"})
    ).status_code == 201
    # A sees none of it and cannot drop it.
    assert (await client.get("/v1/docs/people/indexes", headers=a["viewer"])).json() == []
    dropped = await client.delete(f"/v1/docs/people/indexes/{name}", headers=a["admin"])
    assert (dropped.status_code, dropped.json()["code"]) == (404, "index_not_found")
    # B's index still binds B...
    again = await client.post("/v1/docs/people", headers=b["owner"], json={"email": "e"})
    assert (again.status_code, again.json()["code"]) == (409, "duplicate_key")
    listed = (await client.get("/v1/docs/people/indexes", headers=b["owner"])).json()
    assert [(i["keys"], i["unique"]) for i in listed] == [({"email": 1}, True)]
    # ...and only B: A's documents may share an email between them.
    for _ in range(2):
        mine = await client.post("/v1/docs/people", headers=a["owner"], json={"email": "e"})
        assert mine.status_code == 201, mine.text


async def test_the_same_id_in_two_orgs_never_collides(client: Client, orgs: dict[str, Any]) -> None:
    a, b = orgs["a"], orgs["b"]
    for headers, text in ((b["owner"], "B's"), (a["owner"], "A's")):
        stored = await client.post(
            "/v1/docs/things", headers=headers, json={"_id": "shared-id", "text": text}
        )
        assert stored.status_code == 201, stored.text  # no 409 telling A that B has it
    for headers, text in ((a["owner"], "A's"), (b["owner"], "B's")):
        read = await client.get("/v1/docs/things/shared-id", headers=headers)
        assert read.json()["text"] == text
    # Deleting A's leaves B's.
    assert (await client.delete("/v1/docs/things/shared-id", headers=a["owner"])).status_code == 204
    assert (await client.get("/v1/docs/things/shared-id", headers=b["owner"])).json()[
        "text"
    ] == "B's"


async def test_an_orgs_collection_names_are_its_own(client: Client, orgs: dict[str, Any]) -> None:
    a, b = orgs["a"], orgs["b"]
    await client.post("/v1/docs/only_b_has_this", headers=b["owner"], json={"x": 1})
    names = [c["name"] for c in (await client.get("/v1/docs", headers=a["owner"])).json()]
    assert "only_b_has_this" not in names


LEAKS = [
    ("aggregate", {"pipeline": [{"$project": {"all": {"$objectToArray": "$$ROOT"}}}]}),
    ("aggregate", {"pipeline": [{"$replaceRoot": {"newRoot": {"root": "$$ROOT"}}}]}),
    ("aggregate", {"pipeline": [{"$addFields": {"copy": "$$CURRENT"}}]}),
    ("aggregate", {"pipeline": [{"$group": {"_id": None, "docs": {"$push": "$$ROOT"}}}]}),
    (
        "aggregate",
        {
            "pipeline": [
                {
                    "$lookup": {
                        "from": "secrets",
                        "localField": "k",
                        "foreignField": "k",
                        "as": "joined",
                    }
                },
                {"$project": {"all": {"$objectToArray": {"$arrayElemAt": ["$joined", 0]}}}},
            ]
        },
    ),
    ("query", {"projection": {"all": {"$objectToArray": "$$ROOT"}}}),
]


@pytest.mark.parametrize(("route", "body"), LEAKS)
async def test_hidden_fields_never_come_out(
    client: Client, orgs: dict[str, Any], route: str, body: dict[str, Any]
) -> None:
    owner = orgs["a"]["owner"]
    await client.post("/v1/docs/secrets", headers=owner, json={"k": 1, "text": "hello"})
    response = await client.post(f"/v1/docs/secrets/{route}", headers=owner, json=body)
    assert response.status_code in (200, 400), response.text
    for hidden in HIDDEN:
        assert hidden not in response.text, response.text


@pytest.mark.parametrize(
    "expression",
    [
        {"$eq": ["$$ROOT._org", "anything"]},
        {"$eq": ["$$CURRENT._owner", "anything"]},
        {"$eq": [{"$getField": {"field": {"$concat": ["_", "org"]}, "input": "$$ROOT"}}, "x"]},
        {"$gt": [{"$size": {"$objectToArray": "$$ROOT"}}, 0]},
    ],
)
async def test_expressions_cannot_probe_hidden_fields(
    client: Client, orgs: dict[str, Any], expression: dict[str, Any]
) -> None:
    owner = orgs["a"]["owner"]
    response = await client.post(
        "/v1/docs/secrets/query", headers=owner, json={"filter": {"$expr": expression}}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] in ("reserved_field", "forbidden_operator")
