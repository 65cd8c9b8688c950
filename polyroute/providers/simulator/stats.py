"""Counters a test reads to see what the simulator received and what it did.

Besides counts, the last request's headers and body are kept so gateway tests can assert
what was forwarded upstream (the model-id rewrite, pass-through parameters, the upstream
key) without the key itself ever being stored.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key"})


def key_fingerprint(value: str) -> str:
    """16 hex digits of sha256 of an API key (a `Bearer ` prefix is ignored)."""
    if value[:7].lower() == "bearer ":
        value = value[7:]
    return hashlib.sha256(value.strip().encode()).hexdigest()[:16]


@dataclass(slots=True)
class SimStats:
    """What one simulator instance has seen since it started (or since `reset`)."""

    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    in_flight: int = 0
    last_headers: dict[str, str] = field(default_factory=dict)
    authorization_present: bool = False
    authorization_sha256: str | None = None
    last_body: Any = None

    def record(self, headers: Mapping[str, str] | None, body: Any) -> None:
        """Keep a request's headers (secrets redacted) and its parsed JSON body."""
        self.last_body = body
        if headers is None:
            return
        kept = {}
        auth: str | None = None
        for name, value in headers.items():
            lowered = name.lower()
            if lowered in _SECRET_HEADERS:
                kept[lowered] = "<redacted>"
                if auth is None:
                    auth = value
            else:
                kept[lowered] = value
        self.last_headers = kept
        self.authorization_present = auth is not None
        self.authorization_sha256 = key_fingerprint(auth) if auth is not None else None

    def reset(self) -> None:
        self.requests.clear()
        self.faults.clear()
        self.disconnects = 0
        self.last_headers = {}
        self.authorization_present = False
        self.authorization_sha256 = None
        self.last_body = None

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "faults": dict(self.faults),
            "disconnects": self.disconnects,
            "in_flight": self.in_flight,
            "last_headers": dict(self.last_headers),
            "authorization_present": self.authorization_present,
            "authorization_sha256": self.authorization_sha256,
            "last_body": self.last_body,
        }
