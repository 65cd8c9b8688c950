"""OpenAI-compatible HTTP adapter: vLLM, Ollama, llama.cpp, TGI, OpenAI, DeepSeek, Qwen...

One pooled keep-alive aiohttp session per deployment. aiohttp rather than httpx because the
bench harness measured httpx.AsyncClient at 5-50x the CPU per request of aiohttp under
concurrency (shared/bench/README.md). Everything per deployment (URLs, headers, timeouts)
is computed once; a request costs one dict merge and one orjson.dumps.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping

import aiohttp
import orjson

from polyroute.config.schema import DeploymentConfig
from polyroute.deployment import timeouts_of
from polyroute.errors import (
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamReset,
    UpstreamTimeout,
)
from polyroute.kinds import UPSTREAM_PATHS
from polyroute.providers.base import Timeouts, UpstreamRequest

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class OpenAICompatibleProvider:
    """Forwards requests to `<base_url>/chat/completions` etc. with the deployment's key."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.name = name
        self._urls = {kind: base_url.rstrip("/") + path for kind, path in UPSTREAM_PATHS.items()}
        self._probe_url = base_url.rstrip("/") + "/models"
        base_headers = {"content-type": "application/json", "accept-encoding": "identity"}
        base_headers.update({k.lower(): v for k, v in (headers or {}).items()})
        if api_key:
            base_headers["authorization"] = f"Bearer {api_key}"
        self._headers = base_headers
        self._timeouts = timeouts or Timeouts()
        self._timeout = client_timeout(self._timeouts)
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(
        cls, config: DeploymentConfig, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    ) -> OpenAICompatibleProvider:
        if config.base_url is None:
            raise ValueError(f"deployment {config.name}: base_url is required")
        return cls(
            name=config.name,
            base_url=config.base_url,
            api_key=config.api_key.get_secret_value() if config.api_key else None,
            headers={k: v.get_secret_value() for k, v in config.headers.items()},
            timeouts=timeouts_of(config.timeouts),
            max_connections=config.max_connections,
            max_response_bytes=max_response_bytes,
        )

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            # keep-alive shorter than the usual 5 s server idle timeout (uvicorn, vLLM), so a
            # pooled connection is not reused just as the upstream closes it
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ttl_dns_cache=300, keepalive_timeout=4
            )
            # no cookie jar: a cookie one tenant's request received must not travel
            # with another tenant's
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._session = session
        return session

    async def start(self) -> None:
        """Create the pool up front so the first request pays no set-up cost."""
        self._client()

    async def send(self, request: UpstreamRequest) -> AiohttpResponse:
        headers = self._headers
        if request.request_id:
            headers = {**headers, "x-request-id": request.request_id}
        limits = request.timeouts
        total = limits.total
        loop = asyncio.get_running_loop()
        deadline = None if total is None else loop.time() + total
        try:
            async with asyncio.timeout(_earliest(limits.first_byte, total)):
                response = await self._client().post(
                    self._urls[request.kind],
                    data=orjson.dumps(request.body),
                    headers=headers,
                    timeout=client_timeout(limits),  # shared per connect limit
                    allow_redirects=False,  # a redirect would carry the prompt and headers away
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate_error(exc, self.name, "before the response headers") from None
        return AiohttpResponse(
            response, self.name, self._max_response_bytes, limits.idle, deadline=deadline
        )

    async def probe(self, limit: float) -> bool:
        """Whether the upstream answers `GET <base_url>/models` (any status below 500 but
        429: the server is up, even if it keeps no model list) within `limit` seconds. Through
        the deployment's pool, so a successful probe also leaves a warm connection."""
        try:
            async with asyncio.timeout(limit):
                response = await self._client().get(
                    self._probe_url, headers=self._headers, allow_redirects=False
                )
                status = response.status
                response.release()
        except (aiohttp.ClientError, TimeoutError):
            return False
        return status < 500 and status != 429

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AiohttpResponse:
    """UpstreamResponse over an aiohttp response; maps transport errors to Upstream*.

    `idle` bounds every wait for body bytes, so an upstream that goes silent mid-stream
    ends in UpstreamTimeout instead of holding the client forever; `deadline` (loop time)
    ends the attempt's `total` time, wherever it is then.
    """

    __slots__ = (
        "_deadline",
        "_idle",
        "_max_bytes",
        "_response",
        "deployment",
        "headers",
        "status",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        deployment: str,
        max_bytes: int,
        idle: float | None = None,
        *,
        deadline: float | None = None,
    ) -> None:
        self._response = response
        self._max_bytes = max_bytes
        self._idle = idle
        self._deadline = deadline
        self.deployment = deployment
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        response = self._response
        limit = self._idle
        if self._deadline is not None:
            limit = _earliest(limit, self._deadline - asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(limit):
                length = response.content_length
                if length is not None and length <= self._max_bytes:
                    return await response.read()
                return await self._read_capped()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate_error(exc, self.deployment, "while reading the body") from None
        finally:
            response.release()

    async def _read_capped(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self._response.content.iter_any():
            size += len(chunk)
            if size > self._max_bytes:
                self._response.close()
                raise UpstreamBadResponse(
                    f"deployment {self.deployment}: response larger than {self._max_bytes} bytes",
                    deployment=self.deployment,
                )
            parts.append(chunk)
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        content, idle, deadline = self._response.content, self._idle, self._deadline
        watchdog = None
        if idle is not None or deadline is not None:
            watchdog = _IdleWatchdog(self._response, idle, deadline)
        try:
            while True:
                chunk = await content.readany()
                if watchdog is not None:
                    if watchdog.fired:
                        break
                    watchdog.touch()
                if not chunk:
                    return
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            if watchdog is None or not watchdog.fired:
                raise translate_error(exc, self.deployment, "mid-stream") from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
        assert watchdog is not None
        what = f"sent nothing for {idle:.3g}s" if watchdog.idle_expired else "ran out of time"
        raise UpstreamTimeout(
            f"deployment {self.deployment}: {what} mid-stream", deployment=self.deployment
        )

    async def aclose(self) -> None:
        # release() returns a fully read connection to the pool; an unread body closes it,
        # which is what cancels the upstream's work when the client has gone away.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class _IdleWatchdog:
    """Ends a stream that stays silent for `idle` seconds or runs past `deadline` (loop
    time), with one timer per stream.

    A timer per chunk (asyncio.timeout around each read) costs a timer handle per chunk;
    here a chunk only stores the time it arrived, and the single timer re-arms itself for
    the remaining time when it fires early. On expiry it closes the response, which ends
    the pending read; `fired` tells the reader it was a timeout, `idle_expired` which one.
    """

    __slots__ = (
        "_deadline",
        "_handle",
        "_idle",
        "_last",
        "_loop",
        "_response",
        "fired",
        "idle_expired",
    )

    def __init__(
        self, response: aiohttp.ClientResponse, idle: float | None, deadline: float | None
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._response = response
        self._idle = idle
        self._deadline = deadline
        self._last = self._loop.time()
        self.fired = self.idle_expired = False
        self._handle = self._loop.call_at(self._due(), self._check)

    def _due(self) -> float:
        idle_due = math.inf if self._idle is None else self._last + self._idle
        return idle_due if self._deadline is None else min(idle_due, self._deadline)

    def touch(self) -> None:
        self._last = self._loop.time()

    def _check(self) -> None:
        due = self._due()
        now = self._loop.time()
        if now < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self.fired = True
        self.idle_expired = self._deadline is None or now < self._deadline
        self._response.close()

    def cancel(self) -> None:
        self._handle.cancel()


def translate_error(exc: BaseException, deployment: str, phase: str) -> UpstreamError:
    """aiohttp/asyncio failures -> the gateway's error tree, naming the deployment only."""
    prefix = f"deployment {deployment}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"{prefix}: connect timed out", deployment=deployment)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return UpstreamTimeout(f"{prefix}: timed out {phase}", deployment=deployment)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectionError(f"{prefix}: connection refused", deployment=deployment)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return UpstreamReset(f"{prefix}: connection reset {phase}", deployment=deployment)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamReset(f"{prefix}: response cut short {phase}", deployment=deployment)
    return UpstreamBadResponse(f"{prefix}: invalid HTTP response {phase}", deployment=deployment)


_TIMEOUTS: dict[float | None, aiohttp.ClientTimeout] = {}


def client_timeout(t: Timeouts) -> aiohttp.ClientTimeout:
    """The limit aiohttp enforces: opening a new connection. Everything else is ours, with
    fewer timers: first byte (and the wait for a pooled connection) under one
    asyncio.timeout, the body under one more or one watchdog per stream, and `total` folded
    into both; aiohttp's own total and connect limits cost two more timers a request. The
    objects are shared per connect limit instead of built per attempt."""
    found = _TIMEOUTS.get(t.connect)
    if found is None:
        if len(_TIMEOUTS) > 4096:
            _TIMEOUTS.clear()
        found = _TIMEOUTS[t.connect] = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=t.connect
        )
    return found


def _earliest(limit: float | None, other: float | None) -> float | None:
    """The shorter of two optional limits (None: no limit)."""
    if limit is None:
        return other
    if other is None:
        return limit
    return min(limit, max(other, 0.0))
