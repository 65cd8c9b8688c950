"""Structured logs: one JSON object (or one readable text line) per record on stderr, with
secrets redacted; the access log (polyroute.observability.access_log) writes its one line
per finished request through the same sink.

`configure_logging` (called by each gateway worker) installs one handler on the root
logger. Records are formatted on the caller's thread and handed to a `BackgroundWriter`,
whose thread redacts a whole batch at once and writes it: the event loop never waits for
stderr, and lines are dropped (and counted, ``polyroute_log_lines_dropped_total``) rather
than blocking when nobody reads the pipe.

JSON lines have ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, then any
``extra`` fields of the record; access lines add ``request_id``, ``kind``, ``route``,
``deployment``, ``strategy``, ``arm``, ``attempts``, ``status``, ``latency_ms``,
``ttft_ms`` (streams), ``tokens_in``, ``tokens_out``, ``cost``, ``error_type`` and
``error_code`` (failures) and the caller's key id and team.

**Redaction.** Every secret of the config (each ``SecretStr``: upstream API keys and
headers, client keys, the admin key, database and Redis URLs and their passwords, the
metrics key) is replaced by ``[redacted]`` wherever it appears in a line, as are bearer
tokens (``Bearer ...``) and OpenAI-style keys (``sk-...``). Secrets shorter than 8
characters are left alone: they would match ordinary words. The prompt and the answer are
never logged unless ``logs.prompts: true`` (then the prompt text of access lines).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, SecretStr

from polyroute.formatting import field_text, iso_time
from polyroute.observability.writer import BackgroundWriter

if TYPE_CHECKING:
    from polyroute.config.schema import GatewayConfig

ACCESS_LOGGER = "polyroute.access"
MIN_SECRET = 8
_PIPE_BUF = 4096  # POSIX guarantees at least 512; Linux's is 4096
REDACTED = "[redacted]"
_SCHEME = re.compile(r"((?i:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}")
_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{12,}")
_STANDARD_ATTRS = frozenset(
    {
        *vars(logging.LogRecord("", 0, "", 0, "", None, None)),
        "message",
        "asctime",
        "taskName",
    }
)
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


# -- secrets ---------------------------------------------------------------------------------


def config_secrets(config: BaseModel) -> list[str]:
    """Every SecretStr value in `config` (nested models, lists and dicts), with the password
    of any URL among them."""
    found: list[str] = []
    for value in _walk(config):
        secret = value.get_secret_value()
        if not secret:
            continue
        found.append(secret)
        password = _url_password(secret)
        if password:
            found.append(password)
    return found


def _walk(value: Any) -> Iterator[SecretStr]:
    if isinstance(value, SecretStr):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name))
        for extra in (value.model_extra or {}).values():
            yield from _walk(extra)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk(item)


def _url_password(text: str) -> str | None:
    if "://" not in text:
        return None
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(text).password
    except ValueError:
        return None
    return unquote(password) if password else None


class Redactor:
    """Replaces configured secrets and token-shaped strings in text.

    Built for batches of log lines: each secret is found with `str.find` (a fast scan in
    C) and the token patterns run only when a cheap check finds their marker (``sk-``,
    ``bearer``/``basic``), so clean text costs a few scans instead of a regex alternation
    tried at every position."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        words: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET:
                continue
            words.add(secret)
            words.add(orjson.dumps(secret).decode()[1:-1])  # as it appears inside JSON
        self.secrets = sorted(words, key=len, reverse=True)  # longest first

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "sk-" in text:
            text = _KEY.sub(REDACTED, text)
        lowered = text.lower()
        if "bearer" in lowered or "basic" in lowered:
            text = _SCHEME.sub(rf"\g<1>{REDACTED}", text)
        return text


# -- formatting -----------------------------------------------------------------------------


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_extras(record))
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["error"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        fields = " ".join(f"{k}={field_text(v)}" for k, v in extras.items() if v is not None)
        line = f"{iso_time(record.created)} {record.levelname:<7} {record.name}: "
        line += record.getMessage() + (f" {fields}" if fields else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# -- the sink -------------------------------------------------------------------------------


class LogSink:
    """Where every log line of the process goes: a background writer on a stream."""

    def __init__(
        self, stream: IO[str], redact: Redactor, *, json: bool, queue_size: int = 10_000
    ) -> None:
        self.stream = stream
        self.redact = redact
        self.json = json
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self.writer = BackgroundWriter(
            "polyroute-log", self._render, self._write, queue_size=queue_size, interval=0.1
        )
        self.put_clean = self.writer.put

    def put(self, line: str) -> None:
        self.writer.put(line)

    put_clean: Callable[[bytes], bool]
    """Queue a UTF-8 line the gateway built only from values it made or configured itself
    (ids, configured names, numbers): nothing a secret could hide in, so it skips the
    redactor (about a sixth of an access line's cost); False if the queue dropped it. The
    compiled writer's own `put`, set per sink: no Python frame of this class per line."""

    def _render(self, lines: list[str | bytes]) -> bytes:
        parts: list[bytes] = []
        dirty: list[str] = []
        for line in lines:
            if isinstance(line, bytes):
                if dirty:
                    parts.append(self._redacted(dirty))
                    dirty = []
                parts.append(line + b"\n")
            else:
                dirty.append(line)
        if dirty:
            parts.append(self._redacted(dirty))
        return b"".join(parts)

    def _redacted(self, lines: list[str]) -> bytes:
        return self.redact("\n".join(lines) + "\n").encode("utf-8", "replace")

    def _write(self, data: bytes) -> None:
        """Write whole lines, at most PIPE_BUF bytes per call where possible: the workers
        of `serve --workers N` share stderr, and a pipe keeps only writes up to PIPE_BUF
        in one piece, so their lines never interleave mid-line."""
        fd = self._fd
        if fd is None:
            self.stream.write(data.decode("utf-8"))
            self.stream.flush()
            return
        view = memoryview(data)
        start, size = 0, len(data)
        while start < size:
            end = start + _PIPE_BUF
            if end < size:
                cut = data.rfind(b"\n", start, end)
                end = cut + 1 if cut >= start else (data.find(b"\n", end) + 1 or size)
            chunk = view[start:end]
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]
            start = end

    def never_blocks(self) -> bool:
        """Whether writes to the stream return at once: a regular file or a character
        device that is not a terminal (/dev/null). A pipe or a terminal can stall while
        its reader does, so only the thread may write to it."""
        if self._fd is None:
            return False
        try:
            mode = os.fstat(self._fd).st_mode
            return stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(self._fd))
        except OSError:
            return False

    def drain_on_loop(self) -> bool:
        """Write from the running event loop instead of the thread where the stream never
        blocks: no second thread taking the GIL from the request path (the request log's
        choice too; see polyroute.observability.writer). Returns whether it moved."""
        if not self.never_blocks():
            return False
        self.writer.move_to_loop()
        return True

    @property
    def dropped(self) -> int:
        return self.writer.dropped

    def close(self, timeout: float = 2.0) -> None:
        self.writer.close(timeout)


class SinkHandler(logging.Handler):
    """A logging handler that formats on the caller's thread and queues the line."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.put(self.format(record))
        except Exception:
            self.handleError(record)


INSTALLED: list[LogSink] = []
"""The sink `configure_logging` installed in this process (none or one). The list is
changed in place, never rebound, so the compiled access log can read it directly."""


def current_sink() -> LogSink | None:
    """The sink `configure_logging` installed in this process, if any."""
    return INSTALLED[-1] if INSTALLED else None


def configure_logging(config: GatewayConfig, stream: IO[str] | None = None) -> LogSink:
    """Send this process's logs (level, format of `config`) through a redacting sink on
    `stream` (default stderr); replaces a sink installed before."""
    settings = config.observability.logs
    stream = stream if stream is not None else sys.stderr
    json = settings.format == "json" or (settings.format == "auto" and not _is_tty(stream))
    redact = Redactor(config_secrets(config))
    sink = LogSink(stream, redact, json=json, queue_size=settings.queue_size)
    handler = SinkHandler(sink)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, SinkHandler)]:
        root.removeHandler(old)
        atexit.unregister(old.sink.close)
        old.sink.close()
    INSTALLED.clear()
    root.addHandler(handler)
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    logging.getLogger("polyroute").setLevel(_LEVELS.get(settings.level, logging.ERROR))
    sink.writer.start()
    INSTALLED.append(sink)
    atexit.register(sink.close)
    return sink


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
