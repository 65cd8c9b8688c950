"""A content classifier on sentence embeddings (the optional `semantic` extra): logistic
regression over all-MiniLM-L6-v2 vectors, with the same interface as the TF-IDF
`TextClassifier`, cached on disk the same way (polyroute.routing.classify.cache).

Choose it per content route with ``encoder: minilm``. It understands paraphrases the n-gram
model cannot ("book me a flight" vs "I need a plane ticket"), but MiniLM is an English
model: for Chinese text keep the default `tfidf` encoder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from polyroute.routing.classify.cache import FORMAT, cached_or_trained
from polyroute.routing.classify.minilm import SentenceEncoder, load_encoder, model_dir
from polyroute.routing.classify.tfidf import best_above_chance

Floats = NDArray[np.float32]
C_VALUE = 10.0
"""Inverse regularisation of the logistic regression (embeddings are unit vectors)."""


class EncoderClassifier:
    """Predicts a label and a confidence for a text from its sentence embedding."""

    def __init__(
        self, labels: Sequence[str], weights: Floats, bias: Floats, encoder: SentenceEncoder
    ) -> None:
        if weights.shape != (encoder.dimensions, len(labels)) or bias.shape != (len(labels),):
            raise ValueError("labels, weights and bias disagree")
        self.labels: tuple[str, ...] = tuple(labels)
        self._weights = np.ascontiguousarray(weights, dtype=np.float32)
        self._bias = bias.astype(np.float32)
        self._encoder = encoder
        self.from_cache = False

    @classmethod
    def train(
        cls, examples: Sequence[tuple[str, str]], encoder: SentenceEncoder
    ) -> EncoderClassifier:
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

        labels = sorted({label for _, label in examples})
        if len(labels) < 2:
            raise ValueError("a classifier needs examples of at least two labels")
        vectors = encoder.encode([text for text, _ in examples])
        model = LogisticRegression(C=C_VALUE, max_iter=2000)
        model.fit(vectors, [label for _, label in examples])
        coef = np.asarray(model.coef_, dtype=np.float32)
        intercept = np.asarray(model.intercept_, dtype=np.float32)
        if coef.shape[0] == 1:  # binary: softmax over (-z/2, z/2) is sigmoid(z)
            coef = np.stack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
        classes = [str(c) for c in model.classes_]
        return cls(classes, coef.T, intercept, encoder)

    def probabilities(self, text: str) -> Floats:
        vector = self._encoder.encode([text])[0]
        logits = vector @ self._weights + self._bias
        logits -= logits.max()
        exp = np.exp(logits)
        result: Floats = (exp / exp.sum()).astype(np.float32)
        return result

    def probabilities_many(self, texts: Sequence[str]) -> Floats:
        """Probabilities for many texts at once (encoded in batches)."""
        logits = self._encoder.encode(list(texts)) @ self._weights + self._bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: Floats = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return result

    def scores(self, text: str) -> dict[str, float]:
        return dict(zip(self.labels, self.probabilities(text).tolist(), strict=True))

    def predict(self, text: str) -> tuple[str, float]:
        """The most probable label and the confidence above chance, as TextClassifier."""
        return best_above_chance(self.labels, self.probabilities(text))

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        meta = json.dumps({"labels": list(self.labels)}).encode()
        return {
            "meta": np.frombuffer(meta, dtype=np.uint8),
            "weights": self._weights,
            "bias": self._bias,
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, NDArray[Any]], encoder: SentenceEncoder
    ) -> EncoderClassifier:
        meta = json.loads(arrays["meta"].tobytes())
        return cls(
            [str(label) for label in meta["labels"]],
            np.asarray(arrays["weights"], dtype=np.float32),
            np.asarray(arrays["bias"], dtype=np.float32),
            encoder,
        )


def load_or_train_semantic(
    examples: Sequence[tuple[str, str]], encoder_path: str | None = None
) -> EncoderClassifier:
    """The cached classifier for these examples and this model, else a freshly trained one."""
    directory = model_dir(encoder_path)
    encoder = load_encoder(encoder_path)
    digest = hashlib.sha256()
    model_files = {
        name: (directory / name).stat().st_size
        for name in ("config.json", "model.safetensors", "tokenizer.json")
    }
    header = {"format": FORMAT, "kind": "minilm", "C": C_VALUE, "model": model_files}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for text, label in examples:
        digest.update(json.dumps([text, label], ensure_ascii=False).encode())
        digest.update(b"\n")
    return cached_or_trained(
        digest.hexdigest(),
        lambda: EncoderClassifier.train(examples, encoder),
        lambda arrays: EncoderClassifier.from_arrays(arrays, encoder),
    )
