"""The desk's settings: a presence entry must outlive the tick that refreshes it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infrastructure.config import Settings


def test_presence_must_outlive_a_tick() -> None:
    with pytest.raises(ValidationError, match=r"PRESENCE_TTL_SECONDS .* must be greater than"):
        Settings(_env_file=None, DESK_TICK_SECONDS=5, PRESENCE_TTL_SECONDS=5)
    ok = Settings(_env_file=None, DESK_TICK_SECONDS=1, PRESENCE_TTL_SECONDS=3)
    assert (ok.DESK_TICK_SECONDS, ok.PRESENCE_TTL_SECONDS, ok.ASSIGNMENT_MODE) == (1, 3, "auto")


def test_assignment_mode_is_auto_or_manual() -> None:
    with pytest.raises(ValidationError, match="ASSIGNMENT_MODE"):
        Settings(_env_file=None, ASSIGNMENT_MODE="random")
