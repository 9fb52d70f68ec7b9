"""bench.desk_slot on a real redis-server: every phase ran its calls and Redis timed them."""

from __future__ import annotations

from bench.desk_slot import run


async def test_each_desk_call_is_timed_by_redis() -> None:
    phases = await run(sessions=40)
    assert [p.name.split(" ")[0] for p in phases] == [
        "append_message",
        "escalate",
        "presence",
        "sweep",
    ]
    # Each phase's own calls at least (a first EVALSHA that finds no script adds one).
    assert [p.calls >= n for p, n in zip(phases, (120, 40, 8, 50), strict=True)] == [True] * 4
    assert all(p.usec_per_call > 0 for p in phases), phases
    assert all(p.per_second == 1_000_000 / p.usec_per_call for p in phases)
