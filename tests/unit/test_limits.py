"""Size limits on what the network hands us (`sources.kraken.limits`): a WebSocket message
longer than the cap is refused from its header, unread, and its connection closed with 1009;
a REST body longer than the cap is refused from its `Content-Length`, or as soon as the
bytes read pass it; the REST client takes either for a failed call, asked again. And what a
REST server says reaches the log escaped."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
import websocket

from sources.app.settings import TradesSettings
from sources.app.source_config import source_config
from sources.kraken.config import ConfigError, SourceConfig
from sources.kraken.limits import (
    STATUS_MESSAGE_TOO_BIG,
    BodyTooBig,
    CappedWebSocket,
    MessageTooBig,
    read_body,
)
from sources.kraken.rest import KrakenRest, RestError

CAP = 100
TEXT, CONT = websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_CONT


def server_frame(data: bytes, opcode: int = TEXT, fin: int = 1) -> bytes:
    """A frame as a server sends it (not masked)."""
    return websocket.ABNF(fin, 0, 0, 0, opcode, 0, data).format()


@pytest.fixture
def connection() -> Iterator[tuple[CappedWebSocket, socket.socket]]:
    """A capped client socket, already connected, and the server's end of it."""
    client, server = socket.socketpair()
    ws = CappedWebSocket(max_message=CAP, skip_utf8_validation=True, enable_multithread=False)
    ws.sock, ws.connected = client, True
    ws.settimeout(5)
    server.settimeout(5)
    yield ws, server
    ws.shutdown()
    server.close()


def close_status(server: socket.socket) -> int:
    """The status of the (masked) close frame the client sent."""
    head = server.recv(2)
    assert head[0] & 0x0F == websocket.ABNF.OPCODE_CLOSE
    mask = server.recv(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(server.recv(head[1] & 0x7F)))
    return struct.unpack("!H", payload[:2])[0]


def test_a_message_at_the_cap_is_read_whole_fragments_too(connection) -> None:
    ws, server = connection
    server.sendall(server_frame(b"x" * CAP))
    assert ws.recv_data() == (TEXT, b"x" * CAP)
    parts = [b"a" * 40, b"b" * 40, b"c" * 20]
    server.sendall(
        server_frame(parts[0], fin=0)
        + server_frame(parts[1], CONT, 0)
        + server_frame(parts[2], CONT)
    )
    assert ws.recv_data() == (TEXT, b"".join(parts))


def test_a_longer_message_is_refused_from_its_header_and_the_connection_closed(
    connection,
) -> None:
    ws, server = connection
    header = server_frame(b"x" * 10_000_000)[:10]  # announces 10 MB, sends none of it
    server.sendall(header)
    with pytest.raises(MessageTooBig, match="at least 10000000 bytes, over the limit of 100"):
        ws.recv_data()  # at once: waiting for the payload would time out (5 s)
    assert close_status(server) == STATUS_MESSAGE_TOO_BIG
    assert ws.sock is None and not ws.connected


def test_fragments_count_as_one_message(connection) -> None:
    ws, server = connection
    server.sendall(server_frame(b"a" * 60, fin=0) + server_frame(b"b" * 60, CONT, 0))
    with pytest.raises(MessageTooBig, match="at least 120 bytes"):
        ws.recv_data()


# --- REST -------------------------------------------------------------------------------

TRADES_PAGE = {"error": [], "result": {"XXBTZUSD": [], "last": "1700000000000000000"}}
ASSET_PAIRS = {
    "error": [],
    "result": {"XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD"}},
}


def chunks(count: int, size: int, pulled: list[int]) -> Iterator[bytes]:
    for index in range(count):
        pulled.append(index)
        yield b" " * size


def mock_client(rest: KrakenRest, handler: Callable[[httpx.Request], httpx.Response]) -> None:
    rest._client = httpx.Client(base_url=rest.base_url, transport=httpx.MockTransport(handler))


def answer(request: httpx.Request, trades: Callable[[], httpx.Response]) -> httpx.Response:
    if request.url.path.endswith("AssetPairs"):
        return httpx.Response(200, content=orjson.dumps(ASSET_PAIRS))
    return trades()


def streamed(response: httpx.Response, limit: int) -> bytes:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: response))
    with client, client.stream("GET", "http://kraken.test/") as streaming:
        return read_body(streaming, limit)


def test_a_body_is_refused_from_its_content_length_before_any_of_it_is_read() -> None:
    pulled: list[int] = []
    response = httpx.Response(
        200, headers={"Content-Length": "5000"}, content=chunks(5, 1000, pulled)
    )
    with pytest.raises(BodyTooBig, match="at least 5000 bytes, over the limit of 4096"):
        streamed(response, 4096)
    assert pulled == []


def test_a_body_without_a_length_is_read_no_further_than_the_cap() -> None:
    pulled: list[int] = []
    with pytest.raises(BodyTooBig, match="over the limit of 10240"):
        streamed(httpx.Response(200, content=chunks(1000, 1024, pulled)), 10 * 1024)
    assert len(pulled) == 11  # 11 KiB read of 1000
    assert streamed(httpx.Response(200, content=chunks(10, 1024, [])), 10 * 1024) == b" " * 10240


def test_a_rest_answer_over_the_cap_is_a_failed_call_and_the_next_one_is_read() -> None:
    cap = 4096
    served: list[int] = []

    def trades() -> httpx.Response:
        served.append(len(served))
        body = orjson.dumps(TRADES_PAGE)
        if len(served) == 1:
            body += b" " * cap  # still valid JSON: only its size is wrong
        return httpx.Response(200, content=body)

    rest = KrakenRest("http://kraken.test", min_interval=0, max_attempts=1, max_body=cap)
    mock_client(rest, lambda request: answer(request, trades))
    with pytest.raises(RestError, match="answer too long: a body of at least") as failed:
        rest.trades("BTC/USD", 0)
    assert not failed.value.permanent and "max_rest_body_mb" in str(failed.value)
    assert rest.trades("BTC/USD", 0).last_ns == int(TRADES_PAGE["result"]["last"])
    assert (rest.calls_failed, rest.calls_ok) == (1, 2)  # AssetPairs, then the page


@pytest.mark.parametrize(
    "said",
    [
        "EGeneral:Internal error\n[2024-01-01 00:00:00] [ERROR] forged line",
        "EService:Unavailable\x1b[2J\x1b[31m" + "x" * 5000,
    ],
)
def test_what_a_rest_server_says_comes_escaped_and_bounded(said: str) -> None:
    def trades() -> httpx.Response:
        return httpx.Response(200, content=orjson.dumps({"error": [said], "result": {}}))

    rest = KrakenRest("http://kraken.test", min_interval=0, max_attempts=1)
    mock_client(rest, lambda request: answer(request, trades))
    with pytest.raises(RestError) as failed:
        rest.trades("BTC/USD", 0)
    message = str(failed.value)
    assert message.startswith("Kraken said EGeneral:" if "\n" in said else "Kraken said ESer")
    assert "\n" not in message and "\x1b" not in message and len(message) < 600
    assert "\\n[2024" in message or "\\x1b[2J" in message


def test_the_limit_settings_reach_the_source_in_bytes_and_their_defaults_agree() -> None:
    env = {"max_ws_message_mb": "2", "max_rest_body_mb": "3"}
    config = source_config(TradesSettings.from_env(env))
    assert (config.max_message, config.max_body) == (2 * 2**20, 3 * 2**20)
    default, library = source_config(TradesSettings()), SourceConfig(pairs=("BTC/USD",))
    assert (default.max_message, default.max_body) == (library.max_message, library.max_body)
    with pytest.raises(ConfigError, match="max_message"):
        SourceConfig(pairs=("BTC/USD",), max_message=0)
