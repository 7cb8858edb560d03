"""The GoTrue routes declared by a factory (the mailing ones) or fed by a dependency (the
checked return URL of the provider flows) publish the same operations as hand-written
handlers: their names, their query parameters, their status codes."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp


async def _document(client: AsyncTestClient[OrgbaseApp]) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return document


async def test_the_mailing_routes_keep_their_operations(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    paths = (await _document(client))["paths"]
    for name in ("recover", "otp", "resend"):
        operation = paths[f"/auth/v1/{name}"]["post"]
        assert operation["operationId"] == f"AuthV1{name.title()}{name.title()}"
        assert [p["name"] for p in operation["parameters"]] == ["redirect_to"]
        assert "200" in operation["responses"]
        assert operation["tags"] == ["auth (GoTrue)"]


async def test_the_return_url_stays_a_query_parameter_of_the_provider_flows(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    paths = (await _document(client))["paths"]
    authorize = paths["/auth/v1/authorize"]["get"]
    link = paths["/auth/v1/user/identities/authorize"]["get"]
    assert authorize["operationId"] == "AuthV1AuthorizeAuthorize"
    assert [p["name"] for p in authorize["parameters"]] == [
        "provider",
        "redirect_to",
        "link_ticket",
    ]
    assert link["operationId"] == "AuthV1UserIdentitiesAuthorizeLink"
    assert [p["name"] for p in link["parameters"]] == ["provider", "redirect_to"]


async def test_a_mailing_route_answers_an_unknown_address_as_a_known_one(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    key = (await client.get("/v1/auth/client-config")).json()["publishable_key"]
    answer = await client.post(
        "/auth/v1/recover", json={"email": "nobody-here@example.test"}, headers={"apikey": key}
    )
    assert answer.status_code == 200
    assert answer.json() == {}
    refused = await client.post("/auth/v1/otp", content=b"{", headers={"apikey": key})
    assert refused.status_code == 400
    assert refused.json()["code"] == "bad_json"
