"""A signed upload URL writes only what its signer may write, as the signer is when the
bytes arrive.

The attacks that worked: a member (or a member-role API key) signed an upload into an
``admin_write`` bucket, or over another person's object in an ``owner_private`` bucket,
and the PUT through the token replaced the object (a direct upload answered 403); and a
member's signed URL kept working after the owner removed them. Now signing needs the right
to write that object under the bucket's policy (to replace it, when upserting), the PUT is
checked again under the policy as it is then, with the signer's authority as it is then
(a removed member's, a revoked key's upload is refused): through the real gateway.
"""

from __future__ import annotations

from typing import Any

from tests.storage.conftest import Client, S, make_bucket, org_person, put_object
from tests.support.http import add_member, bearer, new_user, sign_in

UPSERT = {"x-upsert": "true"}


async def _org(client: Client) -> dict[str, Any]:
    """An org: its owner's headers, a member (user and headers) and a member-role key."""
    owner = await org_person(client, "signed")
    member, _ = await new_user(client)
    await add_member(client, {"access_token": owner["token"]}, owner["org"], member, "member")
    member_headers = bearer((await sign_in(client, member["email"], owner["org"]))["access_token"])
    made = await client.post(
        f"/v1/orgs/{owner['org']}/api-keys",
        headers=owner["headers"],
        json={"name": "ci-member", "role": "member"},
    )
    assert made.status_code == 201, made.text
    return {
        "org": owner["org"],
        "owner": owner["headers"],
        "member": member,
        "member_headers": member_headers,
        "key": made.json(),
    }


async def _sign(client: Client, headers: dict[str, str], path: str, **extra: str) -> Any:
    return await client.post(f"{S}/object/upload/sign/{path}", headers={**headers, **extra})


async def _put(client: Client, url: str, body: bytes) -> Any:
    return await client.put(
        f"{S}{url}", content=body, headers={"content-type": "text/plain", **UPSERT}
    )


async def test_signing_an_upload_needs_the_right_to_write_it(client: Client) -> None:
    org = await _org(client)
    owner = org["owner"]
    admins = await make_bucket(client, owner, policy="admin_write")
    private = await make_bucket(client, owner, policy="owner_private")
    assert (await put_object(client, owner, admins, "admin.txt", b"admin's")).status_code == 200
    assert (await put_object(client, owner, private, "payroll.csv", b"owner's")).status_code == 200
    key = {"apikey": org["key"]["key"]}
    for signer in (org["member_headers"], key):
        direct = await put_object(client, signer, admins, "m.txt", b"x")
        assert direct.status_code == 403
        assert direct.json()["error"] == "AccessDenied"
        for path in (f"{admins}/admin.txt", f"{admins}/new.txt", f"{private}/payroll.csv"):
            signed = await _sign(client, signer, path, **UPSERT)
            assert signed.status_code == 403, (path, signed.text)
            assert signed.json()["error"] == "AccessDenied"
        without_upsert = await _sign(client, signer, f"{admins}/admin.txt")
        assert without_upsert.status_code == 403, without_upsert.text
    assert (await client.get(f"{S}/object/{admins}/admin.txt", headers=owner)).content == b"admin's"
    mine = await client.get(f"{S}/object/{private}/payroll.csv", headers=owner)
    assert mine.content == b"owner's"
    # What the member may write, the member may still sign: their own object, even here.
    signed = await _sign(client, org["member_headers"], f"{private}/mine.txt")
    assert signed.status_code == 200, signed.text
    assert (await _put(client, signed.json()["url"], b"member's")).status_code == 200


async def test_the_put_is_checked_under_the_policy_of_its_time(client: Client) -> None:
    org = await _org(client)
    owner = org["owner"]
    bucket = await make_bucket(client, owner)
    signed = await _sign(client, org["member_headers"], f"{bucket}/later.txt", **UPSERT)
    assert signed.status_code == 200, signed.text
    # The bucket becomes the admins' before the member's bytes arrive.
    turned = {"policy": "admin_write"}
    changed = await client.put(f"{S}/bucket/{bucket}", headers=owner, json=turned)
    assert changed.status_code == 200, changed.text
    refused = await _put(client, signed.json()["url"], b"member's")
    assert refused.status_code == 403
    assert refused.json()["error"] == "AccessDenied"
    missing = await client.get(f"{S}/object/{bucket}/later.txt", headers=owner)
    assert missing.status_code == 404


async def test_a_removed_signer_uploads_nothing(client: Client) -> None:
    org = await _org(client)
    owner = org["owner"]
    bucket = await make_bucket(client, owner)
    by_member = await _sign(client, org["member_headers"], f"{bucket}/after-removal.txt")
    assert by_member.status_code == 200, by_member.text
    by_key = await _sign(client, {"apikey": org["key"]["key"]}, f"{bucket}/after-revocation.txt")
    assert by_key.status_code == 200, by_key.text
    removed = await client.delete(
        f"/v1/orgs/{org['org']}/members/{org['member']['id']}", headers=owner
    )
    assert removed.status_code == 204, removed.text
    revoked = await client.delete(
        f"/v1/orgs/{org['org']}/api-keys/{org['key']['id']}", headers=owner
    )
    assert revoked.status_code in (200, 204), revoked.text
    for signed, name in ((by_member, "after-removal.txt"), (by_key, "after-revocation.txt")):
        refused = await _put(client, signed.json()["url"], b"from outside")
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "AccessDenied"
        assert "signer may no longer write" in refused.json()["message"]
        missing = await client.get(f"{S}/object/{bucket}/{name}", headers=owner)
        assert missing.status_code == 404
