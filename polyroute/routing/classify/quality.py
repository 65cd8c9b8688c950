"""The quality model: from a prompt's text, how likely a weak and a strong model answer it well.

Trained on prompts labelled with whether the weak model's answer was good enough
(`weak_ok`) and, where known, whether the strong model's was (`strong_ok`). Each row is one
of four outcomes (both good, only the weak, only the strong, neither); the built-in text
classifier (`TextClassifier`: character n-gram and word TF-IDF, multinomial logistic
regression) learns P(outcome | prompt). From it:

- ``p_weak_ok`` = P(both) + P(weak only), ``p_strong_ok`` = P(both) + P(strong only);
- ``strong_gain`` = p_strong_ok - p_weak_ok = P(strong only) - P(weak only): the expected
  gain in the share of good answers from sending this prompt to the strong model. Where
  `strong_ok` is not given the strong model is taken to be right, and the gain is
  P(weak model fails): RouteLLM's "strong model needed" probability.

Why this model: 4-fold cross-validation by hash bucket within the train side of RouteLLM's
responses (Mixtral-8x7B vs GPT-4; ``bench/eval_quality.py --cv`` reruns it), APGR = share of
the weak-strong accuracy gap recovered, averaged over the sweep of strong-call shares. On
MMLU (11,173 prompts) ranking by the four-outcome model's gain scored 0.679, a binary
"strong needed" (weak wrong, strong right) classifier 0.648 and P(weak wrong) alone 0.588; on
GSM8K (1,039) 0.629, 0.626 and 0.597. Knowing both labels helps because a prompt that both
models fail gains nothing from the strong one. Exploratory runs on the same MMLU folds found
nothing clearly better: word TF-IDF features alone 0.677-0.679 (kept the built-in ones, which
also serve Chinese), scikit-learn's ``char_wb`` 2-5 grams 0.669, neighbour averaging of
outcomes (kNN, k 25-400) 0.64-0.67, a prior by the true MMLU subject 0.678 or by a predicted
one 0.663, blending either with the text model +0.005 at best, and prompt length +0.003 on
MMLU and +0.011 on GSM8K, well inside GSM8K's fold-to-fold spread in that run (0.60-0.68).

Regularisation: C = 3000 / n, clipped to [0.3, 100]: C 0.3 was best on the ~8-11k MMLU
training rows (1 and 3 were 0.002 and 0.014 worse), and scaling it by the number of rows
keeps the prior's weight per row the same, so a dozen hand-written examples are not shrunk
to the base rate (C 100, as the content classifier uses for hand-written categories); on
GSM8K's ~1k rows (C 2.9) C from 0.1 to 3 scored within 0.006 of each other. No
class weights: the outcome probabilities must stay calibrated for the gain to mean anything.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from polyroute.routing.classify.cache import load_or_train
from polyroute.routing.classify.tfidf import Params, TextClassifier

BOTH, WEAK_ONLY, STRONG_ONLY, NEITHER = "both", "weak_only", "strong_only", "neither"
C_ROWS = 3000.0
C_MIN, C_MAX = 0.3, 100.0
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class Outcome(NamedTuple):
    """One labelled prompt: did the weak (and the strong) model answer it well?"""

    text: str
    weak_ok: bool
    strong_ok: bool = True


@dataclass(frozen=True, slots=True)
class Estimate:
    """The model's view of one prompt."""

    p_weak_ok: float
    p_strong_ok: float

    @property
    def strong_gain(self) -> float:
        """Expected gain in good answers from the strong model (negative: the weak is better)."""
        return self.p_strong_ok - self.p_weak_ok


def outcome_label(weak_ok: bool, strong_ok: bool) -> str:
    if weak_ok:
        return BOTH if strong_ok else WEAK_ONLY
    return STRONG_ONLY if strong_ok else NEITHER


def params_for(rows: int) -> Params:
    """Training parameters for `rows` examples (see the module doc for C)."""
    c = min(C_MAX, max(C_MIN, C_ROWS / max(rows, 1)))
    return Params(c=round(c, 4), class_weight=None)


class QualityModel:
    """P(weak ok), P(strong ok) and the strong model's expected gain for a prompt."""

    def __init__(self, classifier: TextClassifier) -> None:
        self.classifier = classifier
        labels = classifier.labels
        self._weak = np.array([label in (BOTH, WEAK_ONLY) for label in labels], dtype=np.float32)
        self._strong = np.array(
            [label in (BOTH, STRONG_ONLY) for label in labels], dtype=np.float32
        )

    @classmethod
    def load_or_train(cls, rows: Sequence[Outcome], directory: Path | None = None) -> QualityModel:
        """Train on `rows` (or load the model cached for exactly these rows).

        ValueError if the rows do not show the weak model both succeeding and failing (or,
        with `strong_ok` labels, at least two different outcomes): there is nothing to learn.
        """
        examples = [(row.text, outcome_label(row.weak_ok, row.strong_ok)) for row in rows]
        if len({label for _, label in examples}) < 2:
            raise ValueError(
                "the training data need prompts the weak model answered well and prompts"
                " it did not (all rows have the same outcome)"
            )
        return cls(load_or_train(examples, params_for(len(examples)), directory))

    @property
    def from_cache(self) -> bool:
        return self.classifier.from_cache

    def estimate(self, text: str) -> Estimate:
        probabilities = self.classifier.probabilities(text)
        return Estimate(
            p_weak_ok=float(probabilities @ self._weak),
            p_strong_ok=float(probabilities @ self._strong),
        )


# --- labelled files -----------------------------------------------------------------------


def load_outcomes(path: str | Path) -> list[Outcome]:
    """Rows of a labelled file; ValueError naming the file (and line or item) on any problem.

    ``.jsonl`` (one object per line) or ``.json`` (a list of objects) with a string
    ``prompt`` (or ``text``), a boolean ``weak_ok`` and optionally ``strong_ok``; or
    ``.csv`` with a header naming those columns. Booleans may also be written 1/0,
    true/false or yes/no.
    """
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot read {str(path)!r}: {reason}") from None
    name = repr(str(path))
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(
            content.split("\n"), start=1
        ):  # not splitlines: JSON strings may hold U+2028
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{name} line {number}: invalid JSON ({exc.msg})") from None
            rows.append(_outcome(item, f"{name} line {number}"))
    elif suffix == ".json":
        try:
            items = json.loads(content)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
        if not isinstance(items, list):
            raise ValueError(f"{name}: expected a JSON list of objects")
        rows = [_outcome(item, f"{name} item {index}") for index, item in enumerate(items)]
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(content))
        fields = set(reader.fieldnames or ())
        if "weak_ok" not in fields or not fields & {"prompt", "text"}:
            raise ValueError(f"{name}: the header row must name 'prompt' (or 'text') and 'weak_ok'")
        rows = [_outcome(record, f"{name} line {reader.line_num}") for record in reader]
    else:
        raise ValueError(f"{name}: unknown format; use a .jsonl, .json or .csv file")
    if not rows:
        raise ValueError(f"{name}: no rows")
    return rows


def _outcome(item: object, where: str) -> Outcome:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object with 'prompt' and 'weak_ok'")
    text = item.get("prompt", item.get("text"))
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: 'prompt' (or 'text') must be a non-empty string")
    if item.get("weak_ok") in (None, ""):
        raise ValueError(f"{where}: 'weak_ok' is missing")
    weak_ok = _flag(item["weak_ok"], "weak_ok", where)
    strong = item.get("strong_ok")
    strong_ok = True if strong in (None, "") else _flag(strong, "strong_ok", where)
    return Outcome(text, weak_ok, strong_ok)


def _flag(value: object, field: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{where}: {field!r} must be true or false (or 1/0, yes/no), not {value!r}")
