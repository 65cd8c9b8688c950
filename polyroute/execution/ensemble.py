"""Ensemble execution: call every member of a fan-out decision at once, then aggregate.

Each member runs through the executor's ordinary single-deployment path (its own retries,
breaker, statistics and the request's deadline), with no fallbacks: the other members are
the fallback. Calls still running when the aggregate is known are cancelled (their
upstream connections closed). See polyroute.routing.strategies.ensemble for the
aggregators' meaning.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from polyroute.context import RequestContext
from polyroute.deployment import Deployment
from polyroute.errors import GatewayError, UpstreamBadResponse, UpstreamError
from polyroute.kinds import EndpointKind
from polyroute.outcomes import Usage
from polyroute.routing.decision import Decision, FanOut
from polyroute.usage import cost_of, estimate, usage_of

T = TypeVar("T")
RunOne = Callable[[RequestContext, Decision, dict[str, Any]], Coroutine[Any, Any, T]]

JUDGE_SYSTEM = (
    "You compare candidate answers to a user's request. Reply with only the number of the "
    "best answer: the most correct, complete and helpful one."
)
_TRAILING = " \t\n.!?\u3002\uff01\uff1f"  # with the full-width stop, ! and ?


@dataclass(slots=True)
class Answer:
    """One member's successful answer."""

    deployment: Deployment
    data: dict[str, Any]
    usage: Usage
    attempts: int

    def text(self, kind: EndpointKind) -> str:
        choices = self.data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""
        first = choices[0]
        if kind is EndpointKind.CHAT:
            message = first.get("message")
            content = message.get("content") if isinstance(message, dict) else None
        else:
            content = first.get("text")
        return content if isinstance(content, str) else ""


@dataclass(slots=True)
class Aggregate:
    """The ensemble's result: the answer to send and how it was reached."""

    winner: Answer
    data: dict[str, Any]
    usage: Usage
    cost: float
    summary: dict[str, Any] = field(default_factory=dict)


def member_decision(decision: Decision, member: Deployment) -> Decision:
    """A one-deployment plan for `member` with the request's limits and no fallbacks."""
    return Decision(
        route=decision.route,
        strategy=decision.strategy,
        plan=[member],
        path=decision.path,
        deadline=decision.deadline,
        max_retries=decision.max_retries,
        timeouts=decision.timeouts,
    )


async def gather_answers(
    run_one: RunOne[Any],
    ctx: RequestContext,
    decision: Decision,
    body: dict[str, Any],
) -> tuple[list[Answer], list[tuple[Deployment, GatewayError]]]:
    """Run the members; which answers are awaited depends on the aggregator."""
    plan = decision.fan_out
    assert plan is not None
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(run_one(ctx, member_decision(decision, member), body))
        for member in decision.plan
    ]
    members = dict(zip(tasks, decision.plan, strict=True))
    answers: list[Answer] = []
    failures: list[tuple[Deployment, GatewayError]] = []

    def take(task: asyncio.Task[Any]) -> None:
        error = task.exception()
        if error is None:
            done = task.result()
            used = usage_of(ctx.kind, done.data) or estimate(ctx)
            answers.append(Answer(done.deployment, done.data, used, done.attempts))
        elif isinstance(error, GatewayError):
            failures.append((members[task], error))
        else:
            raise error

    try:
        if plan.aggregator == "fastest":
            pending = set(tasks)
            while pending and len(answers) < 1:
                finished, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
                for task in _in_plan_order(tasks, finished):
                    take(task)
        elif plan.aggregator == "first_success":
            for task in tasks:  # in the listed order: a later answer waits for earlier ones
                await asyncio.wait([task])
                take(task)
                if answers:
                    break
        else:
            await asyncio.wait(tasks)
            for task in tasks:
                take(task)
    finally:
        await _cancel(tasks)
    return answers, failures


def _in_plan_order(tasks: list[asyncio.Task[Any]], done: set[asyncio.Task[Any]]) -> Iterable[Any]:
    return [task for task in tasks if task in done]


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    running = [task for task in tasks if not task.done()]
    for task in running:
        task.cancel()
    if running:
        await asyncio.gather(*running, return_exceptions=True)


def check_enough(
    decision: Decision, answers: list[Answer], failures: list[tuple[Deployment, GatewayError]]
) -> None:
    """Raise unless at least `min_success` members answered."""
    plan = decision.fan_out
    assert plan is not None
    needed = 1 if plan.aggregator in ("fastest", "first_success") else plan.min_success
    if len(answers) >= needed:
        return
    if not answers and len(failures) == 1:
        raise failures[0][1]
    failed = "; ".join(f"{d.name}: {e.message}" for d, e in failures)
    raise UpstreamBadResponse(
        f"ensemble: {len(answers)} of {len(decision.plan)} members answered, "
        f"{needed} needed ({failed})",
        code="ensemble_failed",
    )


def majority(
    kind: EndpointKind, answers: list[Answer], extract: str | None
) -> tuple[int, dict[str, int]]:
    """The index of the winning answer and the votes per normalized answer."""
    pattern = re.compile(extract) if extract else None
    keys: list[str | None] = []
    for answer in answers:
        text = answer.text(kind)
        if pattern is not None:
            found = pattern.search(text)
            group = found.group(1) if found else None
            text = group if isinstance(group, str) else ""
        normalized = " ".join(text.lower().split()).strip(_TRAILING)
        keys.append(normalized or None)
    votes: dict[str, int] = {}
    for key in keys:
        if key is not None:
            votes[key] = votes.get(key, 0) + 1
    if not votes:
        return 0, {}
    best = max(votes.values())
    winner = next(i for i, key in enumerate(keys) if key is not None and votes[key] == best)
    return winner, votes


def judge_request(ctx: RequestContext, kind: EndpointKind, answers: list[Answer]) -> dict[str, Any]:
    """The chat request that asks the judge to pick an answer by number."""
    parts = [f"Request:\n{ctx.last_user_text}\n"]
    for number, answer in enumerate(answers, start=1):
        parts.append(f"Answer {number}:\n{answer.text(kind)}\n")
    parts.append(f"Which answer is best? Reply with one number from 1 to {len(answers)}.")
    return {
        "messages": [
            {"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": "\n".join(parts)},
        ],
        "max_tokens": 8,
        "temperature": 0,
    }


def judged_index(reply: Answer, count: int) -> int | None:
    """The judge's pick (0-based), or None if its reply names no valid answer."""
    found = re.search(r"\d+", reply.text(EndpointKind.CHAT))
    if found is None:
        return None
    number = int(found.group())
    return number - 1 if 1 <= number <= count else None


def merged(answers: list[Answer]) -> dict[str, Any]:
    """Every member's choices as the choices of one response."""
    data = dict(answers[0].data)
    choices: list[Any] = []
    for answer in answers:
        for choice in answer.data.get("choices") or []:
            if isinstance(choice, dict):
                choices.append({**choice, "index": len(choices)})
    data["choices"] = choices
    return data


def with_usage(data: dict[str, Any], usage: Usage) -> dict[str, Any]:
    return {
        **data,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }


def total(answers: Iterable[Answer]) -> tuple[Usage, float]:
    """Summed usage and cost over `answers` (each at its own deployment's prices)."""
    used = list(answers)
    usage = Usage(
        prompt_tokens=sum(a.usage.prompt_tokens for a in used),
        completion_tokens=sum(a.usage.completion_tokens for a in used),
        cached_tokens=sum(a.usage.cached_tokens for a in used),
        images=sum(a.usage.images for a in used),
        estimated=any(a.usage.estimated for a in used),
    )
    return usage, sum(cost_of(a.deployment, a.usage) for a in used)


async def aggregate(
    run_one: RunOne[Any],
    ctx: RequestContext,
    decision: Decision,
    body: dict[str, Any],
) -> Aggregate:
    """Fan out, then aggregate by the decision's aggregator."""
    plan: FanOut | None = decision.fan_out
    assert plan is not None
    if body.get("stream"):  # members answer whole; the API layer streams the aggregate
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    answers, failures = await gather_answers(run_one, ctx, decision, body)
    check_enough(decision, answers, failures)
    summary: dict[str, Any] = {
        "aggregator": plan.aggregator,
        "answered": [a.deployment.name for a in answers],
        "failed": [d.name for d, _ in failures],
    }
    counted = list(answers)
    winner = 0
    data: dict[str, Any] | None = None
    if plan.aggregator == "majority":
        winner, votes = majority(ctx.kind, answers, plan.extract)
        summary["votes"] = max(votes.values()) if votes else 0
    elif plan.aggregator == "judge" and len(answers) > 1 and plan.judge is not None:
        pick = await _judge(run_one, ctx, decision, plan.judge, answers)
        if isinstance(pick, Answer):
            counted.append(pick)
            index = judged_index(pick, len(answers))
            summary["judge"] = "picked" if index is not None else "unclear"
            winner = index or 0
        else:
            summary["judge"] = "failed"
    elif plan.aggregator == "merge":
        data = merged(answers)
    usage, cost = total(counted)
    chosen = answers[winner]
    summary["winner"] = chosen.deployment.name
    return Aggregate(chosen, with_usage(data or chosen.data, usage), usage, cost, summary)


async def _judge(
    run_one: RunOne[Any],
    ctx: RequestContext,
    decision: Decision,
    judge: Deployment,
    answers: list[Answer],
) -> Answer | GatewayError:
    """The judge's reply; its failure is not the request's (the first answer stands)."""
    request = judge_request(ctx, ctx.kind, answers)
    judge_ctx = RequestContext(
        request_id=ctx.request_id,
        kind=EndpointKind.CHAT,
        model=judge.name,
        body=request,
        caller=ctx.caller,
    )
    try:
        done = await run_one(judge_ctx, member_decision(decision, judge), request)
    except UpstreamError as error:
        return error
    used = usage_of(EndpointKind.CHAT, done.data) or estimate(judge_ctx)
    return Answer(done.deployment, done.data, used, done.attempts)


def summary_header(summary: dict[str, Any], members: int) -> str:
    """The short form for the `x-polyroute-ensemble` header."""
    parts = [
        str(summary["aggregator"]),
        f"winner={summary['winner']}",
        f"answered={len(summary['answered'])}/{members}",
    ]
    if "votes" in summary:
        parts.append(f"votes={summary['votes']}")
    if "judge" in summary:
        parts.append(f"judge={summary['judge']}")
    return "; ".join(parts)


def dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data)


async def race(
    run_one: RunOne[T],
    ctx: RequestContext,
    decision: Decision,
    body: dict[str, Any],
    discard: Callable[[T], Awaitable[None]],
) -> T:
    """The first member to succeed (a stream: to produce its first chunk); the rest are
    cancelled, and a second success that arrived at the same moment is discarded."""
    tasks: list[asyncio.Task[T]] = [
        asyncio.create_task(run_one(ctx, member_decision(decision, member), body))
        for member in decision.plan
    ]
    failures: list[tuple[Deployment, GatewayError]] = []
    members = dict(zip(tasks, decision.plan, strict=True))
    try:
        pending = set(tasks)
        while pending:
            finished, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
            winner: list[T] = []
            for task in _in_plan_order(tasks, finished):
                error = task.exception()
                if error is None:
                    if winner:
                        await discard(task.result())
                    else:
                        winner.append(task.result())
                elif isinstance(error, GatewayError):
                    failures.append((members[task], error))
                else:
                    raise error
            if winner:
                return winner[0]
    finally:
        await _cancel(tasks)
    check_enough(decision, [], failures)
    raise AssertionError("unreachable: check_enough raises without answers")
