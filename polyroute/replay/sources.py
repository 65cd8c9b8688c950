"""What replay reads: the gateway's request log (JSONL, see
polyroute.observability.request_log) or an evaluation set with per-model correctness
(RouteLLM's MMLU and GSM8K responses)."""

from __future__ import annotations

import csv
import hashlib
import json
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyroute.kinds import EndpointKind


class SourceError(Exception):
    """A log or data set that cannot be read (the message says why)."""


@dataclass(slots=True)
class LoggedRequest:
    """One request line of the log, with the feedback that arrived for it."""

    request_id: str
    kind: EndpointKind
    model: str | None
    context: dict[str, Any]
    route: str | None
    chosen: str | None
    propensity: float | None
    deployment: str | None
    ok: bool
    latency: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int
    images: int
    cost: float | None
    cache_hit: bool = False
    """Answered from the response cache: no routing happened."""
    feedback: list[float] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return sum(self.feedback) / len(self.feedback) if self.feedback else None


@dataclass(slots=True)
class LogContents:
    requests: list[LoggedRequest]
    skipped: int = 0
    """Lines that were not JSON or not a request/feedback line."""
    orphan_feedback: int = 0
    """Feedback for request ids no file held."""


def read_logs(paths: Sequence[Path]) -> LogContents:
    """Request lines (in file order) of `paths`, joined with their feedback lines."""
    requests: dict[str, LoggedRequest] = {}
    feedback: list[tuple[str, float]] = []
    skipped = 0
    for path in paths:
        for line in _lines(path):
            try:
                data = json.loads(line)
            except ValueError:
                skipped += 1
                continue
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "request":
                parsed = _request(data)
                if parsed is None:
                    skipped += 1
                else:
                    requests[parsed.request_id] = parsed
            elif kind == "feedback" and isinstance(data.get("score"), int | float):
                feedback.append((str(data.get("request_id")), float(data["score"])))
            else:
                skipped += 1
    orphans = 0
    for request_id, score in feedback:
        found = requests.get(request_id)
        if found is None:
            orphans += 1
        else:
            found.feedback.append(score)
    return LogContents(list(requests.values()), skipped, orphans)


def _lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.strip():
                    yield line
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, not a log file") from None
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None


def _request(data: dict[str, Any]) -> LoggedRequest | None:
    try:
        kind = EndpointKind(str(data.get("kind")))
    except ValueError:
        return None
    request_id = data.get("request_id")
    if not isinstance(request_id, str):
        return None
    context, decision, outcome = (
        _section(data, name) for name in ("context", "decision", "outcome")
    )
    latency = _number(outcome.get("latency_ms"))
    return LoggedRequest(
        request_id=request_id,
        kind=kind,
        model=_text(context.get("model")),
        context=context,
        route=_text(decision.get("route")),
        chosen=_text(decision.get("chosen")),
        propensity=_number(decision.get("propensity")),
        deployment=_text(outcome.get("deployment")),
        ok=outcome.get("ok") is True,
        latency=latency / 1000 if latency is not None else None,
        prompt_tokens=_integer(outcome.get("prompt_tokens")),
        completion_tokens=_integer(outcome.get("completion_tokens")),
        cached_tokens=_integer(outcome.get("cached_tokens")) or 0,
        images=_integer(outcome.get("images")) or 0,
        cost=_number(outcome.get("cost")),
        cache_hit=outcome.get("cache") == "hit",
    )


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- RouteLLM evaluation sets ----------------------------------------------------------------

WEAK_COLUMN = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_COLUMN = "gpt-4-1106-preview"
DATASETS = ("mmlu", "gsm8k")
SPLITS = ("test", "train", "all")


@dataclass(frozen=True, slots=True)
class EvalItem:
    """A prompt with whether each model answered it correctly (and how long its answer
    was, where the set has the answers)."""

    prompt: str
    correct: dict[str, bool]
    """weak / strong -> answered correctly."""
    output_tokens: dict[str, int] | None = None


def split_of(prompt: str) -> str:
    """The data set's split rule: sha256 of the NFC-normalised, stripped prompt; the first
    8 hex digits mod 10 below 2 is test."""
    text = unicodedata.normalize("NFC", prompt).strip().encode()
    bucket = int(hashlib.sha256(text).hexdigest()[:8], 16) % 10
    return "test" if bucket < 2 else "train"


def routellm(name: str, data_dir: Path, split: str = "test") -> list[EvalItem]:
    """The items of RouteLLM's `name` set (mmlu or gsm8k) in `data_dir`, contaminated
    prompts dropped, restricted to `split` (test, train or all)."""
    if name not in DATASETS:
        raise SourceError(
            f"unknown data set {name!r}; use routellm:{' or routellm:'.join(DATASETS)}"
        )
    if split not in SPLITS:
        raise SourceError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
    folder = data_dir / name
    if not folder.is_dir():
        raise SourceError(f"{folder}: not found (is --data-dir the routellm-evals folder?)")
    contaminated = _contaminated(folder / "contaminated_prompts.jsonl")
    if name == "mmlu":
        files = sorted((folder / "responses").glob("mmlu_*.csv"))
        if not files:
            raise SourceError(f"{folder / 'responses'}: no mmlu_*.csv files")
    else:
        files = [folder / "gsm8k_responses.csv"]
    from polyroute.context import estimate_tokens

    items: list[EvalItem] = []
    for path in files:
        for row in _csv_rows(path):
            prompt = row.get("prompt")
            if not prompt or prompt in contaminated:
                continue
            if split != "all" and split_of(prompt) != split:
                continue
            try:
                correct = {
                    "weak": _boolean(row[WEAK_COLUMN]),
                    "strong": _boolean(row[STRONG_COLUMN]),
                }
            except (KeyError, ValueError) as exc:
                raise SourceError(f"{path}: unexpected columns or values ({exc})") from None
            output = None
            weak_answer = row.get(f"{WEAK_COLUMN}_response")
            strong_answer = row.get(f"{STRONG_COLUMN}_response")
            if weak_answer is not None and strong_answer is not None:
                output = {
                    "weak": estimate_tokens(weak_answer),
                    "strong": estimate_tokens(strong_answer),
                }
            items.append(EvalItem(prompt, correct, output))
    return items


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as file:
            yield from csv.DictReader(file)
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None


def _contaminated(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    prompts = set()
    for line in _lines(path):
        prompt = json.loads(line).get("eval_prompt")
        if isinstance(prompt, str):
            prompts.add(prompt)
    return prompts


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")
