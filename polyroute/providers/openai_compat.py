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
from polyroute.providers.alarms import Alarm, AlarmWheel, wheel_of
from polyroute.providers.request import Timeouts, UpstreamRequest

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
        self._wheel: AlarmWheel | None = None

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
        loop = asyncio.get_running_loop()
        wheel = self._wheel = wheel_of(loop, self._wheel)
        timer = _AttemptTimer(wheel, limits)
        try:
            response = await self._client().post(
                self._urls[request.kind],
                data=orjson.dumps(request.body),
                headers=headers,
                timeout=client_timeout(limits),  # shared per connect limit
                allow_redirects=False,  # a redirect would carry the prompt and headers away
            )
        except BaseException as exc:
            timer.stop()
            expired = timer.headers_expired()  # our own cancellation, taken back
            if expired or isinstance(exc, (aiohttp.ClientError, TimeoutError)):
                failure = TimeoutError() if expired else exc
                raise translate_error(failure, self.name, "before the response headers") from None
            raise
        if timer.headers_expired():  # rang just as the headers came
            response.close()
            raise translate_error(TimeoutError(), self.name, "before the response headers")
        timer.watch_body(response)
        return AiohttpResponse(response, self.name, self._max_response_bytes, timer)

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

    Its attempt's timer bounds the body: `idle` every wait for bytes of a stream (or the
    whole read of a JSON body), and the attempt's `total` wherever it is then, so an
    upstream that goes silent mid-stream ends in UpstreamTimeout instead of holding the
    client forever. On expiry the timer closes the response, which ends the pending read.
    """

    __slots__ = ("_max_bytes", "_response", "_timer", "deployment", "headers", "status")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        deployment: str,
        max_bytes: int,
        timer: _AttemptTimer,
    ) -> None:
        self._response = response
        self._max_bytes = max_bytes
        self._timer = timer
        self.deployment = deployment
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        response, timer = self._response, self._timer
        try:
            length = response.content_length
            if length is not None and length <= self._max_bytes:
                body = await response.read()
            else:
                body = await self._read_capped()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if timer.fired:
                raise self._timed_out("while reading the body") from None
            raise translate_error(exc, self.deployment, "while reading the body") from None
        finally:
            timer.stop()
            response.release()
        if timer.fired:  # closed by the timer: what was read is not the whole body
            raise self._timed_out("while reading the body")
        return body

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

    def iter_chunks(self) -> AsyncIterator[bytes]:
        self._timer.touch()  # idle counts from the start of the stream, then from each chunk
        return _Chunks(self)

    def ended(self) -> bool:
        return self._response.content.at_eof()

    def _timed_out(self, phase: str) -> UpstreamTimeout:
        timer = self._timer
        idle = timer.limits.idle
        if timer.idle_expired and idle is not None:
            what = f"sent nothing for {idle:.3g}s"
        else:
            what = "ran out of time"
        return UpstreamTimeout(
            f"deployment {self.deployment}: {what} {phase}", deployment=self.deployment
        )

    async def aclose(self) -> None:
        # release() returns a fully read connection to the pool; an unread body closes it,
        # which is what cancels the upstream's work when the client has gone away.
        self._timer.stop()
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class _Chunks:
    """The chunks of an `AiohttpResponse`'s body as they arrive. An iterator class rather
    than an async generator, which mypyc cannot compile (setup.py). The timer stops when
    the stream ends or fails; on cancellation, the response's `aclose` stops it."""

    __slots__ = ("_content", "_owner")

    def __init__(self, owner: AiohttpResponse) -> None:
        self._owner = owner
        self._content = owner._response.content

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        owner = self._owner
        timer = owner._timer
        try:
            chunk = await self._content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            timer.stop()
            if timer.fired:
                raise owner._timed_out("mid-stream") from None
            raise translate_error(exc, owner.deployment, "mid-stream") from None
        if timer.fired:
            timer.stop()
            raise owner._timed_out("mid-stream")
        if not chunk:
            timer.stop()
            raise StopAsyncIteration
        timer.touch()
        return chunk


class _AttemptTimer:
    """One attempt's time limits, as one alarm on the loop's `AlarmWheel`.

    First the wait for the response headers (`first_byte`, within `total`): on expiry the
    waiting task is cancelled and the provider turns that cancellation into a timeout, as
    ``asyncio.timeout`` does. Then the body: `idle` (from the start of a JSON read, or from
    the last chunk of a stream) within `total`: on expiry the response is closed, which
    ends the pending read, and `fired` tells the reader it was a timeout. A chunk only
    stores the time it arrived (`touch`); the alarm moves itself when it finds that.
    """

    __slots__ = (
        "_alarm",
        "_cancelling",
        "_idle",
        "_response",
        "_task",
        "deadline",
        "fired",
        "idle_expired",
        "last",
        "limits",
        "wheel",
    )

    def __init__(self, wheel: AlarmWheel, limits: Timeouts) -> None:
        self.wheel = wheel
        self.limits = limits
        now = wheel.loop.time()
        total = limits.total
        self.deadline = math.inf if total is None else now + total
        self.last = now
        self._idle = math.inf if limits.idle is None else limits.idle
        self.fired = self.idle_expired = False
        self._response: aiohttp.ClientResponse | None = None
        self._alarm: Alarm | None = None
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("an upstream attempt must run in a task")
        self._task = task
        self._cancelling = task.cancelling()
        first = _earliest(limits.first_byte, total)
        if first is not None:
            self._alarm = wheel.set(now + first, self._headers_due)

    def _headers_due(self, now: float) -> float | None:
        self.fired = True
        self._alarm = None
        self._task.cancel()
        return None

    def headers_expired(self) -> bool:
        """After the wait for headers: whether the limit rang during it (its cancellation
        of the task is then taken back, as asyncio.timeout does)."""
        if not self.fired:
            return False
        return self._task.uncancel() <= self._cancelling

    def watch_body(self, response: aiohttp.ClientResponse) -> None:
        """From now on, bound the body: `idle` from now (a whole JSON read) and `total`."""
        self._response = response
        self.touch()
        due = min(self.last + self._idle, self.deadline)
        alarm = self._alarm
        if due == math.inf:
            self.stop()
        elif alarm is None:
            self._alarm = self.wheel.set(due, self._body_due)
        else:
            self.wheel.reset(alarm, due, self._body_due)

    def touch(self) -> None:
        """Bytes arrived: the idle limit counts from now."""
        self.last = self.wheel.loop.time()

    def _body_due(self, now: float) -> float | None:
        due = min(self.last + self._idle, self.deadline)
        if now < due:
            return due
        self._alarm = None
        self.fired = True
        self.idle_expired = now < self.deadline
        if self._response is not None:
            self._response.close()
        return None

    def stop(self) -> None:
        alarm = self._alarm
        if alarm is not None:
            self._alarm = None
            self.wheel.clear(alarm)


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
    """The limit aiohttp enforces: opening a new connection. Everything else is one alarm
    per attempt (`_AttemptTimer`): first byte (and the wait for a pooled connection), then
    the body, with `total` folded into both; aiohttp's own total and connect limits would
    cost two timers a request. The objects are shared per connect limit instead of built
    per attempt."""
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
