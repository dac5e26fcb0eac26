"""`KrakenSimulator`: Kraken's WebSocket v2 trade feed and public REST API on one loopback port.

It runs its own asyncio loop in a background thread, so synchronous tests, the demo and the
benchmark drive it with plain method calls: faults on demand (abrupt drops, clean closes,
silence, a pair's subscription gone silent, outages, garbage frames; on REST: throttling,
Kraken's error answers, HTTP errors, downtimes, lag behind the socket, broken or missing
rows, a URL that is not Kraken) and observations (connections, subscribe requests, trades
sent, send times).
"""

from __future__ import annotations

import asyncio
import http
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from . import ws_protocol as wsp
from .market import Market, SimTrade
from .rest import RestApi, reason_phrase

__all__ = ["KrakenSimulator"]

logger = logging.getLogger(__name__)

SNAPSHOT_SIZE = 50
TICK = 0.002  # seconds between two feed ticks at high rates
MAX_WAIT = 0.05  # longest feed sleep, so rate changes apply at once
CLOSE_TIMEOUT = 2.0  # seconds a closing connection waits for the client to close TCP
STOP_GRACE = 0.05  # seconds stop() lets clients answer the close frame before aborting


class _Client:
    """One WebSocket connection and what it subscribed to."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.symbols: set[str] = set()
        self.stalled: set[str] = set()  # subscribed, yet sent no trades (`stall_pair`)
        self.silent_until = 0.0
        self.last_sent = time.monotonic()
        self.requests: list[float] = []
        self.connected_at = time.monotonic()
        # While snapshots are being sent: the updates that came meanwhile, sent after them.
        self.backlog: list[tuple[str, int]] | None = None

    @property
    def silent(self) -> bool:
        return time.monotonic() < self.silent_until


class KrakenSimulator:
    """A Kraken v2 server on loopback: trade and instrument channels over WebSocket, REST
    `Trades`/`AssetPairs`, for two pairs or hundreds (`market.generated_pairs`).

    :param market: the trade history both sides serve.
    :param host: interface to bind (keep it on loopback).
    :param port: 0 picks a free port.
    :param rate: trades per second across pairs; None floods as fast as possible.
    :param batch: most trades in one update frame.
    :param heartbeat_interval: seconds of quiet before a heartbeat.
    :param idle_close: seconds before a connection with no subscription is closed.
    :param generate_when_idle: the market trades even when nobody is connected.
    :param subscribe_rate_limit: subscribe requests per second per connection before
        `Exceeded msg rate` (None: no limit).
    :param record_send_times: keep `(symbol, trade_id) -> time.time_ns()` of each trade sent.
    :param max_trades: stop generating after this many live trades (with `Market(fills=k)`,
        after the order that reaches it: up to k - 1 more).
    """

    def __init__(
        self,
        market: Market,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float | None = 10.0,
        batch: int = 1,
        heartbeat_interval: float = 1.0,
        idle_close: float = 60.0,
        generate_when_idle: bool = True,
        subscribe_rate_limit: int | None = None,
        record_send_times: bool = False,
        max_trades: int | None = None,
    ) -> None:
        self.market = market
        self.host = host
        self.port = port
        self.rate = rate
        self.batch = max(1, batch)
        self.heartbeat_interval = heartbeat_interval
        self.idle_close = idle_close
        self.generate_when_idle = generate_when_idle
        self.subscribe_rate_limit = subscribe_rate_limit
        self.record_send_times = record_send_times
        self.max_trades = max_trades
        self.rest = RestApi(market)
        # observations
        self.connections_total = 0
        self.connection_times: list[float] = []  # time.monotonic() of each WebSocket accepted
        self.instrument_requests = 0
        self.subscribe_requests: list[dict[str, Any]] = []
        self.trades_sent = 0
        self.trades_generated = 0
        self.send_times: dict[tuple[str, int], int] = {}
        # control
        self._rejected: set[str] = set()
        self._listed = frozenset(market.pairs)
        self._paused = False
        self._outage_until = 0.0
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._rate_changed = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> KrakenSimulator:
        """Start serving; returns once the port is open."""
        self._thread = threading.Thread(target=self._run, name="kraken-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the simulator did not start")
        if self._error is not None:
            raise RuntimeError(f"the simulator did not start: {self._error}") from self._error
        logger.info("Kraken simulator on %s (REST %s)", self.ws_url, self.rest_url)
        return self

    def stop(self) -> None:
        """Close every connection and stop serving."""
        if self._loop and self._stopped:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> KrakenSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ws_url(self) -> str:
        """The WebSocket endpoint, like `wss://ws.kraken.com/v2`."""
        return f"ws://{self.host}:{self.port}/v2"

    @property
    def rest_url(self) -> str:
        """The REST base URL, like `https://api.kraken.com`."""
        return f"http://{self.host}:{self.port}"

    @property
    def active_connections(self) -> int:
        """WebSocket connections open now (not closing)."""
        return sum(1 for c in list(self._clients) if c.connection.state is State.OPEN)

    # --- faults and control (any thread) ----------------------------------------------

    def drop_connections(self) -> None:
        """Abort every TCP connection, without a close frame."""
        self._call(self._drop_all)

    def drop_connections_of(self, symbol: str) -> int:
        """Abort (no close frame) the connections subscribed to `symbol`; others stay.

        :returns: how many were dropped.
        """
        dropped: list[int] = []
        self._call(self._drop_subscribers, symbol, dropped)
        return dropped[0] if dropped else 0

    @property
    def subscriptions(self) -> list[frozenset[str]]:
        """The trade symbols of each open connection."""
        return [
            frozenset(c.symbols) for c in list(self._clients) if c.connection.state is State.OPEN
        ]

    def close_connections(self, code: int = 1001) -> None:
        """Close every connection cleanly with `code`."""
        self._call(self._close_all, code)

    def silence(self, seconds: float) -> None:
        """Current connections get nothing (no trades, no heartbeats) for `seconds`."""
        self._call(self._silence_all, time.monotonic() + seconds)

    def stall_pair(self, symbol: str) -> None:
        """Kraken's silent subscription: the current subscriptions to `symbol` get no more of
        its trades, while the market and REST go on and heartbeats and other pairs flow. A
        fresh subscribe of the pair (unsubscribe + subscribe, or a new connection) gets its
        snapshot and its trades again."""
        self._call(self._stall, symbol, True)

    def unstall_pair(self, symbol: str) -> None:
        """The stalled subscriptions to `symbol` get its trades again (those missed meanwhile
        are not resent)."""
        self._call(self._stall, symbol, False)

    def outage(self, seconds: float) -> None:
        """Drop everyone and refuse WebSocket connections (HTTP 503) for `seconds`."""
        self._outage_until = time.monotonic() + seconds
        logger.info("outage for %gs", seconds)
        self.drop_connections()

    def send_raw(self, frame: str | bytes) -> None:
        """Push an arbitrary frame to every connection."""
        self._call(self._broadcast_raw, frame)

    def set_rate(self, rate: float | None) -> None:
        """Trades per second across pairs; None floods."""
        self.rate = rate
        self._rate_changed = True

    def reject_symbols(self, symbols: set[str]) -> None:
        """Subscriptions to these symbols fail even when the market trades them."""
        self._rejected = set(symbols)

    def throttle_rest(self, n: int) -> None:
        """The next `n` REST calls answer `EGeneral:Too many requests`."""
        self.rest.throttle(n)

    def rest_http_status(self, status: int, n: int, retry_after: float | None = None) -> None:
        """The next `n` REST calls answer HTTP `status` (429, 503...), with a `Retry-After`
        header of `retry_after` seconds when given."""
        self.rest.http_status(status, n, retry_after)

    def rest_errors(
        self, errors: Sequence[str], n: int, *, endpoint: str | None = "Trades"
    ) -> None:
        """The next `n` REST calls of `endpoint` (`Trades`, `AssetPairs`; None: any) answer
        HTTP 200 `{"error": [e], "result": {}}` as Kraken does, `e` going through `errors` in
        turn: any of `simulator.rest.KRAKEN_ERRORS` or any other string."""
        self.rest.kraken_errors(errors, n, endpoint=endpoint)

    def rest_oversized(self, size: int, n: int, *, endpoint: str | None = "Trades") -> None:
        """The next `n` REST calls of `endpoint` (None: any) answer HTTP 200 with a body of
        `size` bytes or more (Kraken's JSON, padded)."""
        self.rest.oversized(size, n, endpoint=endpoint)

    def rest_down(
        self, seconds: float, status: int = 503, retry_after: float | None = None
    ) -> None:
        """Every REST call answers HTTP `status` (502/503/504 in plain text, Cloudflare's 403
        and 520-530 as HTML, 429...) for the next `seconds` of wall time, with `Retry-After`
        when given; 0 ends it. The WebSocket goes on (see `outage` for both)."""
        self.rest.down(seconds, status, retry_after)

    def rest_lag(self, seconds: float) -> None:
        """REST `Trades` serves only trades at least `seconds` old, as Kraken's REST lags its
        WebSocket; 0 turns it off."""
        self.rest.lag(seconds)

    def rest_not_kraken(
        self,
        status: int | None = 404,
        body: bytes | None = None,
        content_type: str = "text/html",
    ) -> None:
        """Every REST path answers like a web server that is not Kraken: HTTP `status` (404,
        200...) with `body`, by default an HTML page; None: Kraken again."""
        self.rest.not_kraken(status, body, content_type)

    def corrupt_rest_row(
        self, symbol: str, trade_id: int, row: list | None = None, reads: int | None = None
    ) -> None:
        """REST `Trades` answers that include trade `trade_id` of `symbol` carry a broken row
        in its place: `row`, by default the trade with a non-numeric price; in the first
        `reads` answers that include it (None: all), then the row as it is. The row still
        counts in the page and its cursor. The WebSocket still sends the trade as it is."""
        self.rest.corrupt_row(symbol, trade_id, row, reads)

    def corrupt_rest_rows(
        self,
        symbol: str,
        trade_ids: Iterable[int],
        row: list | None = None,
        reads: int | None = None,
    ) -> None:
        """`corrupt_rest_row` for each of `trade_ids`, e.g. the first and last rows of full
        pages."""
        self.rest.corrupt_rows(symbol, trade_ids, row, reads)

    def withhold_rest(self, symbol: str, first_id: int, last_id: int) -> None:
        """REST `Trades` answers leave out trades `first_id..last_id` of `symbol`, as if
        Kraken's history lacked them. The WebSocket still sends them to whoever is connected."""
        self.rest.withhold(symbol, first_id, last_id)

    def pause_trades(self, paused: bool) -> None:
        """Stop or restart trading (heartbeats go on)."""
        self._paused = paused
        self._rate_changed = True

    @property
    def rest_calls(self) -> list[str]:
        """Every REST request target received (path and query)."""
        return self.rest.calls

    def _call(self, func: Any, *args: Any) -> None:
        if self._loop is None:
            raise RuntimeError("the simulator is not running")
        done = threading.Event()

        def run() -> None:
            try:
                func(*args)
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    # --- the event loop ---------------------------------------------------------------

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:
            if self._ready.is_set():
                logger.exception("the simulator stopped")
            else:  # e.g. the port is taken: start() raises it
                self._error = error
                self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,
            max_queue=None,
            write_limit=2**20,
            close_timeout=CLOSE_TIMEOUT,
        ) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            feed = asyncio.create_task(self._feed())
            beats = asyncio.create_task(self._heartbeats())
            await self._stopped.wait()
            feed.cancel()
            beats.cancel()
            if self._clients:  # close frames, a moment for the replies, then TCP aborts:
                self._close_all(1001)  # clients that never close their socket (as
                await asyncio.sleep(STOP_GRACE)  # websocket-client after a close frame)
                self._drop_all()  # must not hold stop() for close_timeout

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if time.monotonic() < self._outage_until:
                return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "maintenance\n")
            return None
        status, extra, body = self.rest.respond(request.path)
        headers = Headers(
            {
                "Content-Type": "application/json",
                **extra,
                "Content-Length": str(len(body)),
                "Connection": "close",  # the server closes after answering: say so
            }
        )
        return Response(status, reason_phrase(status), headers, body)

    async def _handle(self, connection: ServerConnection) -> None:
        client = _Client(connection)
        self.connections_total += 1
        self.connection_times.append(time.monotonic())
        self._clients.add(client)
        logger.debug("connection %s from %s", connection.id, connection.remote_address)
        idle = asyncio.get_running_loop().call_later(
            self.idle_close, self._close_if_unsubscribed, client
        )
        try:
            await self._send(client, wsp.status())
            async for message in connection:
                await self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            idle.cancel()
            self._clients.discard(client)
            logger.debug("connection %s closed", connection.id)

    def _close_if_unsubscribed(self, client: _Client) -> None:
        if not client.symbols:
            logger.info("closing a connection with no subscription after %gs", self.idle_close)
            self._spawn(client.connection.close(1000, "no subscription"))

    async def _send(self, client: _Client, frame: str | bytes) -> bool:
        """Send `frame` unless the client is silenced or closing; True if it was sent."""
        if client.silent or client.connection.state is not State.OPEN:
            return False  # a closing connection would hold every sender until it is closed
        client.last_sent = time.monotonic()
        try:
            await client.connection.send(frame)
        except ConnectionClosed:
            self._clients.discard(client)
            return False
        return True

    async def _on_message(self, client: _Client, message: str | bytes) -> None:
        time_in = wsp.now()
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            await self._send(
                client, wsp.subscribe_failure("unknown", "Malformed request", None, None, time_in)
            )
            return
        if not isinstance(request, dict):
            return
        method = request.get("method")
        req_id = request.get("req_id")
        if method == "ping":
            await self._send(client, wsp.pong(req_id, time_in))
        elif method in ("subscribe", "unsubscribe"):
            await self._on_subscribe(client, method, request, req_id, time_in)
        else:
            await self._send(
                client,
                wsp.subscribe_failure(str(method), "Method not found", None, req_id, time_in),
            )

    async def _on_subscribe(
        self, client: _Client, method: str, request: dict, req_id: Any, time_in: str
    ) -> None:
        params = request.get("params")
        if isinstance(params, dict) and params.get("channel") == "instrument":
            await self._on_instrument(client, method, params, req_id, time_in)
            return
        if method == "subscribe":
            self.subscribe_requests.append(request)
            now = time.monotonic()
            client.requests = [t for t in client.requests if now - t < 1.0] + [now]
            if self.subscribe_rate_limit and len(client.requests) > self.subscribe_rate_limit:
                logger.info("subscribe rate limit exceeded on connection %s", client.connection.id)
                await self._send(client, wsp.rate_limited())
                return
        if not isinstance(params, dict) or params.get("channel") != "trade":
            channel = params.get("channel") if isinstance(params, dict) else None
            error = f"Channel {channel!r} not supported" if channel else "Missing params"
            await self._send(client, wsp.subscribe_failure(method, error, None, req_id, time_in))
            return
        symbols = params.get("symbol")
        snapshot = params.get("snapshot", True)
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            await self._send(
                client,
                wsp.subscribe_failure(method, "symbol must be a list", None, req_id, time_in),
            )
            return
        accepted: list[str] = []
        replies = []
        listed = self._listed
        for symbol in symbols:
            if symbol not in listed or symbol in self._rejected:
                error = f"Currency pair not supported {symbol}"
                replies.append(wsp.subscribe_failure(method, error, symbol, req_id, time_in))
                continue
            replies.append(wsp.subscribe_success(method, symbol, bool(snapshot), req_id, time_in))
            accepted.append(symbol)
        logger.debug("%s %s on connection %s", method, accepted, client.connection.id)
        client.stalled.difference_update(accepted)  # a fresh subscription is not stalled
        # The connection's state changes before it answers (`subscriptions` never lags what
        # the client was told); trades that come meanwhile wait in its backlog until the
        # answers and the snapshots (taken at the same instant) are out, so the client sees
        # them in order: answers, snapshots, updates.
        if method == "unsubscribe":
            client.symbols.difference_update(accepted)
        frames = []
        if method == "subscribe" and accepted:
            if snapshot:
                frames = [
                    wsp.trade_frame("snapshot", self.market.last(symbol, SNAPSHOT_SIZE))
                    for symbol in accepted
                ]
            client.symbols.update(accepted)
            client.backlog = []
        for frame in (*replies, *frames):
            await self._send(client, frame)
        while client.backlog:
            frame, count = client.backlog.pop(0)
            if await self._send(client, frame):
                self.trades_sent += count
        client.backlog = None

    async def _on_instrument(
        self, client: _Client, method: str, params: dict, req_id: Any, time_in: str
    ) -> None:
        """The `instrument` channel: an acknowledgement, then every listed pair and its status
        (no updates follow: the simulator's list changes only by `Market.set_status`)."""
        self.instrument_requests += 1
        snapshot = params.get("snapshot", True) is not False
        await self._send(
            client, wsp.channel_subscribed(method, "instrument", snapshot, req_id, time_in)
        )
        if method == "subscribe" and snapshot:
            market = self.market
            await self._send(
                client, wsp.instrument_snapshot((p, market.status(p)) for p in market.pairs)
            )

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(min(self.heartbeat_interval, 0.25))
            now = time.monotonic()
            for client in list(self._clients):
                if now - client.last_sent >= self.heartbeat_interval:
                    await self._send(client, wsp.heartbeat())

    async def _feed(self) -> None:
        """Generate trades at `rate` and send them to the subscribers of their symbols."""
        started = time.monotonic()
        generated_at_start = self.trades_generated
        while True:
            if self._rate_changed:
                self._rate_changed = False
                started = time.monotonic()
                generated_at_start = self.trades_generated
            if self._paused or (self.rate is not None and self.rate <= 0):
                await asyncio.sleep(0.05)
                continue
            if self.max_trades is not None and self.trades_generated >= self.max_trades:
                await asyncio.sleep(0.05)
                continue
            if self.rate is None:
                due = self.batch * 8
            else:
                elapsed = time.monotonic() - started
                due = int(self.rate * elapsed) - (self.trades_generated - generated_at_start)
            if self.max_trades is not None:
                due = min(due, self.max_trades - self.trades_generated)
            if due <= 0:
                wait = TICK
                if self.rate is not None:  # until the next trade is due, checking rate changes
                    generated = self.trades_generated - generated_at_start + 1
                    wait = generated / self.rate - (time.monotonic() - started)
                await asyncio.sleep(min(max(wait, TICK), MAX_WAIT))
                continue
            if not self.generate_when_idle and not self._clients:
                self._rate_changed = True
                await asyncio.sleep(0.05)
                continue
            trades = self.market.next_trades(due)
            self.trades_generated += len(trades)
            await self._publish(trades)
            if self.rate is None:
                await asyncio.sleep(0)

    async def _publish(self, trades: list[SimTrade]) -> None:
        for start in range(0, len(trades), self.batch):
            chunk = trades[start : start + self.batch]
            symbols = {t.symbol for t in chunk}
            frames: dict[frozenset[str], tuple[str, int]] = {}  # serialized once per symbol set
            for client in list(self._clients):
                wanted = symbols & client.symbols
                if client.stalled:
                    wanted -= client.stalled
                if not wanted or client.silent:
                    continue
                key = frozenset(wanted)
                built = frames.get(key)
                if built is None:
                    selected = [t for t in chunk if t.symbol in wanted]
                    built = frames[key] = wsp.trade_frame("update", selected), len(selected)
                    if self.record_send_times:
                        sent = time.time_ns()
                        for trade in selected:
                            self.send_times[(trade.symbol, trade.trade_id)] = sent
                if client.backlog is not None:  # its snapshots are being sent
                    client.backlog.append(built)
                    continue
                frame, count = built
                if await self._send(client, frame):
                    self.trades_sent += count

    def _stall(self, symbol: str, stalled: bool) -> None:
        for client in self._clients:
            if stalled and symbol in client.symbols:
                client.stalled.add(symbol)
            elif not stalled:
                client.stalled.discard(symbol)
        logger.info("%s %s", "stalling" if stalled else "unstalling", symbol)

    def _silence_all(self, until: float) -> None:
        for client in self._clients:
            client.silent_until = until
        logger.info("silencing %d connection(s)", len(self._clients))

    def _drop_all(self) -> None:
        logger.info("dropping %d connection(s)", len(self._clients))
        for client in list(self._clients):
            client.connection.transport.abort()
        self._clients.clear()

    def _drop_subscribers(self, symbol: str, dropped: list[int]) -> None:
        clients = [c for c in self._clients if symbol in c.symbols]
        logger.info("dropping %d connection(s) subscribed to %s", len(clients), symbol)
        for client in clients:
            client.connection.transport.abort()
            self._clients.discard(client)
        dropped.append(len(clients))

    def _close_all(self, code: int) -> None:
        logger.info("closing %d connection(s) with code %d", len(self._clients), code)
        for client in list(self._clients):
            self._spawn(client.connection.close(code, "simulator closing"))

    def _broadcast_raw(self, frame: str | bytes) -> None:
        for client in list(self._clients):
            self._spawn(self._send(client, frame))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
