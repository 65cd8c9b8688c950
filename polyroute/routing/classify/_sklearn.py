"""The one place that touches scikit-learn (it has no type stubs): fit, then hand back arrays.

Imported only when a classifier is trained, so a gateway whose models all come from the
cache never imports scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from polyroute.routing.classify.tfidf import Params


@dataclass(frozen=True, slots=True)
class Fitted:
    classes: list[str]
    vocabulary: dict[str, int]
    idf: NDArray[np.float32]
    coef: NDArray[np.float32]
    intercept: NDArray[np.float32]


def fit(
    texts: Sequence[str],
    labels: Sequence[str],
    analyzer: Callable[[str], list[str]],
    params: Params,
) -> Fitted:
    """TF-IDF (sublinear tf, l2 norm) over `analyzer`'s features, then logistic regression."""
    vectorizer = TfidfVectorizer(
        analyzer=analyzer,
        sublinear_tf=True,
        max_features=params.max_features,
        dtype=np.float32,
    )
    matrix = vectorizer.fit_transform(list(texts))
    model = LogisticRegression(
        C=params.c, max_iter=params.max_iter, class_weight=params.class_weight
    )
    model.fit(matrix, list(labels))
    return Fitted(
        classes=[str(label) for label in model.classes_],
        vocabulary={str(gram): int(index) for gram, index in vectorizer.vocabulary_.items()},
        idf=np.asarray(vectorizer.idf_, dtype=np.float32),
        coef=np.asarray(model.coef_, dtype=np.float32),
        intercept=np.asarray(model.intercept_, dtype=np.float32),
    )
