"""The SDK's transport-free pieces: the requests its calls and queries make, and how their
answers are read (the clients against a real gateway: tests/integration/test_client_sdk.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orgbase.client import AuthError, calls
from orgbase.client.core import Call, TokenState
from orgbase.client.query import Database, Result


class Recorder:
    """A client that keeps the calls it is given and answers none of them."""

    def __init__(self) -> None:
        self.calls: list[Call[Result]] = []

    def call(self, call: Call[Result]) -> None:
        self.calls.append(call)


def _query_params(build: Any) -> list[tuple[str, str]]:
    client = Recorder()
    build(Database(client).table("tasks")).execute()
    (sent,) = client.calls
    assert (sent.request.method, sent.request.path) == ("GET", "/v1/db/tasks")
    params: list[tuple[str, str]] = sent.request.params
    return params


@pytest.mark.parametrize("operator", ["eq", "neq", "gt", "gte", "lt", "lte"])
def test_each_comparison_filters_with_its_operator(operator: str) -> None:
    params = _query_params(lambda q: getattr(q, operator)("points", 3).select("id"))
    assert params == [("points", f"{operator}.3"), ("select", "id")]


def test_comparisons_chain_and_write_postgrest_literals() -> None:
    params = _query_params(lambda q: q.eq("done", True).neq("owner", None).lte("at", "x y"))
    assert params == [("done", "eq.true"), ("owner", "neq.null"), ("at", "lte.x y")]


def test_a_query_answer_becomes_a_result_with_its_count() -> None:
    client = Recorder()
    Database(client).table("tasks").select("id", count="exact").single().execute()
    (sent,) = client.calls
    assert sent.request.headers == {
        "Prefer": "count=exact",
        "Accept": "application/vnd.pgrst.object+json",
    }
    answer = httpx.Response(200, json={"id": 1}, headers={"content-range": "0-0/7"})
    assert sent.read(answer) == Result({"id": 1}, 7, 200)


def test_signing_in_and_out_updates_the_token_state() -> None:
    state = TokenState()
    sign_in = calls.sign_in(state, "ada@example.com", "pw", "org-1")
    assert not sign_in.authenticated
    assert sign_in.request.json == {
        "grant_type": "password",
        "email": "ada@example.com",
        "password": "pw",
        "org_id": "org-1",
    }
    body = {"access_token": "a", "refresh_token": "r", "expires_in": 60, "org_id": "org-1"}
    assert sign_in.read(httpx.Response(200, json=body)) == body
    assert (state.access_token, state.refresh_token, state.org_id) == ("a", "r", "org-1")
    sign_out = calls.sign_out(state, "global")
    assert sign_out.authenticated
    assert sign_out.request.json == {"scope": "global"}
    sign_out.read(httpx.Response(204))
    assert (state.access_token, state.refresh_token, state.org_id) == (None, None, None)


def test_refreshing_without_a_session_is_refused_before_sending() -> None:
    with pytest.raises(AuthError) as refused:
        calls.refresh(TokenState(), None)
    assert refused.value.code == "not_signed_in"
