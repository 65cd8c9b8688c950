"""Where the full pipeline's cost sits: the full configuration with one part taken out at a
time, each variant measured by `bench/instructions.sh` (or `bench/thread_cpu.sh`).

    .venv/bin/python bench/ablation.py [--mode sse|json] [--tool instructions|thread_cpu]
        [--only bare,norecords]

Variants of `bench/overhead-full.yaml` (written to a temporary folder): `full` itself;
`norecords` (records off); `noaccess` (no access log); `nometrics`; `nokeys` (no client key,
no rate limits); `single` (a `single` route instead of `rules`); `bare` (all of those);
`bare-nousage` (bare, and streams do not ask for the usage event). The reference proxy is
measured last. Counts compare within one run only. The build measured is the one
`POLYROUTE_VENV` names (see bench/lib.sh): `.venv-release` for the compiled build.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
FULL = BENCH / "overhead-full.yaml"
SINGLE = {"strategy": "single", "target": "mock"}
QUIET = {"logs": {"access_log": False}, "metrics": {"enabled": False}}


def variants(full: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each variant's configuration, by name."""

    def changed(**sections: Any) -> dict[str, Any]:
        config = copy.deepcopy(full)
        for name, value in sections.items():
            if value is None:
                config.pop(name, None)
            else:
                config[name] = value
        return config

    bare = {
        "models": copy.deepcopy(full["models"]),
        "routes": {"mock-gpt": SINGLE},
        "records": {"enabled": False},
        "observability": QUIET,
    }
    bare_nousage = copy.deepcopy(bare)
    bare_nousage["models"][0]["stream_usage"] = False
    return {
        "full": full,
        "norecords": changed(records={"enabled": False}),
        "noaccess": changed(observability={"logs": {"access_log": False}}),
        "nometrics": changed(observability={"metrics": {"enabled": False}}),
        "nokeys": changed(keys=None, limits=None),
        "single": changed(routes={"mock-gpt": SINGLE}),
        "bare": bare,
        "bare-nousage": bare_nousage,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("json", "sse"), default="sse")
    parser.add_argument("--tool", choices=("instructions", "thread_cpu"), default="instructions")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    args = parser.parse_args()
    configs = variants(yaml.safe_load(FULL.read_text()))
    wanted = [name for name in args.only.split(",") if name] or list(configs)
    script = BENCH / f"{args.tool}.sh"
    with tempfile.TemporaryDirectory(prefix="polyroute-ablation-") as folder:
        for name in [*wanted, "reference"]:
            if name == "reference":
                target = "reference"
            else:
                path = Path(folder) / f"{name}.yaml"
                path.write_text(yaml.safe_dump(configs[name]))
                target = str(path)
            result = subprocess.run(
                ["bash", str(script), target, args.mode],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = result.stdout.strip().splitlines() or result.stderr.strip().splitlines()
            print(f"== {name}", *lines[-6:], sep="\n", flush=True)


if __name__ == "__main__":
    main()
