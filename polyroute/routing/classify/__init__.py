"""Text classification for content routes: a built-in model that needs no download.

`TextClassifier` (tfidf.py) is character n-gram TF-IDF with logistic regression, for
Chinese and English alike; `load_or_train` (cache.py) trains it at load or loads the copy
cached under a hash of its inputs; `load_labelled` (data.py) reads labelled example files.
"""

from polyroute.routing.classify.cache import cache_dir, cache_key, load_or_train
from polyroute.routing.classify.data import load_labelled
from polyroute.routing.classify.tfidf import DEFAULT_PARAMS, Params, TextClassifier

__all__ = [
    "DEFAULT_PARAMS",
    "Params",
    "TextClassifier",
    "cache_dir",
    "cache_key",
    "load_labelled",
    "load_or_train",
]
