"""Semantic cache: answer a prompt with the cached answer to a prompt that means the same.

Only the latest user turn is compared: everything else in the request (system prompt,
earlier turns, parameters) must be identical, so it is folded into the bucket the prompt is
compared within, together with the route and the tenant. Within a bucket the nearest
cached prompt by cosine similarity is a hit when it scores at least `threshold` and passes
the near-miss guard: the same numbers, the same negations and the same names (capitalized
words, quoted strings, Latin tokens inside Chinese text). "Book 2 tickets to Paris" must not
be answered with the answer for "Book 3 tickets to Paris", nor "is X safe" with "is X not
safe", however similar their vectors are.

The built-in embedder (`local`) hashes character n-grams (3 to 5, within words) and word
unigrams and bigrams into 2,048 dimensions: no model, about 0.1 ms a prompt, good at
rewordings that keep most words and blind to paraphrases that share none (a real
embedding model, served as an `embedding` deployment, can be named instead).
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DIMENSIONS = 2048
Vector = npt.NDArray[np.float32]
Embed = Callable[[str], Awaitable[Vector | None]]

_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTES = "\"'\u201c\u201d\u2018\u2019\u300c\u300d\u300e\u300f"  # ASCII, curly, CJK corner
_QUOTED = re.compile(f"[{_QUOTES}]([^{_QUOTES}]{{1,80}})[{_QUOTES}]")
_CAPITALIZED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w-]+")
_LATIN_IN_CJK = re.compile(r"[A-Za-z][\w-]*")
_CJK = re.compile(r"[\u4e00-\u9fff]")
NEGATIONS = frozenset(
    {
        "not", "no", "never", "none", "nothing", "nobody", "nor", "neither", "without",
        "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent",
        "wont", "wouldnt", "shouldnt", "couldnt", "hasnt", "havent", "hadnt", "n't",
    }
)  # fmt: skip
CJK_NEGATIONS = ("不", "没", "无", "非", "别", "未", "勿", "莫")
_CJK_CHARS = re.compile(r"[\u4e00-\u9fff]")
CJK_FUNCTION_CHARS = frozenset("请帮我你您的了吗呢吧啊呀么能可以一下给是")
FUNCTION_WORDS = frozenset(
    {
        "a", "an", "the", "is", "are", "was", "were", "be", "been", "am", "do", "does", "did",
        "can", "could", "would", "will", "shall", "should", "may", "might", "must", "i", "me",
        "my", "you", "your", "we", "our", "it", "its", "this", "that", "these", "those", "to",
        "of", "in", "on", "for", "with", "at", "by", "from", "about", "as", "and", "or", "but",
        "so", "if", "then", "what", "whats", "which", "who", "how", "why", "when", "where",
        "please", "tell", "give", "show", "explain", "describe", "some", "any", "there", "here",
        "hi", "hello", "hey", "thanks", "thank", "just", "really", "very", "kindly", "let",
        "us", "know", "want", "need", "like", "get", "s", "d", "ll", "re", "ve", "m",
    }
)  # fmt: skip


def local_vector(text: str) -> Vector:
    """Hashed character n-grams and word uni/bigrams, L2-normalized."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    lowered = text.lower()
    words = _WORD.findall(lowered)
    features: list[str] = []
    for word in words:
        padded = f" {word} "
        for n in (3, 4, 5):
            features.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    features.extend(words)
    features.extend(f"{a} {b}" for a, b in itertools.pairwise(words))
    for feature in features:
        digest = zlib.crc32(feature.encode())
        vector[digest % DIMENSIONS] += 1.0 if digest & 0x80000000 else -1.0
    norm = float(np.linalg.norm(vector))
    if norm > 0:
        vector /= norm
    return vector


@dataclass(frozen=True, slots=True)
class Guard:
    """What two prompts must share to be answered alike: the same numbers, the same
    negations, the same content words in the same order (after dropping function words and
    plural/tense endings: "dog bites man" is not "man bites dog"), and each one's names
    (capitalized or quoted words, Latin words in Chinese text) present in the other."""

    numbers: tuple[str, ...]
    negations: tuple[str, ...]
    content: tuple[str, ...]
    names: frozenset[str]
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Guard:
        numbers = tuple(sorted(n.replace(",", "") for n in _NUMBER.findall(text)))
        words = [w.replace("'", "") for w in re.findall(r"[\w']+", text.lower())]
        negations = [w for w in words if w in NEGATIONS or w.endswith("nt")]
        negations += [c for c in text if c in CJK_NEGATIONS]
        names = {m.strip().lower() for m in _QUOTED.findall(text)}
        names |= {m.lower() for m in _CAPITALIZED.findall(text.strip())}
        if _CJK.search(text):
            names |= {m.lower() for m in _LATIN_IN_CJK.findall(text)}
            content = tuple(c for c in _CJK_CHARS.findall(text) if c not in CJK_FUNCTION_CHARS)
        else:
            content = tuple(_stem(w) for w in words if w not in FUNCTION_WORDS)
        return cls(numbers, tuple(sorted(negations)), content, frozenset(names), frozenset(words))

    def compatible(self, other: Guard) -> bool:
        return (
            self.numbers == other.numbers
            and self.negations == other.negations
            and self.content == other.content
            and self.names <= other.words | other.names
            and other.names <= self.words | self.names
        )


def _stem(word: str) -> str:
    for ending in ("ing", "ed", "es", "s"):
        if len(word) > len(ending) + 2 and word.endswith(ending):
            return word[: -len(ending)]
    return word


@dataclass(slots=True)
class Match:
    key: str
    similarity: float


class _Bucket:
    """The cached prompts of one (route, tenant, conversation context)."""

    __slots__ = ("guards", "keys", "matrix", "size")

    def __init__(self) -> None:
        self.matrix = np.zeros((8, DIMENSIONS), dtype=np.float32)
        self.keys: list[str] = []
        self.guards: list[Guard] = []
        self.size = 0

    def add(self, vector: Vector, key: str, guard: Guard, limit: int) -> None:
        if key in self.keys:
            return
        if self.size == limit:  # forget the oldest
            self.matrix[: self.size - 1] = self.matrix[1 : self.size]
            del self.keys[0], self.guards[0]
            self.size -= 1
        if self.size == len(self.matrix):
            grown = np.zeros((min(limit, 2 * len(self.matrix)), DIMENSIONS), dtype=np.float32)
            grown[: self.size] = self.matrix[: self.size]
            self.matrix = grown
        self.matrix[self.size] = vector
        self.keys.append(key)
        self.guards.append(guard)
        self.size += 1

    def nearest(self, vector: Vector, guard: Guard, threshold: float) -> Match | None:
        if self.size == 0:
            return None
        scores = self.matrix[: self.size] @ vector
        for index in np.argsort(-scores)[:4]:  # the best few: the best may fail the guard
            score = float(scores[index])
            if score < threshold:
                return None
            if self.guards[index].compatible(guard):
                return Match(self.keys[index], score)
        return None


class SemanticIndex:
    """Prompt vectors by bucket, bounded per bucket and in the number of buckets."""

    def __init__(
        self, threshold: float, max_entries: int, embed: Embed | None = None, buckets: int = 1024
    ) -> None:
        self.threshold = threshold
        self._max_entries = max_entries
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_buckets = buckets
        self._embed = embed

    async def vector(self, text: str) -> Vector | None:
        if self._embed is None:
            return local_vector(text)
        return await self._embed(text)

    async def find(self, bucket: str, text: str) -> Match | None:
        found = self._buckets.get(bucket)
        if found is None or not text.strip():
            return None
        vector = await self.vector(text)
        if vector is None:
            return None
        return found.nearest(vector, Guard.of(text), self.threshold)

    async def add(self, bucket: str, text: str, key: str) -> None:
        if not text.strip():
            return
        vector = await self.vector(text)
        if vector is None:
            return
        entries = self._buckets.get(bucket)
        if entries is None:
            entries = self._buckets[bucket] = _Bucket()
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(bucket)
        entries.add(vector, key, Guard.of(text), self._max_entries)
