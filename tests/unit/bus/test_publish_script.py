"""The publish script's call, packed by hand: byte for byte what hiredis packs."""

from __future__ import annotations

import hiredis
import pytest

from infrastructure.bus.redis import publish_script
from infrastructure.bus.redis.publish_script import PUBLISH_SHA, PublishCall


def _call() -> PublishCall:
    return PublishCall(
        stream_key=lambda channel: f"sse:history:{{{channel[4:]}}}",
        epoch_key=lambda channel: f"sse:epoch:{{{channel[4:]}}}",
        maxlen=1000,
        ttl_ms=86_400_000,
    )


@pytest.mark.parametrize(
    ("channel", "body", "epoch", "tag", "uid", "check"),
    [
        ("sse:session:s1", b'{"type":"x","payload":{}}', "ab12cd1", "-", "0f3e9a2b:1", False),
        ("sse:agent:a-7", '{"type":"转人工"}'.encode(), "ab12cd10000000ff", "ctl9", "u:ff", True),
        ("sse:broadcast", b"{" + b"x" * 70_000 + b"}", "e", "tag\r\n", "", False),
    ],
)
def test_packed_is_what_hiredis_packs(
    channel: str, body: bytes, epoch: str, tag: str, uid: str, check: bool
) -> None:
    call = _call()
    expected = hiredis.pack_command(
        ("EVALSHA", PUBLISH_SHA, *call.args(channel, body, epoch, tag, uid, check))
    )
    assert call.packed(channel, body, epoch, tag, uid, check) == expected
    # Again, from the head kept for the channel.
    assert call.packed(channel, body, epoch, tag, uid, check) == expected


def test_the_heads_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish_script, "HEADS_KEPT", 3)
    call = _call()
    for n in range(10):
        channel = f"sse:session:s{n}"
        packed = call.packed(channel, b"{}", "e", "-", "u", False)
        assert packed == hiredis.pack_command(
            ("EVALSHA", PUBLISH_SHA, *call.args(channel, b"{}", "e", "-", "u", False))
        )
        assert len(call._heads) <= 3
