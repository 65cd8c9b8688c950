"""The limits tests share the scale-out tests' Redis fixtures (one key prefix per test)."""

from __future__ import annotations

from tests.scaleout.conftest import Connect, connect

__all__ = ["Connect", "connect"]
