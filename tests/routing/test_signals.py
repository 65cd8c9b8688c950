"""Language detection and sentiment: clear cases in English and Chinese, and their cost."""

# ruff: noqa: RUF001 (test prompts are written in their own scripts and punctuation)

from __future__ import annotations

import time

import pytest

from polyroute.routing.signals import LANGUAGES, detect_language, sentiment


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How do I reverse a linked list in Python?", "en"),
        ("请帮我写一首关于春天的诗", "zh"),
        ("用Python写一个快速排序", "zh"),
        ("translate 你好 into French please", "en"),
        ("東京の天気はどうですか", "ja"),
        ("오늘 날씨가 어때요?", "ko"),
        ("Как дела у тебя сегодня?", "ru"),
        ("ما هو الطقس اليوم؟", "ar"),
        ("¿Dónde está la estación de tren más cercana?", "es"),
        ("Je voudrais réserver une table pour ce soir", "fr"),
        ("Ich möchte wissen, wie das Wetter morgen ist", "de"),
        ("def f(x): return x**2", "en"),
        ("12345 !!! ???", "unknown"),
        ("", "unknown"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    """Scripts settle non-Latin languages; function words tell Latin languages apart."""
    assert detect_language(text) == language
    assert language in LANGUAGES


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("I love this, it works great!", 1),
        ("This is terrible and I am very angry.", -1),
        ("The service was not good at all.", -1),
        ("What is the capital of France?", 0),
        ("这个产品非常好，我很喜欢", 1),
        ("太差了，我要投诉！", -1),
        ("质量不好", -1),
        ("没问题，谢谢", 1),
        ("虽然很便宜，但是质量很差", -1),
        ("请写一个排序函数", 0),
    ],
)
def test_sentiment_sign(text: str, sign: int) -> None:
    """English (VADER) and Chinese (lexicon with negation, degree and contrast) polarity."""
    score = sentiment(text)
    assert -1.0 <= score <= 1.0
    if sign == 0:
        assert abs(score) < 0.05
    else:
        assert score * sign > 0.2


def test_degree_and_negation_scale_chinese() -> None:
    """Degree adverbs strengthen, negation flips and damps a Chinese polar word."""
    assert sentiment("非常好") > sentiment("好") > 0 > sentiment("不好")
    assert abs(sentiment("不好")) < abs(sentiment("差"))


def test_signals_are_cheap() -> None:
    """Both signals cost well under a millisecond on a ~200-character prompt."""
    prompts = [
        "Could you please explain why my deployment keeps failing? It worked yesterday, "
        "but now every request times out and the logs are not helpful at all. " * 2,
        "我昨天买的耳机质量非常差，用了一天就坏了，客服也不回复，我很生气，希望尽快给我退款。" * 3,
    ]
    for text in prompts:
        detect_language(text), sentiment(text)  # warm up
        started = time.perf_counter()
        for _ in range(200):
            detect_language(text)
            sentiment(text)
        per_call_ms = (time.perf_counter() - started) / 200 * 1000
        assert per_call_ms < 2.0  # loose: CI machines are noisy; typical is ~0.1 ms
