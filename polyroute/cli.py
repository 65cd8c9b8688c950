"""The `polyroute` command: serve, demo, simulate, route, check, replay."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import orjson

from polyroute import __version__
from polyroute.config import ConfigError, load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"polyroute: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyroute", description="One OpenAI-compatible endpoint in front of many models."
    )
    parser.add_argument("--version", action="version", version=f"polyroute {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("-c", "--config", required=True, help="config YAML file")
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 4000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser("demo", help="simulated models + the gateway, ready to try")
    demo.add_argument("--port", type=int, default=4000, help="gateway port (default 4000)")
    demo.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    demo.add_argument(
        "--key", type=_api_key, help="require this API key (default: auth off, loopback only)"
    )
    demo.set_defaults(func=_demo)

    simulate = commands.add_parser("simulate", help="run one simulated model server")
    simulate.add_argument("--port", type=int, required=True)
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--profile", default="fast-chat", help="built-in name or YAML file")
    simulate.set_defaults(func=_simulate)

    route = commands.add_parser("route", help="print the routing decision for a prompt")
    route.add_argument("-c", "--config", required=True)
    route.add_argument(
        "--model", default="", help="route alias or deployment (default: default_route)"
    )
    route.add_argument(
        "--endpoint",
        choices=["chat", "completion", "embedding", "image"],
        default="chat",
        help="request kind (default chat)",
    )
    route.add_argument("--user", help="OpenAI `user` field")
    route.add_argument("prompt", help="the prompt text")
    route.set_defaults(func=_route)

    check = commands.add_parser("check", help="validate a config file")
    check.add_argument("-c", "--config", required=True)
    check.set_defaults(func=_check)

    from polyroute.replay.cli import add_parser as add_replay

    add_replay(commands)  # polyroute replay: offline re-routing of logged traffic
    return parser


def _api_key(value: str) -> str:
    if len(value) < 8 or any(c.isspace() for c in value):
        raise argparse.ArgumentTypeError("an API key needs 8+ characters and no spaces")
    return value


def _serve(args: argparse.Namespace) -> int:
    from polyroute.gateway import Gateway
    from polyroute.server import serve

    config = load_config(args.config)
    Gateway.from_config(config)  # fail now, with the field and line, not in each worker
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    if not config.auth_enabled and host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: no API keys configured and binding {host}: "
            "anyone who can reach it may use it",
            file=sys.stderr,
        )
    if args.workers > 1 and config.state.backend == "memory":
        print(
            f"warning: state.backend is memory: each of the {args.workers} workers keeps its "
            "own rate limits, budgets and breakers; use state.backend: redis to share them",
            file=sys.stderr,
        )
    return serve(args.config, host, port, workers=max(1, args.workers))


def _demo(args: argparse.Namespace) -> int:
    from polyroute.demo import run_demo

    return run_demo(host=args.host, port=args.port, key=args.key)


def _simulate(args: argparse.Namespace) -> int:
    from polyroute.providers.simulator.profiles import load_profile
    from polyroute.providers.simulator.server import run

    try:
        profile = load_profile(args.profile)
    except (ValueError, OSError) as exc:
        print(f"invalid profile {args.profile!r}: {exc}", file=sys.stderr)
        return 2
    run(profile, host=args.host, port=args.port)
    return 0


def _route(args: argparse.Namespace) -> int:
    from polyroute.context import RequestContext
    from polyroute.errors import GatewayError
    from polyroute.kinds import EndpointKind
    from polyroute.routing.build import build_router

    router = build_router(load_config(args.config))
    kind = EndpointKind(args.endpoint)
    body = _body_for(kind, args.prompt)
    if args.user:
        body["user"] = args.user
    ctx = RequestContext(request_id="cli", kind=kind, model=args.model, body=body)
    try:
        decision = router.decide(ctx)
    except GatewayError as exc:
        print(orjson.dumps(exc.body(), option=orjson.OPT_INDENT_2).decode())
        return 1
    explanation = {"kind": kind.value, "token_estimate": ctx.token_estimate, **decision.explain()}
    print(orjson.dumps(explanation, option=orjson.OPT_INDENT_2).decode())
    return 0


def _body_for(kind: object, prompt: str) -> dict[str, object]:
    from polyroute.kinds import EndpointKind

    if kind is EndpointKind.CHAT:
        return {"messages": [{"role": "user", "content": prompt}]}
    if kind is EndpointKind.EMBEDDING:
        return {"input": prompt}
    return {"prompt": prompt}


def _check(args: argparse.Namespace) -> int:
    from polyroute.gateway import Gateway

    gateway = Gateway.from_config(load_config(args.config))
    routes = [name for name in gateway.router.policies if name not in gateway.router.deployments]
    print(
        f"{args.config}: ok: {len(gateway.router.deployments)} deployments, "
        f"{len(routes)} routes ({', '.join(routes) or 'none'}), "
        f"auth {'on' if gateway.config.auth_enabled else 'off'}"
    )
    return 0
