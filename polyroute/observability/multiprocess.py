"""Metrics across `serve --workers N`: prometheus-client's multiprocess mode, where each
worker writes its samples to files in one directory and a scrape of any worker sums them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The multiprocess directory of this process, or None (one process)."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess() -> Callable[[int | None], None]:
    """For a supervisor about to start workers: point PROMETHEUS_MULTIPROC_DIR at an empty
    directory (a new temporary one, or the one already set, emptied of old files).

    Returns `done(pid)`: with a pid, tells the metrics a worker died; with None, removes
    the temporary directory (when this function created it)."""
    path = multiprocess_dir()
    created = path is None
    if path is None:
        path = tempfile.mkdtemp(prefix="polyroute-metrics-")
        os.environ[MULTIPROC_ENV] = path
    else:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                with suppress(OSError):
                    os.remove(os.path.join(path, name))
    directory = path

    def done(pid: int | None) -> None:
        if pid is not None:
            from prometheus_client import multiprocess

            mark_dead: Any = multiprocess.mark_process_dead  # untyped upstream
            with suppress(OSError):
                mark_dead(pid, directory)
        elif created:
            shutil.rmtree(directory, ignore_errors=True)
            if os.environ.get(MULTIPROC_ENV) == directory:
                del os.environ[MULTIPROC_ENV]

    return done
