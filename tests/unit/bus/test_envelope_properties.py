"""Hypothesis: the envelope the bus writes is the envelope the publisher built, plus its id."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.bus.event import Event
from infrastructure.events import build_envelope, dumps

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
)
payloads = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k < "\ud800" or k > "\udfff"),
    st.recursive(
        json_scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    ),
    max_size=6,
)
event_types = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(payloads, event_types, st.integers(0, 2**48), st.integers(0, 2**20))
def test_the_spliced_envelope_is_the_built_one_plus_id_and_epoch(
    payload: dict[str, Any], event_type: str, ms: int, seq: int
) -> None:
    built = build_envelope(event_type, payload, "tests", timestamp=1703246400)
    event = Event("sse:session:s1", "k3j2", f"{ms}-{seq}", dumps(built))
    envelope = event.envelope()
    assert envelope == {"id": f"{ms}-{seq}", "epoch": "k3j2", **orjson.loads(dumps(built))}
    assert event.type == event_type
    # One line of data: a newline inside would end the SSE field early.
    assert b"\n" not in event.envelope_json
    assert event.frame.startswith(b"id: k3j2." + f"{ms}-{seq}".encode() + b"\ndata: {")
    assert event.frame.endswith(b"\n\n")
