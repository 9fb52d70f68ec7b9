"""The scenarios (a)-(e), each against one target stack (the product, a baseline, a peer):
what each measures, and the function that runs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.run import Run
from bench.scenario_idle import scenario_c
from bench.scenario_product import scenario_e
from bench.scenario_ramp import scenario_d
from bench.scenario_steady import scenario_a, scenario_b

SCENARIOS = {
    "a": "1,000 subscribers on 1,000 session channels, 500 msg/s",
    "b": "fan-out: 1,000 subscribers of one channel, 20 msg/s",
    "c": "10,000 idle subscribers on 10,000 channels",
    "d": "rate ramp on 100 channels: max delivered ev/s with p99 <= 100 ms and 0 loss",
    "e": "product path: chatbot customer messages -> agents' workbench streams",
}

RUNNERS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "a": scenario_a,
    "b": scenario_b,
    "c": scenario_c,
    "d": scenario_d,
    "e": scenario_e,
}
