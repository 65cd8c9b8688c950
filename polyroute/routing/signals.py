"""Cheap per-request text signals: the language a prompt is written in, and its sentiment.

Both run on every request that a rule or content route asks about, so both must cost well
under a millisecond and need nothing downloaded. Lexicons and patterns are built once, at
import; no call caches anything.

Language: writing systems first, words second. Counting characters by script (compiled
regexes, so the scan runs in C) settles every language with a script of its own: Han
without kana is ``zh``, kana is ``ja``, Hangul ``ko``, and so on. Alphabetic letters count a
quarter of a CJK character (a Han character carries about a word; four letters about the
same), so "用Python写一个排序" is Chinese and "translate 你好 to French" is English. Latin
text is told apart by its most frequent function words (a few dozen per language, the
idea behind every n-gram identifier, shrunk to what short prompts need). Latin text with
no function word at all is ``en`` when it is plain ASCII (code, identifiers, terse
commands) and ``unknown`` otherwise.

Sentiment: a score in [-1, 1]. English uses VADER (lexicon and rules ship in the
`vaderSentiment` package; it is the standard baseline for short informal text).
Chinese uses the same recipe as VADER over a compact built-in lexicon of common polar
words, with negators (不, 没有, …) flipping and damping the next polar word, degree
adverbs (非常, 有点, …) scaling it, a contrast word (但是, …) shifting weight to the
clause after it, and VADER's normalisation ``s / sqrt(s² + 15)``. A lexicon cannot read
irony, but it is transparent, needs no segmenter and costs tens of microseconds, which a
segmenter-based model (snownlp: milliseconds per prompt) does not. Other languages score 0.
"""

from __future__ import annotations

import math
import re
from typing import Final

from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    SentimentIntensityAnalyzer,
)

UNKNOWN: Final = "unknown"

# Scripts with a language (or a default language) of their own, and the weight of one
# character: CJK characters carry about a word each, alphabetic letters about a quarter.
_SCRIPTS: Final[tuple[tuple[str, re.Pattern[str], float], ...]] = (
    ("kana", re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"), 1.0),
    ("han", re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"), 1.0),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"), 1.0),
    ("cyrillic", re.compile(r"[\u0400-\u04ff]"), 0.25),
    ("arabic", re.compile(r"[\u0600-\u06ff\u0750-\u077f]"), 0.25),
    ("he", re.compile(r"[\u0590-\u05ff]"), 0.25),
    ("el", re.compile(r"[\u0370-\u03ff]"), 0.25),
    ("hi", re.compile(r"[\u0900-\u097f]"), 0.25),
    ("th", re.compile(r"[\u0e00-\u0e7f]"), 0.25),
    ("latin", re.compile(r"[A-Za-z\u00c0-\u024f]"), 0.25),
)
_CJK: Final = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN: Final = _SCRIPTS[-1][1]
_UKRAINIAN: Final = re.compile(r"[іїєґІЇЄҐ]")
_PERSIAN: Final = re.compile(r"[پچژگی]")
_LATIN_WORD: Final = re.compile(r"[a-z\u00c0-\u024f']+")
_NON_ASCII_LETTER: Final = re.compile(r"[\u00c0-\u024f]")

_STOPWORDS: Final[dict[str, frozenset[str]]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and is are was to of in that it for you with on this what how do can"
        " i my me be have not please a an why which your from will would should",
        "es": "el la los las y es en que de por para con una un del se no como qué"
        " está son mi su lo al pero más",
        "fr": "le la les et est en que de des pour avec une un du pas je vous il"
        " elle ce qui dans sur au mais sont",
        "de": "der die das und ist nicht ein eine ich du sie mit auf für zu den dem"
        " von wie was ist es sind aber",
        "it": "il lo la gli le e è di che per con una un non sono come della mi del questo ma più",
        "pt": "o a os as e é de que para com uma um não em do da por como meu você"
        " está são mas mais",
        "nl": "de het een en is van ik niet dat die te op voor met zijn je wat hoe maar ook",
    }.items()
}
LANGUAGES: Final = frozenset(
    {"zh", "ja", "ko", "ru", "uk", "ar", "fa", "he", "el", "hi", "th", *_STOPWORDS, UNKNOWN}
)
"""Every code `detect_language` can return."""


def detect_language(text: str) -> str:
    """The prompt's language as an ISO 639-1 code, or ``"unknown"``; see the module doc."""
    best, best_weight = "", 0.0
    counts: dict[str, int] = {}
    for name, pattern, weight in _SCRIPTS:
        count = len(pattern.findall(text))
        counts[name] = count
        if count * weight > best_weight:
            best, best_weight = name, count * weight
    if not best:
        return UNKNOWN
    if best in {"han", "kana"}:
        cjk = counts["han"] + counts["kana"]
        return "ja" if counts["kana"] >= 0.15 * cjk else "zh"
    if best == "cyrillic":
        return "uk" if _UKRAINIAN.search(text) else "ru"
    if best == "arabic":
        return "fa" if _PERSIAN.search(text) else "ar"
    if best == "latin":
        return _latin_language(text)
    return best


def _latin_language(text: str) -> str:
    words = _LATIN_WORD.findall(text.lower())
    best, hits = "", 0
    for lang, stopwords in _STOPWORDS.items():
        found = sum(1 for word in words if word in stopwords)
        if found > hits:
            best, hits = lang, found
    if best:
        return best
    return UNKNOWN if _NON_ASCII_LETTER.search(text) else "en"


# --- sentiment ---------------------------------------------------------------------------

_VADER: Final = SentimentIntensityAnalyzer()
_ALPHA: Final = 15.0  # VADER's normalisation constant
_NEGATION_SCALAR: Final = -0.74  # VADER's: "not good" is milder than "bad"

# Compact lexicon of common Chinese polar words; 3 = strong, 2 = ordinary, 1 = mild.
_ZH_WORDS: Final[dict[str, float]] = {
    word: float(score)
    for score, words in {
        3: "完美 太棒 棒极了 优秀 卓越 精彩 惊艳 极好 超赞 赞叹 热爱 感激 幸福 开心极了 出色",
        2: "好 棒 赞 喜欢 爱 满意 开心 高兴 快乐 愉快 感谢 谢谢 漂亮 美丽 不错 优质 厉害 成功"
        " 支持 推荐 放心 舒服 方便 实用 好用 清楚 专业 温暖 友好 贴心 有趣 可爱 顺利 欣赏"
        " 称赞 值得 划算 完善 稳定 高效 轻松 惊喜 期待 佩服 给力 靠谱 好吃 好看",
        1: "可以 还行 合理 正常 简单 快 准确 安全 希望 ok 清晰 及时",
        -1: "慢 贵 一般 麻烦 复杂 难 累 担心 失望 怀疑 奇怪 困惑 无聊 可惜 遗憾",
        -2: "差 坏 烂 糟 糟糕 讨厌 生气 难过 伤心 痛苦 害怕 后悔 抱怨 投诉 错误 故障 崩溃"
        " 卡顿 问题 缺陷 垃圾 骗 欺骗 坑 退款 退货 不满 愤怒 烦 烦人 恶心 丑 脏 吵 差劲"
        " 无语 离谱 不好用 没用 难用 难吃 难看 不行 失败 丢失 损坏 延迟 拖延 忽悠 敷衍",
        -3: "极差 太差 最差 糟透了 恨 气死 骗子 垃圾货 坑爹 绝望 崩溃了 恶劣 无耻",
    }.items()
    for word in words.split()
}


def _words(spaced: str) -> list[str]:
    return spaced.split()


_ZH_NEGATORS: Final = frozenset(
    _words("不 没 没有 别 未 无 非 不是 并不 从不 从没 毫不 不太 不怎么 不够")
)
_ZH_DEGREE: Final[dict[str, float]] = {
    **dict.fromkeys(_words("极其 极 非常 特别 十分 超级 超 太 相当 真 真是 真的"), 1.5),
    **dict.fromkeys(_words("格外 尤其 最 好好"), 1.5),
    **dict.fromkeys(_words("很 挺 蛮 更 越来越 那么 这么 如此"), 1.25),
    **dict.fromkeys(_words("有点 有些 稍微 略 比较 还算 一点"), 0.6),
}
_ZH_CONTRAST: Final = frozenset(_words("但 但是 可是 不过 然而 只是 却"))
_ZH_TOKEN: Final = re.compile(
    "|".join(
        sorted(
            (re.escape(w) for w in (*_ZH_WORDS, *_ZH_NEGATORS, *_ZH_DEGREE, *_ZH_CONTRAST)),
            key=len,
            reverse=True,
        )
    )
    + "|[\uff0c\u3002\uff01\uff1f\uff1b,.!?;\n]"  # clause ends: full-width and ASCII
)
_CLAUSE_END: Final = frozenset("\uff0c\u3002\uff01\uff1f\uff1b,.!?;\n")


def sentiment(text: str) -> float:
    """Polarity in [-1, 1] (negative .. positive); 0 when nothing polar is found."""
    cjk = len(_CJK.findall(text))  # as detect_language weighs scripts, in two passes
    if cjk and cjk >= 0.25 * len(_LATIN.findall(text)):
        return _chinese_sentiment(text)
    return float(_VADER.polarity_scores(text)["compound"])


def _chinese_sentiment(text: str) -> float:
    before = after = 0.0  # polar sums before and after the latest contrast word
    contrasted = False
    degree, negations = 1.0, 0
    for match in _ZH_TOKEN.finditer(text.lower()):
        token = match.group()
        if token in _CLAUSE_END:
            degree, negations = 1.0, 0
        elif token in _ZH_CONTRAST:  # VADER's "but" rule: the later clause counts more
            before, after, contrasted = (before + after) * 0.5, 0.0, True
            degree, negations = 1.0, 0
        elif token in _ZH_NEGATORS:
            negations += 1
        elif token in _ZH_DEGREE:
            degree *= _ZH_DEGREE[token]
        else:
            value = _ZH_WORDS[token] * degree
            after += value * _NEGATION_SCALAR if negations % 2 else value
            degree, negations = 1.0, 0
    total = before + (after * 1.5 if contrasted else after)
    if total == 0.0:
        return 0.0
    return max(-1.0, min(1.0, total / math.sqrt(total * total + _ALPHA)))
