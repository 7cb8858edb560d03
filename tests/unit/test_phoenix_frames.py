"""Phoenix frames as Supabase Realtime's clients write them: what decodes, and the codes of
what does not (the socket itself: tests/integration/test_supabase_realtime.py)."""

from __future__ import annotations

import pytest

from orgbase.core.errors import Invalid
from orgbase.services.redis.phoenix import frames
from orgbase.services.redis.phoenix.frames import VSN_1, VSN_2, BinaryPayload, Frame


def _broadcast_push(payload: bytes, encoding: int) -> bytes:
    """A kind 3 frame: join_ref, ref, topic, event and metadata, then the payload."""
    parts = [b"1", b"2", b"realtime:room", b"shout", b""]
    header = bytes([frames.USER_BROADCAST_PUSH, *(len(p) for p in parts), encoding])
    return header + b"".join(parts) + payload


def test_text_frames_of_both_versions() -> None:
    v1 = '{"join_ref": "1", "ref": 2, "topic": "realtime:room", "event": "phx_join"}'
    assert frames.decode(v1, VSN_1) == Frame("1", "2", "realtime:room", "phx_join", {})
    v2 = '["1", "2", "realtime:room", "broadcast", {"a": 1}]'
    assert frames.decode(v2, VSN_2) == Frame("1", "2", "realtime:room", "broadcast", {"a": 1})


def test_binary_broadcasts_carry_json_or_bytes() -> None:
    as_json = frames.decode(_broadcast_push(b'{"a": 1}', frames.JSON), VSN_2)
    assert as_json.payload == {"type": "broadcast", "event": "shout", "payload": {"a": 1}}
    as_bytes = frames.decode(_broadcast_push(b"\x00\xff", frames.BINARY), VSN_2)
    assert as_bytes.payload["payload"] == BinaryPayload(b"\x00\xff")


@pytest.mark.parametrize(
    ("data", "vsn", "code", "message"),
    [
        ("{not json", VSN_1, "malformed_body", "the frame is not JSON"),
        ("[1, 2", VSN_2, "malformed_body", "the frame is not JSON"),
        (
            _broadcast_push(b"{not json", frames.JSON),
            VSN_2,
            "malformed_body",
            "the broadcast payload is not JSON",
        ),
        (_broadcast_push(b'"\xff"', frames.JSON), VSN_2, "invalid_utf8", None),
        ("[" * 10_000 + "]" * 10_000, VSN_2, "json_too_deep", None),
        ('{"topic": 1, "event": "x"}', VSN_1, "invalid_frame", "topic and event are strings"),
        (b"\x03", VSN_1, "invalid_frame", "binary frames need vsn=2.0.0"),
    ],
)
def test_what_is_not_a_frame_is_refused_with_its_code(
    data: str | bytes, vsn: str, code: str, message: str | None
) -> None:
    with pytest.raises(Invalid) as refused:
        frames.decode(data, vsn)
    assert refused.value.code == code
    if message is not None:
        assert refused.value.message == message
