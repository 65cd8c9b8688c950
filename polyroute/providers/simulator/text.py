"""Token counting and deterministic text generation for simulated models.

The tokenizer is deliberately simple (a CJK character is a token, other text splits on
whitespace and punctuation) but deterministic and cheap, so usage numbers are stable and
the gateway can estimate prompt sizes with the same function. Generated text is drawn from
small built-in word lists with a PRNG seeded by the request, so the same request and seed
always produce the same answer, and every answer says it is simulated.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+|[^\\w\\s]")
_PROMPT_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_'-]{2,19}")


def count_tokens(text: str) -> int:
    """The simulator's token count: one per CJK character, word, or punctuation mark."""
    return len(_TOKEN_RE.findall(text))


def is_mostly_cjk(text: str) -> bool:
    """Whether more than half of the text's tokens are CJK characters."""
    cjk = len(_CJK_RE.findall(text))
    return cjk > 0 and cjk * 2 > count_tokens(text)


_EN_TEXT = """
    the a of to and in is it that for on with as this by from at be are was an or which
    model answer request route token stream latency signal system value result data
    simulated gateway response output input context vector image prompt sample reply
    quick steady careful clear simple broad narrow useful plain random local remote
    first second next final early late small large fast slow bright quiet
    consider measure compare explain return choose follow build test check route
    question example detail summary number pattern reason method option feature
    network server client cache queue budget metric policy rule weight score label
    however therefore meanwhile also then often usually perhaps rather indeed
    river mountain garden window paper lantern harbor meadow orbit canvas signal
"""
_ZH_TEXT = """
    模拟 回答 模型 请求 路由 网关 延迟 数据 结果 问题 系统 文本 向量 图像 示例
    首先 然后 因此 但是 同时 可以 需要 通常 也许 我们 这个 一个 简单 清晰 快速
    稳定 重要 方法 选择 比较 解释 测试 检查 分数 规则 预算 缓存 队列 指标 策略
"""
_EN_WORDS: tuple[str, ...] = tuple(_EN_TEXT.split())
_EN_PIECES: tuple[str, ...] = tuple(" " + w for w in _EN_WORDS)
_ZH_PIECES: tuple[str, ...] = tuple(_ZH_TEXT.split())


def seed_digest(*parts: object) -> bytes:
    """A sha256 over the parts' reprs: the root of every deterministic choice."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.digest()


def rng_for(digest: bytes, index: int = 0) -> random.Random:
    """A PRNG for one choice of one request; `index` separates the `n` choices."""
    seed = int.from_bytes(digest[:16], "big") ^ index * 0x9E3779B97F4A7C15
    return random.Random(seed)


def prompt_words(text: str, limit: int = 64) -> list[str]:
    """Distinct words of the prompt that generated text may echo back."""
    seen: dict[str, None] = {}
    for word in _PROMPT_WORD_RE.findall(text[:4000]):
        seen.setdefault(word.lower(), None)
        if len(seen) >= limit:
            break
    return list(seen)


def generate_pieces(
    rng: random.Random,
    count: int,
    *,
    tag: str,
    chinese: bool,
    echo: Sequence[str] = (),
) -> list[str]:
    """`count` text pieces (tokens): the `[simulated <tag>]` marker, then words.

    Each piece is one token of `completion_tokens`; concatenated they form the text.
    """
    if count <= 0:
        return []
    pieces = [f"[simulated {tag}]"]
    sentence_left = 0
    rand = rng.random
    while len(pieces) < count:
        if chinese:
            piece = _ZH_PIECES[int(rand() * len(_ZH_PIECES))]
            sentence_left -= 1
            if sentence_left <= 0:
                sentence_left = 4 + int(rand() * 8)
                if len(pieces) > 1:
                    piece += "\u3002"  # a full-width stop
            elif rand() < 0.12:
                piece += "\uff0c"  # a full-width comma
        else:
            if echo and rand() < 0.15:
                piece = " " + echo[int(rand() * len(echo))]
            else:
                piece = _EN_PIECES[int(rand() * len(_EN_PIECES))]
            if sentence_left <= 0:
                sentence_left = 6 + int(rand() * 10)
                piece = " " + piece[1:].capitalize()
            sentence_left -= 1
            if sentence_left == 0:
                piece += "."
            elif rand() < 0.06:
                piece += ","
        pieces.append(piece)
    return pieces
