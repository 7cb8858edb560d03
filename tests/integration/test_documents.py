"""The document API against the Mongo-wire server: CRUD, queries, aggregation, indexes,
roles, and isolation between orgs."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, member_tokens

Client = AsyncTestClient[OrgbaseApp]


@pytest.fixture(scope="module")
async def orgs(client: Client) -> dict[str, Any]:
    org_a, a = await member_tokens(client, ("admin", "member", "viewer"))
    org_b, b = await member_tokens(client, ("member",))
    return {"a": a, "b": b, "org_a": org_a, "org_b": org_b}


async def test_crud_with_extended_json(client: Client, orgs: dict[str, Any]) -> None:
    member = bearer(orgs["a"]["member"])
    created = await client.post(
        "/v1/docs/notes",
        headers=member,
        json={"title": "first", "tags": ["x"], "when": {"$date": "2026-11-22T10:00:00Z"}, "n": 1},
    )
    assert created.status_code == 201, created.text
    note = created.json()
    assert set(note) == {"_id", "title", "tags", "when", "n"}
    oid = note["_id"]["$oid"]
    assert note["when"] == {"$date": "2026-11-22T10:00:00Z"}
    got = await client.get(f"/v1/docs/notes/{oid}", headers=member)
    assert got.json() == note
    patched = await client.patch(
        f"/v1/docs/notes/{oid}",
        headers=member,
        json={"$set": {"title": "renamed"}, "$inc": {"n": 2}},
    )
    assert (patched.json()["title"], patched.json()["n"]) == ("renamed", 3)
    replaced = await client.put(f"/v1/docs/notes/{oid}", headers=member, json={"title": "replaced"})
    assert replaced.json() == {"_id": {"$oid": oid}, "title": "replaced"}
    assert (await client.delete(f"/v1/docs/notes/{oid}", headers=member)).status_code == 204
    assert (await client.get(f"/v1/docs/notes/{oid}", headers=member)).status_code == 404


async def test_queries_counts_and_aggregation(client: Client, orgs: dict[str, Any]) -> None:
    admin = bearer(orgs["a"]["admin"])
    docs = [
        {"kind": "fruit", "name": n, "price": p}
        for n, p in (("apple", 3), ("pear", 5), ("plum", 2))
    ]
    docs.append({"kind": "veg", "name": "kale", "price": 4})
    inserted = await client.post("/v1/docs/products", headers=admin, json=docs)
    assert inserted.status_code == 201
    assert len(inserted.json()) == 4
    listed = await client.get(
        "/v1/docs/products",
        headers=admin,
        params={
            "filter": '{"kind": "fruit"}',
            "sort": '{"price": -1}',
            "projection": '{"name": 1, "_id": 0}',
            "limit": 2,
        },
    )
    assert listed.json() == [{"name": "pear"}, {"name": "apple"}]
    queried = await client.post(
        "/v1/docs/products/query",
        headers=admin,
        json={
            "filter": {"price": {"$gte": 3}},
            "sort": {"name": 1},
            "projection": {"name": 1, "_id": 0},
            "skip": 1,
        },
    )
    assert queried.json() == [{"name": "kale"}, {"name": "pear"}]
    counted = await client.post(
        "/v1/docs/products/count", headers=admin, json={"filter": {"kind": "fruit"}}
    )
    assert counted.json() == {"count": 3}
    grouped = await client.post(
        "/v1/docs/products/aggregate",
        headers=admin,
        json={"pipeline": [{"$group": {"_id": "$kind", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]},
    )
    assert grouped.json() == [{"_id": "fruit", "n": 3}, {"_id": "veg", "n": 1}]
    updated = await client.post(
        "/v1/docs/products/update",
        headers=admin,
        json={"filter": {"kind": "fruit"}, "update": {"$inc": {"price": 1}}},
    )
    assert updated.json()["modified"] == 3
    upserted = await client.post(
        "/v1/docs/products/update",
        headers=admin,
        json={
            "filter": {"name": "fig"},
            "update": {"$set": {"kind": "fruit", "price": 9}},
            "upsert": True,
        },
    )
    assert upserted.json()["upserted_id"]
    fig = await client.post(
        "/v1/docs/products/query",
        headers=admin,
        json={"filter": {"name": "fig"}, "projection": {"_id": 0}},
    )
    assert fig.json() == [{"name": "fig", "kind": "fruit", "price": 9}]
    deleted = await client.post(
        "/v1/docs/products/delete", headers=admin, json={"filter": {"kind": "veg"}}
    )
    assert deleted.json() == {"deleted": 1}
    unfiltered = await client.post("/v1/docs/products/delete", headers=admin, json={"filter": {}})
    assert unfiltered.status_code == 400


async def test_lookups_stay_in_the_org(client: Client, orgs: dict[str, Any]) -> None:
    a, b = bearer(orgs["a"]["owner"]), bearer(orgs["b"]["owner"])
    await client.post("/v1/docs/authors", headers=a, json={"key": 1, "name": "A's author"})
    await client.post("/v1/docs/authors", headers=b, json={"key": 1, "name": "B's author"})
    await client.post("/v1/docs/books", headers=a, json={"author": 1, "title": "A's book"})
    joined = await client.post(
        "/v1/docs/books/aggregate",
        headers=a,
        json={
            "pipeline": [
                {
                    "$lookup": {
                        "from": "authors",
                        "localField": "author",
                        "foreignField": "key",
                        "as": "by",
                    }
                },
            ]
        },
    )
    assert joined.status_code == 200, joined.text
    # ($project after $lookup is a gap of the local Mongo-wire server: it returns the
    # joined array as a string.)
    rows = joined.json()
    assert all("_org" not in str(r) for r in rows)
    assert [(r["title"], [a["name"] for a in r["by"]]) for r in rows] == [
        ("A's book", ["A's author"])
    ]


async def test_indexes_are_per_org(client: Client, orgs: dict[str, Any]) -> None:
    admin_a, owner_b = bearer(orgs["a"]["admin"]), bearer(orgs["b"]["owner"])
    member_a = bearer(orgs["a"]["member"])
    refused = await client.post(
        "/v1/docs/accounts/indexes", headers=member_a, json={"keys": {"email": 1}, "unique": True}
    )
    assert refused.status_code == 403
    made = await client.post(
        "/v1/docs/accounts/indexes", headers=admin_a, json={"keys": {"email": 1}, "unique": True}
    )
    assert made.status_code == 201
    listed = (await client.get("/v1/docs/accounts/indexes", headers=admin_a)).json()
    assert any(index["keys"] == {"email": 1} and index["unique"] for index in listed)
    assert (
        await client.post("/v1/docs/accounts", headers=admin_a, json={"email": "x@a"})
    ).status_code == 201
    duplicate = await client.post("/v1/docs/accounts", headers=admin_a, json={"email": "x@a"})
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "duplicate_key")
    # The same email in another org is no duplicate: every index is led by the org.
    assert (
        await client.post("/v1/docs/accounts", headers=owner_b, json={"email": "x@a"})
    ).status_code == 201


async def test_roles(client: Client, orgs: dict[str, Any]) -> None:
    viewer, member, admin = (bearer(orgs["a"][r]) for r in ("viewer", "member", "admin"))
    refused = await client.post("/v1/docs/roles", headers=viewer, json={"x": 1})
    assert refused.status_code == 403
    by_admin = (await client.post("/v1/docs/roles", headers=admin, json={"x": "admin's"})).json()[
        "_id"
    ]["$oid"]
    by_member = (
        await client.post("/v1/docs/roles", headers=member, json={"x": "member's"})
    ).json()["_id"]["$oid"]
    assert len((await client.get("/v1/docs/roles", headers=viewer)).json()) == 2
    not_yours = await client.patch(
        f"/v1/docs/roles/{by_admin}", headers=member, json={"$set": {"x": "taken"}}
    )
    assert not_yours.status_code == 404
    assert (await client.delete(f"/v1/docs/roles/{by_admin}", headers=member)).status_code == 404
    assert (
        await client.patch(
            f"/v1/docs/roles/{by_member}", headers=member, json={"$set": {"x": "mine"}}
        )
    ).status_code == 200
    assert (
        await client.patch(
            f"/v1/docs/roles/{by_member}", headers=admin, json={"$set": {"x": "admin"}}
        )
    ).status_code == 200


async def test_orgs_never_see_each_other(client: Client, orgs: dict[str, Any]) -> None:
    a, b = bearer(orgs["a"]["owner"]), bearer(orgs["b"]["owner"])
    secret = (await client.post("/v1/docs/secrets", headers=b, json={"v": "B only"})).json()
    oid = secret["_id"]["$oid"]
    assert (await client.get(f"/v1/docs/secrets/{oid}", headers=a)).status_code == 404
    assert (await client.get("/v1/docs/secrets", headers=a)).json() == []
    for attempt in (
        ("PATCH", f"/v1/docs/secrets/{oid}", {"$set": {"v": "pwned"}}),
        ("PUT", f"/v1/docs/secrets/{oid}", {"v": "pwned"}),
        ("DELETE", f"/v1/docs/secrets/{oid}", None),
        (
            "POST",
            "/v1/docs/secrets/update",
            {"filter": {"v": "B only"}, "update": {"$set": {"v": "pwned"}}},
        ),
        ("POST", "/v1/docs/secrets/delete", {"filter": {"v": "B only"}}),
        ("POST", "/v1/docs/secrets/query", {"filter": {"_org": orgs["org_b"]}}),
        (
            "POST",
            "/v1/docs/secrets/query",
            {"filter": {"$or": [{"_org": orgs["org_b"]}, {"v": "B only"}]}},
        ),
        ("POST", "/v1/docs/secrets/aggregate", {"pipeline": [{"$match": {"_org": orgs["org_b"]}}]}),
        (
            "POST",
            "/v1/docs/secrets/aggregate",
            {"pipeline": [{"$unionWith": {"coll": "d_secrets"}}]},
        ),
        ("POST", "/v1/docs/secrets", {"v": "smuggled", "_org": orgs["org_b"]}),
    ):
        method, url, body = attempt
        response = await client.request(method, url, headers=a, json=body)
        assert response.status_code in (200, 400, 403, 404), (attempt, response.text)
        if response.status_code == 200:
            assert response.json() in (
                [],
                {"matched": 0, "modified": 0, "upserted_id": None},
                {"deleted": 0},
            ), attempt
    assert (await client.get(f"/v1/docs/secrets/{oid}", headers=b)).json()["v"] == "B only"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/docs/bad.name", {"x": 1}, 400, "invalid_collection"),
        ("POST", "/v1/docs/system_x", {"x": 1}, 400, "invalid_collection"),
        ("POST", "/v1/docs/ok", {"$set": 1}, 400, "invalid_document"),
        ("POST", "/v1/docs/ok", "a string", 400, "invalid_document"),
        ("POST", "/v1/docs/ok/query", {"filter": {"$where": "1"}}, 400, "forbidden_operator"),
        ("POST", "/v1/docs/ok/query", {"filter": {}, "limit": "ten"}, 400, "invalid_limit"),
        ("POST", "/v1/docs/ok/query", {"filter": {}, "bogus": 1}, 400, "invalid_body"),
        ("POST", "/v1/docs/ok/aggregate", {"pipeline": [{"$out": "x"}]}, 400, "forbidden_operator"),
        (
            "POST",
            "/v1/docs/ok/update",
            {"filter": {}, "update": {"name": "no operator"}},
            400,
            "forbidden_operator",
        ),
        ("GET", "/v1/docs/ok/not-an-object-id", None, 404, "document_not_found"),
    ],
)
async def test_bad_requests(
    client: Client, orgs: dict[str, Any], method: str, path: str, body: Any, status: int, code: str
) -> None:
    response = await client.request(method, path, headers=bearer(orgs["a"]["owner"]), json=body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


async def test_malformed_bodies_and_filters(client: Client, orgs: dict[str, Any]) -> None:
    headers = {**bearer(orgs["a"]["owner"]), "content-type": "application/json"}
    garbled = await client.post("/v1/docs/ok", headers=headers, content=b"{oops")
    assert (garbled.status_code, garbled.json()["code"]) == (400, "malformed_body")
    bad_filter = await client.get("/v1/docs/ok", headers=headers, params={"filter": "{not json"})
    assert bad_filter.status_code == 400


async def test_bulk_inserts_are_all_or_nothing(client: Client, orgs: dict[str, Any]) -> None:
    admin = bearer(orgs["a"]["admin"])
    await client.post(
        "/v1/docs/ledger/indexes", headers=admin, json={"keys": {"ref": 1}, "unique": True}
    )
    first = await client.post("/v1/docs/ledger", headers=admin, json={"ref": "r1", "amount": 1})
    existing = first.json()["_id"]
    batch = [{"ref": "r2", "amount": 2}, {"ref": "r3", "amount": 3}, {"ref": "r1", "amount": 9}]
    refused = await client.post("/v1/docs/ledger", headers=admin, json=batch)
    assert (refused.status_code, refused.json()["code"]) == (409, "duplicate_key")
    refs = [d["ref"] for d in (await client.get("/v1/docs/ledger", headers=admin)).json()]
    assert refs == ["r1"], "no partial batch"
    # A duplicate _id must not make the take-back delete the document that was there.
    clash = await client.post(
        "/v1/docs/ledger", headers=admin, json=[{"_id": existing, "ref": "r4"}]
    )
    assert clash.status_code == 409
    assert [d["ref"] for d in (await client.get("/v1/docs/ledger", headers=admin)).json()] == ["r1"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"t": "bad \\ud800"}', id="lone surrogate"),
        pytest.param(b'{"n": 123456789012345678901234567890}', id="int beyond 8 bytes"),
    ],
)
async def test_unencodable_documents_are_a_400(
    client: Client, orgs: dict[str, Any], body: bytes
) -> None:
    headers = {**bearer(orgs["a"]["owner"]), "content-type": "application/json"}
    response = await client.post("/v1/docs/odd", headers=headers, content=body)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_document")


async def test_a_dotted_key_inside_a_document_is_stored_as_sent(
    client: Client, orgs: dict[str, Any]
) -> None:
    """MongoDB stores dotted field names; only the query language reads dots as paths."""
    headers = bearer(orgs["a"]["owner"])
    created = await client.post("/v1/docs/odd", headers=headers, json={"a": {"b.c": 1}})
    assert created.status_code == 201, created.text
    oid = created.json()["_id"]["$oid"]
    stored = (await client.get(f"/v1/docs/odd/{oid}", headers=headers)).json()
    assert stored["a"] == {"b.c": 1}
