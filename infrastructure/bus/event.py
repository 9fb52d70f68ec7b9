"""One published event as it travels inside a process, and its wire forms.

An event is encoded once: every listener of a single channel writes the same bytes
(:attr:`Event.frame`, and :attr:`Event.chunk` for a direct write). A listener of
several channels writes the same ``data:`` bytes behind an ``id:`` line of its own.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

#: How an envelope built by ``build_envelope`` starts: its type comes first.
_TYPE_PREFIX: Final = b'{"type":"'
_TYPE_AT: Final = len(_TYPE_PREFIX)

#: The envelope with its position: the id spliced in front of the body's first key, no
#: decode, no re-encode (``Event.envelope_json``); and the whole SSE event around it
#: (``Event.frame``: ``id: <epoch>.<id>``, then ``data: <envelope>``).
_ENVELOPE_JSON: Final = b'{"id":"%b","epoch":"%b",%b'
_FRAME: Final = b"id: %b.%b\ndata: " + _ENVELOPE_JSON + b"\n\n"

#: The position of a channel no event has been seen on: before everything.
ORIGIN_EPOCH: Final = "0"
ORIGIN_ID: Final = "0-0"


def id_key(event_id: str) -> tuple[int, int]:
    """``"1703246400000-3"`` -> ``(1703246400000, 3)``: stream ids compare as pairs."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class Event:
    """One published event as it travels inside a process.

    ``body`` is the envelope JSON without ``id``/``epoch`` (as stored in the
    history); the wire forms are built lazily, once, and shared by every listener.
    """

    __slots__ = (
        "_chunk",
        "_data",
        "_frame",
        "_type",
        "body",
        "channel",
        "epoch",
        "id",
        "id_only",
        "key",
    )

    def __init__(
        self, channel: str, epoch: str, event_id: str, body: bytes, id_only: bool = False
    ) -> None:
        self.channel = channel
        #: Only moves the client's position: the event itself was already delivered
        #: (without an id, during a Redis outage). An SSE ``id:`` with no ``data:``
        #: sets the browser's lastEventId without dispatching an event (WHATWG).
        self.id_only = id_only
        self.epoch = epoch
        self.id = event_id
        self.key = id_key(event_id) if event_id else (0, 0)
        self.body = body
        self._data: bytes | None = None
        self._frame: bytes | None = None
        self._chunk: bytes | None = None
        self._type: str | None = None

    @property
    def type(self) -> str:
        """The envelope's ``type``, read without decoding the JSON: the envelope is
        built with ``type`` first (``build_envelope``); anything else is decoded."""
        if self._type is None:
            body = self.body
            end = body.find(b'"', _TYPE_AT) if body.startswith(_TYPE_PREFIX) else -1
            if end > 0:
                self._type = body[_TYPE_AT:end].decode()
            else:
                self._type = str(orjson.loads(body).get("type", ""))
        return self._type

    @property
    def token(self) -> str:
        """This event's position in its channel: ``<epoch>.<id>``."""
        return f"{self.epoch}.{self.id}"

    @property
    def envelope_json(self) -> bytes:
        return _ENVELOPE_JSON % (self.id.encode(), self.epoch.encode(), self.body[1:])

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = b"\n" if self.id_only else b"data: " + self.envelope_json + b"\n\n"
        return self._data

    @property
    def frame(self) -> bytes:
        """The whole SSE event for a single-channel listener."""
        if self._frame is None:
            if self.id and not self.id_only:
                # The id line and the data line in one formatting (``token``, then
                # ``data``): every event builds this once, on the delivery path.
                epoch, event_id = self.epoch.encode(), self.id.encode()
                self._frame = _FRAME % (epoch, event_id, event_id, epoch, self.body[1:])
            elif self.id:
                self._frame = b"id: " + self.token.encode() + b"\n" + self.data
            else:
                # Not yet in history (published during a Redis outage): no id, so
                # the browser keeps its last real one and resumes from there.
                self._frame = self.data
        return self._frame

    @property
    def chunk(self) -> bytes:
        """:attr:`frame` as one HTTP/1.1 chunk, for writers that write straight to the
        connection (``web/direct_write.py``)."""
        if self._chunk is None:
            self._chunk = http_chunk(self.frame)
        return self._chunk

    def envelope(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.envelope_json)
        return result


def http_chunk(body: bytes) -> bytes:
    """``body`` as one HTTP/1.1 chunk (the framing uvicorn's ``send`` adds to a body)."""
    return b"%x\r\n%b\r\n" % (len(body), body)


#: Items a listener's buffer can hold besides events.
PING: Final = b": ping\n\n"
