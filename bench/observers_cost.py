"""CPU per request of the observability observers (metrics, access log, request log).

    .venv/bin/python bench/observers_cost.py [--n 20000] [--repeat 5]

Builds realistic outcomes (a weighted route's decision, a ~1 KB chat prompt whose text
routing did not flatten, reported usage) and hands them to each observer alone. CPU is the
process's (time.process_time: the log writer thread's work included, since the lines are
written before the clock stops; the prepared outcomes are frozen out of the GC). Prints
the median and the minimum microseconds per request of `repeat` runs of `n` outcomes;
the metrics row also includes one scrape per run (amortised), the request log's row its
batched serialisation and file writes (the gateway does them on the event loop), and a
second process measures metrics in multiprocess mode (`serve --workers N`).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polyroute.config import parse_config
from polyroute.context import Caller, RequestContext
from polyroute.gateway import Gateway
from polyroute.kinds import EndpointKind
from polyroute.observability.access_log import AccessLog
from polyroute.observability.logs import LogSink, Redactor, config_secrets
from polyroute.observability.metrics import Metrics
from polyroute.observability.request_log import RequestLog
from polyroute.observability.settings import LogSettings, MetricsSettings, RequestLogSettings
from polyroute.outcomes import Outcome, Usage
from polyroute.usage import cost_of

CONFIG = """
records: {enabled: false}
observability: {logs: {access_log: false}, metrics: {enabled: false}}
models:
  - name: a
    base_url: http://127.0.0.1:9/v1
    api_key: sk-bench-secret-0123456789
    price: {input_per_mtok: 1, output_per_mtok: 2}
  - {name: b, base_url: "http://127.0.0.1:9/v1", price: {input_per_mtok: 5, output_per_mtok: 10}}
keys: [{id: bench, key: bench-client-key-0123456789, team: search}]
routes:
  chat: {strategy: weighted, targets: [{name: a, weight: 3}, b]}
"""
PROMPT = "Summarise the following paragraph in two sentences. " * 20  # ~1 KB


def outcomes(gateway: Gateway, n: int) -> list[Outcome]:
    made = []
    caller = Caller(key_id="bench", team="search")
    for index in range(n):
        body = {
            "model": "chat",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": f"{PROMPT} {index}"},
            ],
            "max_tokens": 256,
        }
        ctx = RequestContext(
            request_id=f"req_{index:024x}",
            kind=EndpointKind.CHAT,
            model="chat",
            body=body,
            caller=caller,
        )
        decision = gateway.router.decide(ctx)
        usage = Usage(260, 120)
        deployment = decision.plan[0]
        made.append(
            Outcome(
                ctx,
                decision,
                deployment,
                ok=True,
                status=200,
                latency=0.05 + (index % 7) * 0.01,
                attempts=1,
                usage=usage,
                cost=cost_of(deployment, usage),
            )
        )
    return made


def measure(
    name: str,
    make: Callable[[], tuple[Callable[[Outcome], None], Callable[[], None]]],
    gateway: Gateway,
    n: int,
    repeat: int,
) -> float:
    runs = []
    for _ in range(repeat):
        items = outcomes(gateway, n)
        observe, finish = make()
        gc.collect()
        gc.freeze()  # the prepared outcomes are not the observer's garbage to scan
        started = time.process_time()
        for item in items:
            observe(item)
        finish()
        runs.append((time.process_time() - started) / n * 1e6)
        gc.unfreeze()
    median = statistics.median(runs)
    spread = ", ".join(f"{r:.2f}" for r in runs)
    print(
        f"{name:<34} median {median:6.2f}  min {min(runs):6.2f} us/request  (runs: {spread})",
        flush=True,
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only-metrics", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = parse_config(CONFIG)
    gateway = Gateway.from_config(config)
    mode = "multiprocess" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "one process"

    def metrics() -> tuple[Callable[[Outcome], None], Callable[[], None]]:
        observer = Metrics(MetricsSettings())
        observer.bind(gateway)
        return observer.observe, lambda: observer.exposition() and None

    if args.only_metrics:
        measure(f"metrics ({mode}, + 1 scrape)", metrics, gateway, args.n, args.repeat)
        return
    print(f"{args.n} outcomes x {args.repeat} runs, python {sys.version.split()[0]}")
    measure("baseline (loop only)", lambda: (lambda o: None, lambda: None), gateway, args.n, 3)
    measure(f"metrics ({mode}, + 1 scrape)", metrics, gateway, args.n, args.repeat)
    redact = Redactor(config_secrets(config))

    def access_log(
        json: bool,
    ) -> Callable[[], tuple[Callable[[Outcome], None], Callable[[], None]]]:
        def make() -> tuple[Callable[[Outcome], None], Callable[[], None]]:
            devnull = open(os.devnull, "w")  # noqa: SIM115 - closed by finish
            sink = LogSink(devnull, redact, json=json, queue_size=1_000_000)
            sink.writer.start()
            observer = AccessLog(LogSettings(), sink)
            observer.logger.setLevel("INFO")

            def finish() -> None:
                sink.close(30)
                devnull.close()

            return observer.observe, finish

        return make

    measure("access log (JSON to /dev/null)", access_log(True), gateway, args.n, args.repeat)
    measure("access log (text to /dev/null)", access_log(False), gateway, args.n, args.repeat)
    folder = Path(tempfile.mkdtemp(prefix="polyroute-bench-"))

    def request_log() -> tuple[Callable[[Outcome], None], Callable[[], None]]:
        settings = RequestLogSettings(path="r.jsonl", queue_size=1_000_000, max_bytes=1 << 30)
        log = RequestLog(folder / f"r{time.monotonic_ns()}.jsonl", settings)

        def finish() -> None:  # what the loop's task does every flush_interval
            log.writer.close(30)

        return log.observe, finish

    measure("request log (JSONL file)", request_log, gateway, args.n, args.repeat)

    def everything() -> tuple[Callable[[Outcome], None], Callable[[], None]]:
        parts: list[tuple[Callable[[Outcome], None], Callable[[], None]]] = [
            metrics(),
            access_log(True)(),
            request_log(),
        ]

        def observe(outcome: Outcome) -> None:
            for part in parts:
                part[0](outcome)

        def finish() -> None:
            for part in parts:
                part[1]()

        return observe, finish

    measure("all three together", everything, gateway, args.n, args.repeat)
    with tempfile.TemporaryDirectory(prefix="polyroute-bench-mp-") as shared:
        env: dict[str, Any] = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": shared}
        command = [sys.executable, __file__, "--only-metrics", "--n", str(args.n)]
        subprocess.run([*command, "--repeat", str(args.repeat)], env=env, check=True)
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
