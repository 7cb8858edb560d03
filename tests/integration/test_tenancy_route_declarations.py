"""The tenancy routes declared through ``route_parts`` (``acting``: a POST answered 200)
or by ``inviting`` (the two invite routes), and the SSO deletes left to Litestar's default
status, publish the same operations as before: their names, tags, bodies and statuses."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp


async def _paths(client: AsyncTestClient[OrgbaseApp]) -> dict[str, Any]:
    paths: dict[str, Any] = (await client.get("/schema/openapi.json")).json()["paths"]
    return paths


async def test_the_acting_posts_answer_200(client: AsyncTestClient[OrgbaseApp]) -> None:
    paths = await _paths(client)
    expected = {
        "/v1/invitations/accept": ("V1InvitationsAcceptAcceptInvitation", "invitations"),
        "/v1/orgs/{org_id}/settings/rollback/{version}": (
            "V1OrgsOrgIdSettingsRollbackVersionRollback",
            "settings",
        ),
        "/v1/orgs/{org_id}/sso/domains/{domain}/verify": (
            "V1OrgsOrgIdSsoDomainsVerifyVerifyDomain",
            "orgs",
        ),
    }
    for path, (operation_id, tag) in expected.items():
        operation = paths[path]["post"]
        assert operation["operationId"] == operation_id
        assert operation["tags"] == [tag]
        assert "200" in operation["responses"]
        assert "201" not in operation["responses"]


async def test_the_sso_deletes_answer_204(client: AsyncTestClient[OrgbaseApp]) -> None:
    paths = await _paths(client)
    for path, operation_id in {
        "/v1/orgs/{org_id}/sso": "V1OrgsOrgIdSsoRemove",
        "/v1/orgs/{org_id}/sso/domains/{domain}": "V1OrgsOrgIdSsoDomainsDropDomain",
        "/v1/orgs/{org_id}/members/{user_id}/sso-binding": (
            "V1OrgsOrgIdMembersUserIdSsoBindingRelease"
        ),
    }.items():
        operation = paths[path]["delete"]
        assert operation["operationId"] == operation_id
        assert operation["tags"] == ["orgs"]
        assert "204" in operation["responses"]


async def test_the_two_invite_routes_keep_their_operations(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    paths = await _paths(client)
    for path, operation_id, tag, status in (
        ("/v1/orgs/{org_id}/members", "V1OrgsOrgIdMembersAdd", "members", "202"),
        ("/v1/orgs/{org_id}/invitations", "V1OrgsOrgIdInvitationsCreate", "invitations", "201"),
    ):
        operation = paths[path]["post"]
        assert operation["operationId"] == operation_id
        assert operation["tags"] == [tag]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/InvitationCreate"}
        answer = operation["responses"][status]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/Invitation"}
        assert [p["name"] for p in operation["parameters"]] == ["org_id"]
