"""content: route by what a prompt is about, its language, or its sentiment.

A content route is a set of categories, each mapped to a target (a deployment or another
route), plus a `default` target for prompts that fit none::

    routes:
      assistant:
        strategy: content
        threshold: 0.5
        default: general
        categories:
          code: {target: coder, examples: ["write a python function", "fix this bug"]}
          chinese: {target: qwen, data: data/zh.jsonl, label: zh}
          travel: {target: general-small, examples: ["book a flight to Paris"]}

`encoder: minilm` (the optional `semantic` extra, see polyroute.routing.classify.minilm)
classifies sentence embeddings instead of character n-grams: better on English rewordings,
about 7 ms per decision instead of 0.2 ms, and no help for Chinese.

`signal` picks what decides the category:

- ``category`` (default): the built-in classifier (`polyroute.routing.classify`) trained
  at load on each category's `examples` and the rows of its `data` file whose label is
  `label` (default: the category's name). A prediction whose probability is below
  `threshold` is out of scope and goes to `default`.
- ``language``: categories are named by language code (``zh``, ``en``, ``ja``, …; see
  `polyroute.routing.signals.LANGUAGES`); a prompt in any other language goes to `default`.
- ``sentiment``: categories among ``negative``, ``neutral``, ``positive``; a score at or
  below ``-threshold`` is negative, at or above ``threshold`` positive, else neutral.

What is classified (`classify`): by default only the latest user turn (``last_user``),
because a conversation should be routed by what it asks *now*: a chat that started with
small talk and now asks for a SQL query needs the coder, and the system prompt (the same on
every request of an application) would drown the per-request signal. ``conversation``
classifies the whole flattened conversation instead, for applications whose topic is set
by earlier turns; it keeps the *last* `max_chars` characters (the most recent turns).
``last_user`` keeps the *first* `max_chars` of the turn (where a task is usually stated,
before any pasted document). Either way `max_chars` bounds the cost of a decision.

The decision is explained in the ranking's signals: the category, the classifier's
confidence and the threshold (or the language / sentiment score), what was classified,
and ``out_of_scope: true`` when `default` was chosen for lack of a matching category.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from polyroute.context import RequestContext
from polyroute.routing.classify import load_or_train
from polyroute.routing.classify.data import category_examples
from polyroute.routing.signals import LANGUAGES, detect_language, sentiment
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target

SENTIMENTS = ("negative", "neutral", "positive")
DEFAULT_THRESHOLD = {"category": 0.5, "sentiment": 0.3, "language": 0.0}


class CategorySpec(BaseModel):
    """One category: where its prompts go and what defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(description="deployment or route that serves this category")
    examples: list[str] = Field(default_factory=list, description="example prompts")
    data: str | None = Field(None, description="labelled data file (.jsonl, .json or .csv)")
    label: str | None = Field(None, description="the label to take from `data` (default: name)")


class ContentOptions(StrategyOptions):
    signal: Literal["category", "language", "sentiment"] = "category"
    categories: dict[str, CategorySpec] = Field(min_length=1)
    default: str = Field(description="target for out-of-scope or low-confidence prompts")
    threshold: float | None = Field(
        None, ge=0, le=1, description="category: 0.5 (confidence); sentiment: 0.3 (|score|)"
    )
    classify: Literal["last_user", "conversation"] = "last_user"
    encoder: Literal["tfidf", "minilm"] = Field(
        "tfidf", description="minilm: sentence embeddings (the `semantic` extra; English)"
    )
    encoder_path: str | None = Field(None, description="minilm model directory")
    max_chars: int = Field(2000, gt=0, description="longest text classified")

    @field_validator("categories")
    @classmethod
    def _fit_signal(cls, value: dict[str, CategorySpec], info: ValidationInfo) -> Any:
        signal = info.data.get("signal", "category")
        if signal == "category":
            if len(value) < 2:
                raise ValueError("the classifier needs at least two categories")
            empty = [name for name, spec in value.items() if not spec.examples and not spec.data]
            if empty:
                raise ValueError(f"categories {empty} need `examples` or a `data` file")
        elif signal == "language":
            unknown = sorted(set(value) - LANGUAGES)
            if unknown:
                raise ValueError(f"unknown language codes {unknown}; known: {sorted(LANGUAGES)}")
        else:
            unknown = sorted(set(value) - set(SENTIMENTS))
            if unknown:
                raise ValueError(f"sentiment categories must be among {list(SENTIMENTS)}")
        return value


class ContentStrategy(Strategy):
    name = "content"
    Options = ContentOptions

    def __init__(self, options: ContentOptions, resolve: Resolve) -> None:
        self._options = options
        self._signal = options.signal
        self._threshold = (
            options.threshold
            if options.threshold is not None
            else DEFAULT_THRESHOLD[options.signal]
        )
        self._by_category: dict[str, Target] = {
            name: resolve(spec.target, ("categories", name, "target"))
            for name, spec in options.categories.items()
        }
        self._default = resolve(options.default, ("default",))
        self._targets = list(dict.fromkeys([*self._by_category.values(), self._default]))
        self.classifier: Classifier | None = None
        if self._signal == "category":
            self.classifier = _classifier(options)

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        text = self._text(ctx)
        category, signals = self.decide(text)
        signals["classified"] = self._options.classify
        target = self._by_category.get(category) if category is not None else None
        if target is None:
            signals["out_of_scope"] = True
            target = self._default
        if target in candidates:
            return Ranking([target], signals)
        if self._default in candidates:
            signals["fell_back"] = "default"
            return Ranking([self._default], signals)
        return Ranking([], signals)

    def decide(self, text: str) -> tuple[str | None, dict[str, Any]]:
        """The category for `text` (None: out of scope) and the signals behind it."""
        if self._signal == "language":
            language = detect_language(text)
            return language, {"category": language, "language": language}
        if self._signal == "sentiment":
            score = sentiment(text)
            label = (
                "negative"
                if score <= -self._threshold
                else "positive"
                if score >= self._threshold
                else "neutral"
            )
            return label, {
                "category": label,
                "sentiment": round(score, 3),
                "threshold": self._threshold,
            }
        assert self.classifier is not None
        label, confidence = self.classifier.predict(text)
        signals: dict[str, Any] = {
            "category": label,
            "confidence": round(confidence, 3),
            "threshold": self._threshold,
        }
        return (label if confidence >= self._threshold else None), signals

    def _text(self, ctx: RequestContext) -> str:
        limit = self._options.max_chars
        if self._options.classify == "conversation":
            return ctx.text[-limit:]
        return ctx.last_user_text[:limit]


class Classifier(Protocol):
    """TextClassifier (tf-idf) or EncoderClassifier (minilm)."""

    labels: tuple[str, ...]
    from_cache: bool

    def predict(self, text: str) -> tuple[str, float]: ...


def _classifier(options: ContentOptions) -> Classifier:
    examples = _examples(options)
    if options.encoder == "tfidf":
        return load_or_train(examples)
    from polyroute.routing.classify.minilm import EncoderUnavailable
    from polyroute.routing.classify.semantic import load_or_train_semantic

    try:
        return load_or_train_semantic(examples, options.encoder_path)
    except EncoderUnavailable as exc:
        raise ValueError(f"encoder: {exc}") from None


def _examples(options: ContentOptions) -> list[tuple[str, str]]:
    return category_examples(options.categories)
