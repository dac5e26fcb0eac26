"""A TCP proxy on loopback that can cut the line: a broker that goes away and comes back.

The in-memory Tansu loses everything when its process stops, so a broker outage is made
here instead: Tansu advertises the proxy's address, every client goes through it, and
`cut()` closes all connections and the listening socket until `restore()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class CuttableProxy:
    """Forward `127.0.0.1:listen_port` to `127.0.0.1:target_port`, with cut/restore."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> CuttableProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def cut(self) -> None:
        """Close every connection and stop listening."""
        self._run(self._cut())

    def restore(self) -> None:
        """Listen again on the same port."""
        self._run(self._listen())

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.listen_port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self._server:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
