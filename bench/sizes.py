"""How big each scenario runs: full, ``--quick`` and ``--instructions`` (callgrind)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Sizes:
    a_channels: int
    a_rate: float
    b_subs: int
    b_rate: float
    c_subs: int
    c_live_rate: float
    d_channels: int
    d_subs_per_channel: int
    d_steps: list[float]  # delivered events/s offered per step
    e_agents: int
    e_rate: float


FULL = Sizes(
    a_channels=1000,
    a_rate=500,
    b_subs=1000,
    b_rate=20,
    c_subs=10_000,
    c_live_rate=2500,
    d_channels=100,
    d_subs_per_channel=20,
    d_steps=[2000, 5000, 10_000, 15_000, 20_000, 30_000, 40_000, 60_000, 80_000],
    e_agents=50,
    e_rate=200,
)
#: ``--instructions``: the services run under callgrind, some 30-50x slower. Rates low
#: enough that each message is handled on its own, as in (a) at full speed, so that a
#: count per message compares between builds.
CALLGRIND = Sizes(
    a_channels=50,
    a_rate=20,
    b_subs=100,
    b_rate=5,
    c_subs=300,
    c_live_rate=100,
    d_channels=0,
    d_steps=[],
    d_subs_per_channel=0,
    e_agents=0,
    e_rate=0,
)
#: The scenarios ``--instructions`` runs (a ramp or the product path under callgrind
#: would measure callgrind).
CALLGRIND_SCENARIOS = ("a", "b", "c")
QUICK = Sizes(
    a_channels=100,
    a_rate=100,
    b_subs=100,
    b_rate=20,
    c_subs=500,
    c_live_rate=500,
    d_channels=20,
    d_subs_per_channel=5,
    d_steps=[500, 1000, 2000, 4000, 8000],
    e_agents=5,
    e_rate=25,
)
