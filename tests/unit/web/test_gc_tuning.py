"""The service tunes the garbage collector at startup, as GC_GEN0_THRESHOLD says."""

from __future__ import annotations

import gc

from products.ai_chatbot.app import create_app
from tests.support.auth import make_settings


async def test_startup_freezes_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    app = create_app(make_settings(USE_REDIS_SSE=False, GC_GEN0_THRESHOLD=123_456))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_threshold() == (123_456, before[1], before[2])
            assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def test_zero_leaves_python_defaults() -> None:
    before = gc.get_threshold()
    app = create_app(make_settings(USE_REDIS_SSE=False, GC_GEN0_THRESHOLD=0))
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
