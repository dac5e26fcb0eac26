"""Size limits on what the network hands us: a WebSocket message, a REST body.

Neither websocket-client nor httpx caps what it reads: a broken or hostile endpoint could make
the process allocate without bound. Both caps act before the bytes are read, not after:

- `CappedWebSocket` reads each frame's header first and refuses a frame whose length, added
  to the fragments of its message already read, passes `max_message`: it closes the
  connection (status 1009, "message too big") without reading the payload and raises
  `MessageTooBig`. The session takes it for a lost connection; the reconnect, its snapshot
  and a REST repair cover whatever the message held.
- `read_body` refuses a body whose `Content-Length` passes `limit`, and otherwise streams it,
  counting, and stops at the first chunk past the limit (`BodyTooBig`). The REST client takes
  it for a failed attempt, asked again like any other.
"""

from __future__ import annotations

import contextlib

import httpx
import websocket

from .config import MAX_BODY, MAX_MESSAGE

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_MESSAGE",
    "BodyTooBig",
    "CappedWebSocket",
    "MessageTooBig",
    "read_body",
]

MIB = 2**20
STATUS_MESSAGE_TOO_BIG = 1009  # RFC 6455
DEFAULT_MAX_MESSAGE, DEFAULT_MAX_BODY = MAX_MESSAGE, MAX_BODY  # the defaults (config.py)


class MessageTooBig(websocket.WebSocketException):
    """A WebSocket message longer than the cap was announced; its payload was not read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of at least {size} bytes, over the limit of {limit}")
        self.size = size
        self.limit = limit


class BodyTooBig(Exception):
    """A REST body longer than the cap; reading it stopped there."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a body of at least {size} bytes, over the limit of {limit}")
        self.size = size
        self.limit = limit


class CappedWebSocket(websocket.WebSocket):
    """websocket-client's `WebSocket`, refusing messages longer than `max_message` bytes.

    Pass it to `websocket.create_connection` as `class_=functools.partial(CappedWebSocket,
    max_message=n)`. A message split into fragments counts as a whole.

    :param max_message: most bytes of one message (payload of all its fragments).
    """

    def __init__(self, *args, max_message: int = DEFAULT_MAX_MESSAGE, **kwargs) -> None:
        if max_message < 1:
            raise ValueError("max_message must be at least 1 byte")
        super().__init__(*args, **kwargs)
        self.max_message = max_message

    def recv_frame(self) -> websocket.ABNF:
        """The next frame, once its announced length is known to fit.

        :raises MessageTooBig: the frame (with the fragments before it) is too long.
        """
        buffer = self.frame_buffer
        with buffer.lock:  # the header survives a timeout half-way, as in `frame_buffer`
            if buffer.needs_header():
                buffer.recv_header()
            if buffer.needs_length():
                buffer.recv_length()
            length = buffer.length or 0
            opcode = buffer.header[4] if buffer.header else None
        fragments = self.cont_frame.cont_data
        if opcode == websocket.ABNF.OPCODE_CONT and fragments:
            length += len(fragments[1])  # the message so far, and this part of it
        size = length
        if size > self.max_message:
            self._close_too_big()
            raise MessageTooBig(size, self.max_message)
        return super().recv_frame()

    def _close_too_big(self) -> None:
        """Say why (1009) and drop the connection: the rest of the frame is never read."""
        if self.connected:
            with contextlib.suppress(websocket.WebSocketException, OSError):  # closing anyway
                self.send_close(STATUS_MESSAGE_TOO_BIG, b"message too big")
        self.connected = False
        self.shutdown()


def read_body(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed `response` (`client.stream(...)`), at most `limit` bytes.

    Refused at once when `Content-Length` says more; otherwise counted as decoded (after
    gzip), a chunk from the network checked once inflated: a compressed body can pass the
    limit by one chunk's worth before it is refused.

    :raises BodyTooBig: `Content-Length` or the bytes read pass `limit`.
    """
    announced = response.headers.get("Content-Length", "")
    if announced.isascii() and announced.isdigit() and int(announced) > limit:
        raise BodyTooBig(int(announced), limit)  # as sent: refused before any is read
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyTooBig(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)
