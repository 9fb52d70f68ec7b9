"""The bot: answers a customer while the session is in ``ai``.

``build_responder(settings, http)`` picks the configured one; handlers depend only on
the :class:`Responder` protocol and :func:`wants_human`.
"""

from __future__ import annotations

from .base import Responder, wants_human
from .factory import build_responder
from .faq import FaqResponder
from .openai_compat import OpenAICompatResponder

__all__ = ["FaqResponder", "OpenAICompatResponder", "Responder", "build_responder", "wants_human"]
