"""The built-in text classifier: character n-gram TF-IDF and a multinomial logistic regression.

Why this model: character n-grams need no tokenizer and no download, so one model serves
Chinese (where a character bigram is roughly a word) and English (where n-grams inside
word boundaries catch stems and typos); ASCII word unigrams and bigrams are added because
English intents hinge on whole words ("balance", "freeze my card"). Logistic regression
gives probabilities, so the winning class's probability (rescaled above chance, see
`predict`) is a confidence that a route's `threshold` can cut, which a plain SVM margin
is not. Measured alternatives (bench/eval_content.py, CLINC150 and BELLE-eval-zh): a
LinearSVC is as accurate but has no probabilities; 1-5 or 2-5 n-grams, no word features,
or no class weights were each 0.5-3 points worse; C from 20 to 100 made no difference on
large sets, and C=100 separates in-scope from out-of-scope prompts better on the handful
of examples a hand-written route has.

Out-of-scope prompts: n-grams never seen in training still count in the vector's length
(at the idf of a feature seen once). A prompt made mostly of unseen n-grams therefore has
a short known part, its logits shrink toward the biases and its probabilities toward the
prior: low confidence, so the route's default serves it. (scikit-learn's transform drops
unseen n-grams before normalising, which makes a prompt of three familiar n-grams look
as certain as a paraphrase of a training example.)

Training uses scikit-learn; prediction does not. After training, the vocabulary, idf
weights and coefficients are kept as plain numpy arrays and the request path is a dict
lookup per n-gram plus one small matrix product (a few hundred microseconds), instead of
scikit-learn's per-call validation overhead. The same arrays are what the disk cache
stores, so a cached model loads without scikit-learn and without pickle.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32]

_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_WORD_MARK = "\x00"  # prefixes word features so they never collide with character n-grams


@dataclass(frozen=True, slots=True)
class Params:
    """Training parameters; part of the cache key, so changing one retrains."""

    ngram_min: int = 1
    ngram_max: int = 4
    words: bool = True
    c: float = 100.0
    class_weight: str | None = "balanced"
    max_features: int | None = 200_000
    max_iter: int = 500
    oov_norm: bool = True
    cjk_ngram_max: int = 2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_PARAMS = Params()


def features(text: str, params: Params = DEFAULT_PARAMS) -> list[str]:
    """The features of `text`: char n-grams within padded words, plus ASCII words and bigrams.

    Mirrors scikit-learn's ``analyzer="char_wb"``: each whitespace-separated token is padded
    with a space on both sides so n-grams at a word's edge differ from those inside it.
    Tokens with CJK characters stop at `cjk_ngram_max` (bigrams): a Chinese character
    bigram is already about a word, and longer n-grams of a run without spaces are mostly
    unique to one prompt (on BELLE-eval-zh, 1-2 grams beat 1-4 grams by 3 points).
    """
    text = text.lower()
    grams: list[str] = []
    low = params.ngram_min
    for token in text.split():
        padded = f" {token} "
        size = len(padded)
        high = params.cjk_ngram_max if _CJK.search(token) else params.ngram_max
        for n in range(low, min(high, size) + 1):
            grams.extend([padded[i : i + n] for i in range(size - n + 1)])

    if params.words:
        words = _WORD.findall(text)
        grams.extend([_WORD_MARK + word for word in words])
        grams.extend([f"{_WORD_MARK}{a} {b}" for a, b in itertools.pairwise(words)])
    return grams


class TextClassifier:
    """Predicts a label and a confidence for a text; built by `train` or from cached arrays."""

    def __init__(
        self,
        labels: Sequence[str],
        vocabulary: Mapping[str, int],
        *,
        idf: Floats,
        weights: Floats,
        bias: Floats,
        params: Params = DEFAULT_PARAMS,
    ) -> None:
        n_features, n_labels = weights.shape
        if len(labels) != n_labels or bias.shape != (n_labels,):
            raise ValueError("labels, weights and bias disagree on the number of labels")
        if idf.shape != (n_features,) or len(vocabulary) != n_features:
            raise ValueError("vocabulary, idf and weights disagree on the number of features")
        self.labels: tuple[str, ...] = tuple(labels)
        self.params = params
        self._vocabulary = dict(vocabulary)
        self._idf = idf
        self._weights = np.ascontiguousarray(weights)
        self._bias = bias
        self._oov_idf2 = float(idf.max()) ** 2 if n_features else 1.0
        self.from_cache = False

    @classmethod
    def train(
        cls, examples: Sequence[tuple[str, str]], params: Params = DEFAULT_PARAMS
    ) -> TextClassifier:
        """Fit on (text, label) pairs; needs at least two distinct labels."""
        from polyroute.routing.classify import _sklearn

        labels = sorted({label for _, label in examples})
        if len(labels) < 2:
            raise ValueError("a classifier needs examples of at least two labels")
        fitted = _sklearn.fit(
            [text for text, _ in examples],
            [label for _, label in examples],
            lambda text: features(text, params),
            params,
        )
        weights, bias = _as_softmax(fitted.coef, fitted.intercept)
        return cls(
            fitted.classes,
            fitted.vocabulary,
            idf=fitted.idf,
            weights=weights,
            bias=bias,
            params=params,
        )

    def probabilities(self, text: str) -> Floats:
        """Probability of each label (in `labels` order) for `text`."""
        vocabulary = self._vocabulary
        counted = Counter(features(text, self.params))
        found = [(vocabulary[g], c) for g, c in counted.items() if g in vocabulary]
        if found:
            ids = np.fromiter((i for i, _ in found), dtype=np.intp, count=len(found))
            tf = np.fromiter((c for _, c in found), dtype=np.float32, count=len(found))
            x = (np.log(tf) + 1.0) * self._idf[ids]
            squared = float(np.dot(x, x))
            if self.params.oov_norm and len(found) < len(counted):
                unseen = [math.log(c) + 1.0 for g, c in counted.items() if g not in vocabulary]
                squared += self._oov_idf2 * math.fsum(u * u for u in unseen)
            x /= math.sqrt(squared)
            logits: Floats = (x @ self._weights[ids] + self._bias).astype(np.float32)
        else:
            logits = self._bias.copy()
        logits -= logits.max()
        exp = np.exp(logits)
        result: Floats = exp / exp.sum()
        return result

    def scores(self, text: str) -> dict[str, float]:
        """Probability per label."""
        return dict(zip(self.labels, self.probabilities(text).tolist(), strict=True))

    def predict(self, text: str) -> tuple[str, float]:
        """The most probable label and the confidence in it, in [0, 1].

        The confidence is how far the winning probability stands above chance (1/k for k
        labels), scaled so that 0 is "no better than a guess" and 1 is certain. A raw
        probability cannot serve one threshold for every route: with two categories it
        never falls below 0.5, with a hundred it rarely rises above it.
        """
        return best_above_chance(self.labels, self.probabilities(text))

    # --- plain arrays, for the disk cache ---------------------------------------------------

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        vocabulary = sorted(self._vocabulary, key=self._vocabulary.__getitem__)
        meta = {"labels": list(self.labels), "params": self.params.as_dict()}
        return {
            "meta": _json_bytes(meta),
            "vocabulary": _json_bytes(vocabulary),
            "idf": self._idf,
            "weights": self._weights,
            "bias": self._bias,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]]) -> TextClassifier:
        """Rebuild from `to_arrays` output; ValueError/KeyError/TypeError if it is not one."""
        meta = json.loads(arrays["meta"].tobytes())
        vocabulary = json.loads(arrays["vocabulary"].tobytes())
        if not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
            raise ValueError("vocabulary is not a list of strings")
        return cls(
            [str(label) for label in meta["labels"]],
            {gram: index for index, gram in enumerate(vocabulary)},
            idf=np.asarray(arrays["idf"], dtype=np.float32),
            weights=np.asarray(arrays["weights"], dtype=np.float32),
            bias=np.asarray(arrays["bias"], dtype=np.float32),
            params=Params(**meta["params"]),
        )


def _as_softmax(coef: Floats, intercept: Floats) -> tuple[Floats, Floats]:
    """(features x labels) weights whose softmax gives the model's probabilities.

    A binary logistic regression has one row of coefficients for the second class;
    softmax over (-z/2, z/2) equals sigmoid(z), so both classes get half of it.
    """
    if coef.shape[0] == 1:
        half = coef[0] / 2.0
        weights = np.stack([-half, half], axis=1)
        bias = np.array([-intercept[0] / 2.0, intercept[0] / 2.0], dtype=np.float32)
        return weights.astype(np.float32), bias
    return np.ascontiguousarray(coef.T, dtype=np.float32), intercept.astype(np.float32)


def _json_bytes(value: object) -> NDArray[np.uint8]:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode(), dtype=np.uint8)


def best_above_chance(labels: Sequence[str], probabilities: NDArray[Any]) -> tuple[str, float]:
    """The most probable label and how far its probability stands above chance (1/k for
    k labels), scaled to [0, 1]: the confidence every text classifier reports."""
    best = int(probabilities.argmax())
    chance = 1.0 / len(labels)
    confidence = (float(probabilities[best]) - chance) / (1.0 - chance)
    return labels[best], min(1.0, max(0.0, confidence))
