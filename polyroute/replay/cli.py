"""The `polyroute replay` command (registered by polyroute.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

DEFAULT_DATA_DIR = "../shared/data/routellm-evals"
EPILOG = """examples:
  polyroute replay -c gateway.yaml --log requests.jsonl --policy auto --policy cheap
  polyroute replay -c a.yaml -c b.yaml --log requests.jsonl.1 --log requests.jsonl --png out.png
  polyroute replay -c eval.yaml --dataset routellm:mmlu --map weak=mixtral --map strong=gpt-4 \\
      --policy router --png mmlu.png
"""


def add_parser(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="re-route logged traffic through policies, offline, and compare them",
        description="Re-decide every logged request (or every prompt of an evaluation set) "
        "with one or more policies, without calling any model, and report per policy "
        "the decisions, estimated cost, latency and quality (with IPS/SNIPS/DR "
        "off-policy estimates where the log has propensities).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument(
        "-c", "--config", action="append", required=True, help="config YAML (repeat to compare)"
    )
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--log", action="append", help="request log JSONL (observability.request_log); repeatable"
    )
    source.add_argument("--dataset", help="routellm:mmlu or routellm:gsm8k")
    replay.add_argument(
        "--policy",
        action="append",
        help="route (or deployment) to replay; repeatable (default: the logged routes, "
        "else default_route)",
    )
    replay.add_argument("--kind", choices=["chat", "completion", "embedding", "image"])
    replay.add_argument(
        "--reward",
        choices=["auto", "feedback", "success"],
        default="auto",
        help="log quality: feedback scores, or success (ok=1); auto: feedback if any",
    )
    replay.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help=f"routellm-evals folder ({DEFAULT_DATA_DIR})"
    )
    replay.add_argument("--split", choices=["test", "train", "all"], default="test")
    replay.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="weak|strong=DEPLOYMENT",
        help="which deployment is the data set's weak (Mixtral) and strong (GPT-4) model",
    )
    replay.add_argument(
        "--output-tokens",
        type=int,
        default=1,
        help="answer tokens for cost where the data set has no answers (MMLU: 1 letter)",
    )
    replay.add_argument("--limit", type=int, help="replay at most this many requests")
    replay.add_argument("--png", type=Path, help="write a cost-vs-quality chart here")
    replay.add_argument("--json", type=Path, help="write the report as JSON here")
    replay.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from polyroute.replay.engine import ReplayError
    from polyroute.replay.report import ChartUnavailable
    from polyroute.replay.sources import SourceError

    try:
        return _run(args)
    except (ReplayError, SourceError, ChartUnavailable) as exc:
        print(f"polyroute replay: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from polyroute.kinds import EndpointKind
    from polyroute.replay import dataset, engine, report, sources
    from polyroute.routing.build import build_router

    if args.limit is not None and args.limit < 1:
        raise engine.ReplayError("--limit must be at least 1")
    configs = engine.load_configs(args.config)
    first = configs[0][1]
    if args.log:
        contents = sources.read_logs([Path(p) for p in args.log])
        requests = contents.requests
        if args.kind:
            requests = [r for r in requests if r.kind is EndpointKind(args.kind)]
        if args.limit:
            requests = requests[: args.limit]
        names = args.policy or engine.default_policy_names(
            first, (r.model for r in requests if r.model)
        )
        policies = engine.build_policies(configs, names, build_router)
        result = engine.replay_log(
            requests, policies, reward=args.reward, source=", ".join(args.log)
        )
        if contents.skipped:
            result.notes.append(f"{contents.skipped} log lines were not request/feedback lines")
    else:
        family, _, name = args.dataset.partition(":")
        if family != "routellm" or not name:
            raise engine.ReplayError(
                f"unknown data set {args.dataset!r}; use routellm:mmlu or routellm:gsm8k"
            )
        items = sources.routellm(name, Path(args.data_dir), args.split)
        if args.limit:
            items = items[: args.limit]
        names = args.policy or engine.default_policy_names(first)
        policies = engine.build_policies(configs, names, build_router)
        mapping = _mapping(args.map, build_router(first))
        result = dataset.replay_dataset(
            items,
            policies,
            mapping,
            source=f"{args.dataset} ({args.split}, {len(items)} prompts)",
            output_tokens=args.output_tokens,
        )
    print(report.table(result))
    if args.json:
        args.json.write_bytes(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2))
    if args.png:
        path = report.chart(result, args.png)
        print(f"\nchart: {path}")
    return 0


def _mapping(pairs: list[str], router: Any) -> dict[str, Any]:
    from polyroute.replay.engine import ReplayError

    mapping = {}
    for pair in pairs:
        which, _, name = pair.partition("=")
        if which not in ("weak", "strong") or not name:
            raise ReplayError(f"--map {pair!r}: use weak=DEPLOYMENT or strong=DEPLOYMENT")
        deployment = router.deployments.get(name)
        if deployment is None:
            known = ", ".join(sorted(router.deployments))
            raise ReplayError(f"--map {pair!r}: no deployment {name!r} (deployments: {known})")
        mapping[which] = deployment
    missing = [w for w in ("weak", "strong") if w not in mapping]
    if missing:
        raise ReplayError(
            "a data set replay needs --map weak=DEPLOYMENT --map strong=DEPLOYMENT "
            f"(missing: {', '.join(missing)})"
        )
    return mapping
