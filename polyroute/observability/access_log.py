"""The access log: one line per finished request, built straight into the log sink.

Its own module, apart from polyroute.observability.logs, so that it is compiled with the
request path (setup.py): logs.py subclasses logging's classes and, compiled, failed the
test suite. The line's fields are listed in logs.py's docstring.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from polyroute.formatting import field_text, iso_time, rounded
from polyroute.observability.logs import ACCESS_LOGGER, INSTALLED, LogSink
from polyroute.observability.settings import LogSettings
from polyroute.outcomes import Feedback, Outcome


class AccessLog:
    """An outcome observer: one line per finished request at level info on
    ``polyroute.access`` (turned off by ``logs.access_log: false`` or that logger's level)."""

    def __init__(self, settings: LogSettings, sink: LogSink | None = None) -> None:
        self.prompts = settings.prompts
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self._sink = sink

    def fields(self, outcome: Outcome) -> dict[str, Any]:
        """The line's fields, without time, level, logger and message."""
        return self._line(outcome, {})

    def _line(self, outcome: Outcome, line: dict[str, Any]) -> dict[str, Any]:
        """`line` (empty, or already holding time, level, logger and message: one dict per
        request instead of two merged) with the request's fields added."""
        ctx = outcome.ctx
        decision = outcome.decision
        deployment = outcome.deployment
        usage = outcome.usage
        line["request_id"] = ctx.request_id
        line["kind"] = str(ctx.kind)  # a StrEnum: its value, without the Python property
        line["route"] = decision.route if decision is not None else None
        line["deployment"] = deployment.name if deployment is not None else None
        line["strategy"] = decision.strategy if decision is not None else None
        line["attempts"] = outcome.attempts
        line["status"] = outcome.status
        line["latency_ms"] = rounded(outcome.latency * 1000, 100)
        if usage is not None:
            line["tokens_in"] = usage.prompt_tokens
            line["tokens_out"] = usage.completion_tokens
        else:
            line["tokens_in"] = line["tokens_out"] = None
        line["cost"] = outcome.cost
        if decision is not None and decision.arm is not None:
            line["arm"] = decision.arm
        if outcome.ttft is not None:
            line["ttft_ms"] = rounded(outcome.ttft * 1000, 100)
        if usage is not None and usage.estimated:
            line["tokens_estimated"] = True
        if outcome.cache is not None:
            line["cache"] = outcome.cache
        if not outcome.ok:
            line["error_type"] = outcome.error_type
            line["error_code"] = outcome.error_code
        caller = ctx.caller
        if caller.key_id is not None:
            line["key_id"] = caller.key_id
        if caller.team is not None:
            line["team"] = caller.team
        if self.prompts:
            line["prompt"] = ctx.text
        return line

    def observe(self, outcome: Outcome) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        sink = self._sink or (INSTALLED[-1] if INSTALLED else None)
        if sink is None:  # no sink in this process (embedded): plain logging
            logger.info("request", extra=self.fields(outcome))
            return
        epoch = time.time_ns() / 1e9
        if sink.json:
            head = {
                "time": iso_time(epoch),
                "level": "info",
                "logger": ACCESS_LOGGER,
                "message": "request",
            }
            line = self._line(outcome, head)
            if self.prompts:  # client text: through the redactor
                sink.put(orjson.dumps(line, default=str).decode())
            else:
                sink.put_clean(orjson.dumps(line, default=str))
        else:
            fields = self.fields(outcome)
            text = " ".join(f"{k}={field_text(v)}" for k, v in fields.items() if v is not None)
            sink.put(f"{iso_time(epoch)} INFO    {ACCESS_LOGGER}: request {text}")

    def feedback(self, feedback: Feedback) -> dict[str, Any] | None:
        return None
