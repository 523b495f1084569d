"""An incremental decoder for server-sent events (the WHATWG ``text/event-stream`` format).

Fed text in whatever pieces the network delivers, it yields complete events: lines may be
split anywhere (even between ``\\r`` and ``\\n``), comment lines (``: ping``, fal's 15 s
keep-alive) are dropped, multi-line ``data:`` fields are joined with newlines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns chunks of a stream into :class:`SSEEvent` objects; one decoder per connection."""

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: str) -> list[SSEEvent]:
        """Events completed by ``chunk``."""
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return events
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1] :]
            if (event := self._line(line)) is not None:
                events.append(event)

    def flush(self) -> list[SSEEvent]:
        """At end of stream: an event whose blank line never came.

        The standard drops it; fal closes the stream right after its last event, so keeping
        it is the safer reading (the caller still checks it parses).
        """
        events = self.feed("\n") if self._buffer else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if self._data:
                return self._dispatch()
            self._reset()
            return None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent("\n".join(self._data), self._event or "message", self._id, self._retry)
        self._reset()
        return event

    def _reset(self) -> None:
        self._data = []
        self._event = ""


def _line_end(buffer: str) -> tuple[int, int] | None:
    """(end of line, start of next) for the first complete line, else None.

    A ``\\r`` at the very end may be the first half of ``\\r\\n``: wait for more.
    """
    n = buffer.find("\n")
    r = buffer.find("\r")
    if r == -1 or (n != -1 and n < r):
        return None if n == -1 else (n, n + 1)
    if r + 1 == len(buffer):
        return None
    return (r, r + 2) if buffer[r + 1] == "\n" else (r, r + 1)
