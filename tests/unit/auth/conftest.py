from __future__ import annotations

import pytest

from infrastructure.config import Settings
from tests.support.auth import make_settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()
