"""Running the gateway: one worker on an event loop, or N workers sharing the port.

Workers are separate processes bound with SO_REUSEPORT, so the kernel spreads connections
across them; the parent only supervises and forwards SIGINT/SIGTERM. Shutdown is graceful:
the listener closes first, then in-flight requests get `shutdown_timeout` to finish.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from aiohttp import web

from polyroute.api.app import create_app
from polyroute.gateway import Gateway
from polyroute.observability.logs import configure_logging, current_sink
from polyroute.observability.multiprocess import prepare_multiprocess
from polyroute.runtime import run, wait_for_signal

Announce = Callable[[str], None]


async def start_site(
    app: web.Application, host: str, port: int, *, reuse_port: bool, shutdown_timeout: float
) -> tuple[web.AppRunner, int]:
    """Start serving `app`; returns the runner and the bound port (port 0 = any free port)."""
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


async def serve_gateway(
    gateway: Gateway, host: str, port: int, *, reuse_port: bool = False, announce: Announce = print
) -> None:
    """Serve until SIGINT/SIGTERM, then drain and close."""
    app = create_app(gateway)
    runner, bound = await start_site(
        app,
        host,
        port,
        reuse_port=reuse_port,
        shutdown_timeout=gateway.config.server.shutdown_timeout,
    )
    announce(f"polyroute listening on http://{host}:{bound}")
    sink = current_sink()
    if sink is not None:
        sink.drain_on_loop()
    try:
        await wait_for_signal()
    finally:
        await runner.cleanup()


YOUNG_GC_THRESHOLD = 20_000


def _worker(config_path: str, host: str, port: int, reuse_port: bool) -> None:
    gateway = Gateway.from_file(config_path)
    sink = configure_logging(gateway.config)  # JSON or text lines, secrets redacted
    # what loading built (config, routes, classifiers, imported libraries) lives as long as
    # the process: keep it out of the garbage collector's full scans, which otherwise grow
    # with it and stall the event loop under load
    gc.collect()
    gc.freeze()
    # a request's objects die by reference counting; the young generation's collections
    # only ever find the requests still in flight, and at the default threshold (700
    # allocations) they ran several times a request: 4 % of the full pipeline's
    # instructions (callgrind), 1.440 -> 1.401 M per request at 20,000
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        run(lambda: serve_gateway(gateway, host, port, reuse_port=reuse_port, announce=_stderr))
    finally:
        sink.close()


def serve(config_path: str | Path, host: str, port: int, workers: int = 1) -> int:
    """`polyroute serve`: the config must already have been validated by the caller."""
    if workers <= 1:
        _worker(str(config_path), host, port, reuse_port=False)
        return 0
    metrics_done = prepare_multiprocess()  # the workers' metrics meet in files
    try:
        return _supervise(config_path, host, port, workers, metrics_done)
    finally:
        metrics_done(None)


def _supervise(
    config_path: str | Path, host: str, port: int, workers: int, dead: Callable[[int], None]
) -> int:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(str(config_path), host, port, True), daemon=False)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                with suppress(ProcessLookupError):
                    process.terminate() if signum == signal.SIGTERM else _interrupt(process.pid)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for process in processes:
        process.join()
        if process.pid is not None:
            dead(process.pid)
    return max((process.exitcode or 0) for process in processes)


def _interrupt(pid: int) -> None:
    import os

    os.kill(pid, signal.SIGINT)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
