"""quality: a learned cost/quality router between a weak (cheap) and a strong (dear) target.

It predicts, from the prompt alone, whether the cheaper model suffices, and sends the
prompt to the strong model only when that is expected to pay::

    routes:
      smart:
        strategy: quality
        weak: mixtral            # deployment or route
        strong: gpt-4
        threshold: 0.1           # strong first when strong_gain >= threshold
        data: data/outcomes.jsonl     # {"prompt": ..., "weak_ok": true, "strong_ok": true}
        examples:                # and/or inline prompts
          weak: ["what is the capital of France"]
          strong: ["prove that there are infinitely many primes of the form 4k+3"]

At load the quality model (`polyroute.routing.classify.quality`) is trained on the rows of
`data` and the inline `examples` (``weak``: the weak model answers these well; ``strong``:
only the strong model does), or loaded from the classifier cache when the same rows were
trained on before. Per request it estimates P(weak ok) and P(strong ok) for the text and

    strong_gain = P(strong ok) - P(weak ok)

the expected gain in good answers from paying for the strong model. The convention is
RouteLLM's win-rate threshold: **the strong target is ranked first when strong_gain >=
threshold**, otherwise the weak one; the other is the fallback either way. Where the data
have no `strong_ok` labels the strong model is assumed right and strong_gain is P(weak model
fails), exactly RouteLLM's "strong needed" probability. A higher threshold means fewer
strong calls and lower quality; 0 sends every prompt the strong model is expected to answer
at least as well; ``bench/eval_quality.py`` prints the share of strong calls and the
accuracy at each threshold on held-out data.

What is classified (`classify`, `max_chars`) works as in the content strategy: the latest
user turn (its first `max_chars` characters) by default, or the end of the whole
conversation. Training texts are cut the same way, so they look like what is classified.

Signals: ``choice`` (``weak`` or ``strong``), ``strong_gain``, ``p_weak_ok``,
``p_strong_ok``, ``threshold`` and ``classified``; ``fell_back`` names the target used when
the chosen one was filtered out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from polyroute.context import RequestContext
from polyroute.routing.classify.quality import Estimate, Outcome, QualityModel, load_outcomes
from polyroute.routing.strategies.base import Ranking, Resolve, Strategy, StrategyOptions
from polyroute.routing.target import Target


class QualityExamples(BaseModel):
    """Inline training prompts for each side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weak: list[str] = Field(default_factory=list, description="the weak model answers these well")
    strong: list[str] = Field(default_factory=list, description="only the strong model does")


class QualityOptions(StrategyOptions):
    weak: str = Field(description="the cheaper deployment or route")
    strong: str = Field(description="the better, dearer deployment or route")
    threshold: float = Field(
        ge=0, le=1, description="strong first when the expected gain of the strong model >= this"
    )
    data: str | None = Field(
        None, description="labelled file: prompt, weak_ok[, strong_ok] (.jsonl, .json or .csv)"
    )
    examples: QualityExamples | None = None
    classify: Literal["last_user", "conversation"] = "last_user"
    max_chars: int = Field(2000, gt=0, description="longest text classified")

    @field_validator("strong")
    @classmethod
    def _differs(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("weak"):
            raise ValueError("`weak` and `strong` must be different targets")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        inline = self.examples is not None and (self.examples.weak or self.examples.strong)
        if self.data is None and not inline:
            raise ValueError("the quality model needs training data: a `data` file or `examples`")
        return self


class QualityStrategy(Strategy):
    name = "quality"
    Options = QualityOptions

    def __init__(self, options: QualityOptions, resolve: Resolve) -> None:
        self._options = options
        self._threshold = options.threshold
        self._weak = resolve(options.weak, ("weak",))
        self._strong = resolve(options.strong, ("strong",))
        self._targets = [self._weak, self._strong]
        rows = [Outcome(self.cut(row.text), row.weak_ok, row.strong_ok) for row in _rows(options)]
        try:
            self.model = QualityModel.load_or_train(rows)
        except ValueError as exc:
            raise ValueError(f"{'data' if options.data else 'examples'}: {exc}") from None

    @property
    def targets(self) -> Sequence[Target]:
        return self._targets

    @property
    def threshold(self) -> float:
        return self._threshold

    def cut(self, text: str) -> str:
        """`text` bounded as the route classifies it (first or last `max_chars`)."""
        limit = self._options.max_chars
        return text[-limit:] if self._options.classify == "conversation" else text[:limit]

    def estimate(self, text: str) -> Estimate:
        """The quality model's estimate for `text` (cut to `max_chars` first)."""
        return self.model.estimate(self.cut(text))

    def rank(self, ctx: RequestContext, candidates: Sequence[Target]) -> Ranking:
        text = ctx.text if self._options.classify == "conversation" else ctx.last_user_text
        estimate = self.estimate(text)
        gain = estimate.strong_gain
        strong = gain >= self._threshold
        order = [self._strong, self._weak] if strong else [self._weak, self._strong]
        ranked = [target for target in order if target in candidates]
        signals: dict[str, object] = {
            "choice": "strong" if strong else "weak",
            "strong_gain": round(gain, 4),
            "p_weak_ok": round(estimate.p_weak_ok, 4),
            "p_strong_ok": round(estimate.p_strong_ok, 4),
            "threshold": self._threshold,
            "classified": self._options.classify,
        }
        if ranked and ranked[0] is not order[0]:
            signals["fell_back"] = ranked[0].name
        return Ranking(ranked, signals)


def _rows(options: QualityOptions) -> list[Outcome]:
    rows: list[Outcome] = []
    if options.data is not None:
        try:
            rows.extend(load_outcomes(options.data))
        except ValueError as exc:
            raise ValueError(f"data: {exc}") from None
    if options.examples is not None:
        rows.extend(Outcome(text, weak_ok=True) for text in options.examples.weak)
        rows.extend(Outcome(text, weak_ok=False) for text in options.examples.strong)
    return rows
