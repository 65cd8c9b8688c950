"""Deterministic, similarity-preserving embeddings by feature hashing.

Character 3-grams and words of the text are hashed (signed) into the requested number of
dimensions and the vector is L2-normalized. Texts that share words and spellings share
features, so cosine similarity behaves sensibly: enough for semantic-cache and
content-routing tests without a real model.
"""

from __future__ import annotations

import base64
import math
import re
import sys
import zlib
from array import array
from functools import lru_cache

_WORD_RE = re.compile(r"\w+")
_WORD_WEIGHT = 2.0


@lru_cache(maxsize=1024)
def embed(text: str, dim: int, seed: int = 0) -> tuple[float, ...]:
    """The unit vector of `text` in `dim` dimensions (the zero vector for empty text)."""
    vec = [0.0] * dim
    start = seed & 0xFFFFFFFF
    lowered = " ".join(text.lower().split())
    padded = f" {lowered} "
    for i in range(len(padded) - 2):
        h = zlib.crc32(padded[i : i + 3].encode(), start)
        vec[h % dim] += 1.0 if h & 0x80000000 else -1.0
    for word in _WORD_RE.findall(lowered):
        h = zlib.crc32(b"w:" + word.encode(), start)
        vec[h % dim] += _WORD_WEIGHT if h & 0x80000000 else -_WORD_WEIGHT
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        return tuple(vec)
    return tuple(v / norm for v in vec)


def tokens_as_text(tokens: list[int]) -> str:
    """Token-id input (`list[int]`) as text, so it can be hashed like words."""
    return " ".join(f"t{t}" for t in tokens)


def to_base64(vec: tuple[float, ...]) -> str:
    """Little-endian float32 bytes, base64: what the openai SDK decodes by default."""
    arr = array("f", vec)
    if sys.byteorder != "little":
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")
