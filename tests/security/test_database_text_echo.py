"""Some routes sent a value straight to PostgreSQL and echoed its error: dropping the SSO
domain ``ex%00.com`` answered 400 ``invalid_value`` "invalid byte sequence for encoding
UTF8: 0x00" (its /verify route said ``invalid_domain``, and ``%ff.com`` was a 404
``domain_not_found``), ``POST /auth/v1/sso`` with a NUL in the domain the same, and org
settings holding ``\\u0000`` a 400 with PostgreSQL's DETAIL. A domain is checked by one
rule everywhere (400 ``invalid_domain``), and no PostgreSQL text reaches the client."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import admin_at_aal2, bearer, member_tokens, org_person

Client = AsyncTestClient[OrgbaseApp]
POSTGRES_WORDS = ("byte sequence", "UTF8", "0x00", "cannot be converted", "unsupported Unicode")


def _says_nothing_of_postgres(answer: object) -> None:
    text = str(answer)
    assert not any(word in text for word in POSTGRES_WORDS), text


async def test_a_domain_is_checked_by_one_rule_on_every_route(client: Client) -> None:
    person = await org_person(client)
    headers = bearer(
        (await admin_at_aal2(client, {"access_token": person["token"]}))["access_token"]
    )
    org = person["org"]
    for domain in ("ex%00.com", "%ff.com", "a%40b.com"):
        for method, path in (
            ("DELETE", f"/v1/orgs/{org}/sso/domains/{domain}"),
            ("POST", f"/v1/orgs/{org}/sso/domains/{domain}/verify"),
        ):
            answer = await client.request(method, path, headers=headers)
            assert (answer.status_code, answer.json()["code"]) == (400, "invalid_domain"), (
                method,
                path,
                answer.text,
            )


async def test_a_sign_in_by_domain_checks_the_domain(client: Client) -> None:
    config = await client.get("/v1/auth/client-config")
    key = {"apikey": config.json()["publishable_key"]}
    for domain in ("a@b.com\u0000", "ex\u0000.com", "a@b.com"):
        answer = await client.post("/auth/v1/sso", headers=key, json={"domain": domain})
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_domain"), answer.text
        _says_nothing_of_postgres(answer.json())


async def test_settings_postgres_cannot_hold_are_refused_without_its_words(
    client: Client,
) -> None:
    org, tokens = await member_tokens(client, ())
    headers = bearer(tokens["owner"])
    url = f"/v1/orgs/{org}/settings"
    for body in (b'{"settings":{"a":"\\u0000"}}', b'{"settings":{"\\u0000":1}}'):
        etag = (await client.get(url, headers=headers)).headers["etag"]
        answer = await client.put(
            url,
            headers={**headers, "If-Match": etag, "content-type": "application/json"},
            content=body,
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_value"), answer.text
        _says_nothing_of_postgres(answer.json())
