"""Kraken's public REST market data, as the simulator serves it: `AssetPairs` and `Trades`,
and the ways Kraken's REST misbehaves, each injected on demand: its error answers, statuses
from its edge, downtimes, a REST lagging the socket, broken rows, a URL that is not Kraken, an
answer far too long."""

from __future__ import annotations

import http
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import orjson

from .market import Market, SimTrade, pair_info

__all__ = ["CLOUDFLARE_STATUSES", "KRAKEN_ERRORS", "RestApi", "reason_phrase"]

logger = logging.getLogger(__name__)

MAX_COUNT = 1000

# The error strings Kraken documents for any REST call (support.kraken.com "API error
# messages", docs.kraken.com errors guide; `EGeneral:Too many requests` is what its public
# endpoints throttle with), and what each means. Those of orders and funding are left out: a
# market-data call cannot get them. Kraken sends them as HTTP 200 with `{"error": [...]}`.
KRAKEN_ERRORS: dict[str, str] = {
    "EGeneral:Invalid arguments": "a parameter is missing or malformed (e.g. a bad `since`)",
    "EGeneral:Permission denied": "the API key lacks a permission the call needs",
    "EGeneral:Internal error": "Kraken failed inside; asking again later may pass",
    "EGeneral:Temporary lockout": "too many failed calls from this client; lasts ~15 minutes",
    "EGeneral:Too many requests": "the public endpoints' throttle (~1 call/s sustained)",
    "EAPI:Rate limit exceeded": "the call-rate counter is used up; it decays over time",
    "EAPI:Invalid key": "the API key is unknown or malformed (private calls)",
    "EAPI:Invalid signature": "the API-Sign header does not match (private calls)",
    "EAPI:Invalid nonce": "the nonce did not rise (private calls)",
    "EQuery:Unknown asset pair": "Kraken does not list the pair asked for",
    "EQuery:Unknown asset": "Kraken does not list the asset asked for",
    "EService:Unavailable": "the matching engine or the API is offline (maintenance)",
    "EService:Busy": "Kraken is overloaded; asking again shortly may pass",
    "EService:Market in cancel_only mode": "the market only takes cancellations",
    "EService:Market in post_only mode": "the market only takes post-only orders",
    "EService:Deadline elapsed": "Kraken timed out before processing the request",
}
# Statuses that Cloudflare, in front of Kraken's API, answers with an HTML page.
CLOUDFLARE_STATUSES = frozenset({403, *range(520, 531)})
_CLOUDFLARE_REASONS = {
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}


@dataclass(slots=True)
class _ErrorRun:
    """Kraken errors still to answer on one endpoint, in turn."""

    errors: tuple[str, ...]
    left: int
    served: int = 0


@dataclass(slots=True)
class _BrokenRow:
    """A row served broken: `row` (None: the trade with a non-numeric price) for `reads` more
    answers that include it (None: always)."""

    row: list | None
    reads: int | None


class RestApi:
    """Answers `GET /0/public/AssetPairs` and `GET /0/public/Trades` in Kraken's formats.

    Errors come as HTTP 200 with a non-empty `error` array, as Kraken sends them. Faults are
    set from any thread and checked in this order: not Kraken at all (`not_kraken`), REST
    down for a while (`down`), HTTP statuses for some calls (`http_status`), throttling
    (`throttle`), Kraken errors (`kraken_errors`); then, within `Trades` answers, a lagging
    REST (`lag`), withheld trades (`withhold`) and broken rows (`corrupt_row(s)`).
    """

    def __init__(self, market: Market) -> None:
        self.market = market
        self.calls: list[str] = []
        self._throttled = 0
        self._http_status: tuple[int, int, float | None] | None = None  # status, n, retry_after
        self._down: tuple[float, int, float | None] | None = None  # until, status, retry_after
        self._errors: dict[str | None, _ErrorRun] = {}  # endpoint (None: any) -> errors
        self._oversized: dict[str | None, tuple[int, int]] = {}  # endpoint -> (calls, bytes)
        self._not_kraken: tuple[int, bytes, str] | None = None  # status, body, content type
        self._lag_ns = 0
        self._corrupt: dict[tuple[str, int], _BrokenRow] = {}
        self._withheld: dict[str, list[tuple[int, int]]] = {}
        self._names: dict[str, str] | None = None
        self._lock = threading.Lock()

    def throttle(self, n: int) -> None:
        """The next `n` calls answer `EGeneral:Too many requests`."""
        with self._lock:
            self._throttled = n

    def http_status(self, status: int, n: int, retry_after: float | None = None) -> None:
        """The next `n` calls answer HTTP `status` (e.g. 429, 503), with a `Retry-After`
        header of `retry_after` seconds when given, and a plain-text body, as an edge does
        (Cloudflare's HTML page for 403 and 520-530)."""
        _check_status(status)
        with self._lock:
            self._http_status = (status, n, retry_after) if n > 0 else None

    def down(self, seconds: float, status: int = 503, retry_after: float | None = None) -> None:
        """Every call answers HTTP `status` for the next `seconds` of wall time, as in front of
        Kraken during an incident or maintenance: 502/503/504 in plain text, Cloudflare's 403
        or 520-530 as an HTML page, 429 when it sheds load; with a `Retry-After` header of
        `retry_after` seconds when given. 0 ends it at once."""
        _check_status(status)
        with self._lock:
            self._down = (time.monotonic() + seconds, status, retry_after) if seconds > 0 else None
        logger.info("REST down for %gs (HTTP %d)", seconds, status)

    def kraken_errors(
        self, errors: Sequence[str], n: int, *, endpoint: str | None = "Trades"
    ) -> None:
        """The next `n` calls of `endpoint` (`Trades`, `AssetPairs`; None: any) answer HTTP 200
        `{"error": [e], "result": {}}` as Kraken reports a failed call, `e` going through
        `errors` in turn: documented ones (`KRAKEN_ERRORS`) or any other string (Kraken adds
        new ones). n <= 0 ends it for that endpoint."""
        errors = tuple(errors)
        if not errors or not all(isinstance(e, str) for e in errors):
            raise ValueError(f"errors must be a non-empty sequence of strings: {errors!r}")
        with self._lock:
            if n > 0:
                self._errors[endpoint] = _ErrorRun(errors, n)
            else:
                self._errors.pop(endpoint, None)

    def oversized(self, size: int, n: int, *, endpoint: str | None = "Trades") -> None:
        """The next `n` calls of `endpoint` (None: any) answer HTTP 200 with a body of `size`
        bytes or more: Kraken's JSON, padded (as a broken or hostile server might). n <= 0
        ends it for that endpoint."""
        with self._lock:
            if n > 0:
                self._oversized[endpoint] = (n, size)
            else:
                self._oversized.pop(endpoint, None)

    def lag(self, seconds: float) -> None:
        """`Trades` serves only trades at least `seconds` old, as Kraken's REST lags its
        WebSocket by seconds: a trade just sent on the socket is not in REST yet. `last`
        follows what was served (`since` itself when nothing was). 0 turns it off."""
        if seconds < 0:
            raise ValueError(f"a lag cannot be negative: {seconds}")
        with self._lock:
            self._lag_ns = int(seconds * 1e9)

    def not_kraken(
        self,
        status: int | None = 404,
        body: bytes | None = None,
        content_type: str = "text/html",
    ) -> None:
        """Every path answers like a web server that is not Kraken (a `kraken_rest_url`
        pointing elsewhere): HTTP `status` (404, 200...) with `body`, by default an HTML page.
        None: Kraken again."""
        if status is None:
            with self._lock:
                self._not_kraken = None
            return
        _check_status(status)
        if body is None:
            reason = reason_phrase(status)
            title = "Welcome to nginx!" if status == 200 else f"{status} {reason}"
            body = (
                f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
                f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n"
            ).encode()
        with self._lock:
            self._not_kraken = (status, body, content_type)

    def corrupt_row(
        self, symbol: str, trade_id: int, row: list | None = None, reads: int | None = None
    ) -> None:
        """`Trades` answers that include trade `trade_id` of `symbol` carry `row` in its
        place; by default the trade's own row with a non-numeric price. The broken row still
        counts in the page and in its `last`, so it can be a full page's first or last row.

        :param reads: broken in the first `reads` answers that include it, then served
            correctly (a glitch that passes); None: in every answer; 0 mends it now.
        """
        self.corrupt_rows(symbol, (trade_id,), row, reads)

    def corrupt_rows(
        self,
        symbol: str,
        trade_ids: Iterable[int],
        row: list | None = None,
        reads: int | None = None,
    ) -> None:
        """`corrupt_row` for each of `trade_ids` (each row counts its own `reads`)."""
        if reads is not None and reads < 0:
            raise ValueError(f"reads cannot be negative: {reads}")
        with self._lock:
            for trade_id in trade_ids:
                key = (symbol, trade_id)
                if reads == 0:
                    self._corrupt.pop(key, None)
                else:
                    self._corrupt[key] = _BrokenRow(None if row is None else list(row), reads)

    def withhold(self, symbol: str, first_id: int, last_id: int) -> None:
        """`Trades` answers leave out trades `first_id..last_id` of `symbol`, as if Kraken's
        history lacked them (the cursor `last` is unchanged)."""
        with self._lock:
            self._withheld.setdefault(symbol, []).append((first_id, last_id))

    def handle(self, target: str) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for a request target such as `/0/public/Trades?pair=...`."""
        status, _headers, body = self.respond(target)
        return status, body

    def respond(self, target: str) -> tuple[int, dict[str, str], bytes]:
        """(HTTP status, extra headers, body) for a request target."""
        self.calls.append(target)
        logger.debug("REST %s", target)
        url = urlsplit(target)
        with self._lock:
            fault = self._fault(target, url.path)
        if fault is not None:
            return fault
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/0/public/AssetPairs":
            return 200, {}, self._asset_pairs(query)
        if url.path == "/0/public/Trades":
            return 200, {}, self._trades(query)
        return 404, {}, _error("EGeneral:Unknown method")

    def _fault(self, target: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        """The injected answer to this call, if any (under the lock)."""
        if self._not_kraken is not None:
            status, body, content_type = self._not_kraken
            return status, {"Content-Type": content_type}, body
        if self._down is not None:
            until, status, retry_after = self._down
            if time.monotonic() < until:
                logger.info("REST %s answered HTTP %d (down)", target, status)
                return _edge_answer(status, retry_after)
            self._down = None
            logger.info("REST up again")
        if self._http_status is not None:
            status, n, retry_after = self._http_status
            self._http_status = (status, n - 1, retry_after) if n > 1 else None
            logger.info("REST %s answered HTTP %d", target, status)
            return _edge_answer(status, retry_after)
        if self._throttled > 0:
            self._throttled -= 1
            logger.info("REST %s throttled", target)
            return 200, {}, _error("EGeneral:Too many requests")
        endpoint = path.rsplit("/", 1)[-1]
        oversized = self._oversized_answer(target, endpoint)
        if oversized is not None:
            return oversized
        key = endpoint if endpoint in self._errors else None
        run = self._errors.get(key)
        if run is None:
            return None
        error = run.errors[run.served % len(run.errors)]
        run.served += 1
        run.left -= 1
        if run.left <= 0:
            del self._errors[key]
        logger.info("REST %s answered %r", target, error)
        return 200, {}, orjson.dumps({"error": [error], "result": {}})

    def _oversized_answer(
        self, target: str, endpoint: str
    ) -> tuple[int, dict[str, str], bytes] | None:
        """A padded answer if one is due on `endpoint` (under the lock)."""
        key = endpoint if endpoint in self._oversized else None
        if key not in self._oversized:
            return None
        n, size = self._oversized[key]
        if n > 1:
            self._oversized[key] = (n - 1, size)
        else:
            del self._oversized[key]
        logger.info("REST %s answered %d bytes", target, size)
        return 200, {}, b'{"error":[],"result":{},"padding":"' + b" " * size + b'"}'

    def _by_rest_name(self) -> dict[str, str]:
        """REST name (altname or result key) -> v2 symbol; built once (the pairs are fixed)."""
        names = self._names
        if names is None:
            names = {}
            for symbol in self.market.pairs:
                info = pair_info(symbol)
                names[info.altname] = symbol
                names[info.key] = symbol
            self._names = names
        return names

    def _asset_pairs(self, query: dict[str, str]) -> bytes:
        wanted = set(query["pair"].split(",")) if "pair" in query else None
        result = {}
        for symbol in self.market.pairs:
            info = pair_info(symbol)
            if wanted and not wanted & {info.altname, info.key}:
                continue
            result[info.key] = {
                "altname": info.altname,
                "wsname": info.wsname,
                "aclass_base": "currency",
                "base": info.base,
                "aclass_quote": "currency",
                "quote": info.quote,
                "pair_decimals": 5,
                "lot_decimals": 8,
                "status": self.market.status(symbol),
            }
        if wanted and not result:
            return _error("EQuery:Unknown asset pair")
        return orjson.dumps({"error": [], "result": result})

    def _trades(self, query: dict[str, str]) -> bytes:
        symbol = self._by_rest_name().get(query.get("pair", ""))
        if symbol is None:
            return _error("EQuery:Unknown asset pair")
        try:
            since = int(query["since"]) if "since" in query else None
            count = min(int(query.get("count", MAX_COUNT)), MAX_COUNT)
        except ValueError:
            return _error("EGeneral:Invalid arguments")
        with self._lock:
            lag_ns = self._lag_ns
            withheld = list(self._withheld.get(symbol, ()))
        until = time.time_ns() - lag_ns if lag_ns else None
        trades = self.market.trades_since(symbol, since, count, until)
        last = str(trades[-1].time_ns) if trades else str(since or 0)
        if withheld:
            trades = [t for t in trades if not any(a <= t.trade_id <= b for a, b in withheld)]
        rows = [t.to_rest_row() for t in trades]
        with self._lock:
            if self._corrupt:
                for i, trade in enumerate(trades):
                    if (symbol, trade.trade_id) in self._corrupt:
                        rows[i] = self._broken(trade)
        return orjson.dumps({"error": [], "result": {pair_info(symbol).key: rows, "last": last}})

    def _broken(self, trade: SimTrade) -> list:
        """The broken row standing for `trade` in this answer (under the lock)."""
        key = (trade.symbol, trade.trade_id)
        broken = self._corrupt[key]
        if broken.reads is not None:
            broken.reads -= 1
            if broken.reads <= 0:
                del self._corrupt[key]  # the next answers serve the row as it is
        if broken.row is not None:
            return list(broken.row)
        return ["not-a-price", *trade.to_rest_row()[1:]]


def _edge_answer(status: int, retry_after: float | None) -> tuple[int, dict[str, str], bytes]:
    """An HTTP error from in front of Kraken's API: plain text, or Cloudflare's HTML page."""
    headers = {"Content-Type": "text/plain"}
    if retry_after is not None:
        headers["Retry-After"] = format(retry_after, "g")
    if status not in CLOUDFLARE_STATUSES:
        return status, headers, f"HTTP {status}\n".encode()
    headers["Content-Type"] = "text/html; charset=UTF-8"
    reason = reason_phrase(status)
    body = (
        f"<!DOCTYPE html>\n<html><head><title>api.kraken.com | {status}: {reason}</title>"
        f"</head>\n<body><h1>Error {status}</h1><p>{reason}</p>"
        "<p>Performance &amp; security by Cloudflare</p></body></html>\n"
    )
    return status, headers, body.encode()


def reason_phrase(status: int) -> str:
    """The reason phrase of an HTTP status, Cloudflare's 52x included."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:  # Cloudflare's 52x have no standard name
        return _CLOUDFLARE_REASONS.get(status, "Unknown")


def _check_status(status: int) -> None:
    if not 100 <= status <= 599:
        raise ValueError(f"not an HTTP status: {status}")


def _error(message: str) -> bytes:
    return orjson.dumps({"error": [message]})
