from __future__ import annotations

import pytest

from infrastructure.config import Settings

SECRET = "test-secret-0123456789-0123456789-abcdef"
OTHER_SECRET = "another-secret-0123456789-0123456789-xyz"


def make_settings(**overrides: object) -> Settings:
    # _env_file=None: a developer's .env (make run writes one) must not leak into unit tests.
    values: dict[str, object] = {"AUTH_SECRET": SECRET, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings() -> Settings:
    return make_settings()
