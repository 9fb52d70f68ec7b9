"""A bot behind any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM,
Ollama, llama.cpp ...), streamed: each ``choices[0].delta.content`` is yielded as
soon as its ``data:`` line arrives, so the customer sees the answer being written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import orjson

from infrastructure.sessions.models import ChatMessage, SenderRole, Session

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT: Final = (
    "You are a friendly customer-service assistant. Answer briefly, in the customer's "
    'language. If you cannot help, tell the customer they can type 转人工 or "human" '
    "to talk to a person."
)
FALLBACK_MESSAGE: Final = (
    "抱歉，智能客服暂时无法回答，请稍后再试，或输入“转人工”联系人工客服。"
    " Sorry, the assistant cannot answer right now; please try again later or type "
    '"human" to talk to a person.'
)
#: Appended when the answer breaks off after part of it was already sent.
INTERRUPTED_MESSAGE: Final = "\n\n（回答中断 / the answer was interrupted）"

# What each transcript role is to the model. System messages are internal notes
# ("escalated", "agent joined") and stay out of the prompt.
_ROLES: Final = {
    SenderRole.CUSTOMER: "user",
    SenderRole.BOT: "assistant",
    SenderRole.AGENT: "assistant",
}


class UpstreamError(Exception):
    """The endpoint answered, but not with a usable stream."""


class OpenAICompatResponder:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        http: httpx.AsyncClient,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_history: int = 20,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        fallback_message: str = FALLBACK_MESSAGE,
    ) -> None:
        """``timeout`` bounds the whole answer (and each wait for the next chunk);
        ``max_history`` is how many earlier messages go into the prompt."""
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self._http = http
        self._timeout = timeout
        self._httpx_timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._max_history = max_history
        self._system_prompt = system_prompt
        self._fallback = fallback_message

    def build_messages(self, history: list[ChatMessage], text: str) -> list[dict[str, str]]:
        turns = [
            {"role": _ROLES[m.sender], "content": m.content} for m in history if m.sender in _ROLES
        ]
        # Callers may store the customer's message before asking the bot: do not send it twice.
        if turns and turns[-1] == {"role": "user", "content": text}:
            turns.pop()
        turns = turns[-self._max_history :] if self._max_history > 0 else []
        return [
            {"role": "system", "content": self._system_prompt},
            *turns,
            {"role": "user", "content": text},
        ]

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def reply(
        self, session: Session, history: list[ChatMessage], text: str
    ) -> AsyncIterator[str]:
        sent_any = False
        try:
            async for delta in self._stream(self.build_messages(history, text)):
                sent_any = True
                yield delta
        except (httpx.HTTPError, UpstreamError) as exc:
            # A bot failure must not become a failed customer request: apologise instead.
            logger.warning("bot endpoint failed for session %s: %r", session.session_name, exc)
            yield INTERRUPTED_MESSAGE if sent_any else self._fallback
            return
        if not sent_any:
            logger.warning("bot endpoint sent an empty answer for session %s", session.session_name)
            yield self._fallback

    async def _stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        body = orjson.dumps({"model": self.model, "messages": messages, "stream": True})
        loop = asyncio.get_running_loop()
        # A deadline checked between lines rather than asyncio.timeout(): a timeout
        # scope spanning our ``yield``s would cancel whatever the consumer is doing.
        deadline = loop.time() + self._timeout
        async with self._http.stream(
            "POST", self.url, content=body, headers=self._headers(), timeout=self._httpx_timeout
        ) as response:
            if response.status_code != httpx.codes.OK:
                raise UpstreamError(f"HTTP {response.status_code} from {self.url}")
            async for line in response.aiter_lines():
                if loop.time() > deadline:
                    raise UpstreamError(f"no complete answer within {self._timeout}s")
                if not line.startswith("data:"):
                    continue  # blank separators, ": comments", event:/id: fields
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                delta = _delta(data)
                if delta:
                    yield delta


def _delta(data: str) -> str | None:
    try:
        chunk: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"not JSON: {data[:200]!r}") from exc
    if not isinstance(chunk, dict):
        raise UpstreamError(f"unexpected chunk: {data[:200]!r}")
    if "error" in chunk:
        raise UpstreamError(f"error from the endpoint: {chunk['error']!r}"[:300])
    choices = chunk.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return None  # e.g. a usage-only chunk
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else None
