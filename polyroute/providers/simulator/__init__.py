"""Simulated OpenAI-compatible model servers: the upstream for demos, tests and benchmarks.

Every answer is marked as simulated; nothing here pretends to be a real model. The same
engine backs the HTTP server (`server.start_server`, `polyroute simulate`) and the
in-process `SimulatorProvider`.
"""

from polyroute.providers.simulator.engine import SimEngine
from polyroute.providers.simulator.faults import FAULT_KINDS, Fault, FaultSchedule
from polyroute.providers.simulator.profiles import (
    BUILTIN_PROFILES,
    Distribution,
    FaultRates,
    Price,
    SimProfile,
    load_profile,
)
from polyroute.providers.simulator.provider import SimulatorProvider
from polyroute.providers.simulator.server import SimServer, create_app, run, start_server
from polyroute.providers.simulator.stats import SimStats, key_fingerprint
from polyroute.providers.simulator.text import count_tokens

__all__ = [
    "BUILTIN_PROFILES",
    "FAULT_KINDS",
    "Distribution",
    "Fault",
    "FaultRates",
    "FaultSchedule",
    "Price",
    "SimEngine",
    "SimProfile",
    "SimServer",
    "SimStats",
    "SimulatorProvider",
    "count_tokens",
    "create_app",
    "key_fingerprint",
    "load_profile",
    "run",
    "start_server",
]
