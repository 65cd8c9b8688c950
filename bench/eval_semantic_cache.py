"""Semantic cache evaluation: hit rate on rewordings, false-hit rate on near misses.

Each pair is (cached prompt, new prompt). `same` pairs ask the same thing and should hit;
`near` pairs differ in a number, a negation, an entity, the word order, a key word or a
unit, and must not. The set is written for this evaluation (English and Chinese) and runs
through the real SemanticIndex (embedder + guard) at several thresholds.

    .venv/bin/python bench/eval_semantic_cache.py
"""

from __future__ import annotations

import asyncio
import statistics
import time

from polyroute.cache.semantic import Guard, SemanticIndex, local_vector

SAME: list[tuple[str, str, str]] = [
    # (kind of rewording, cached, new)
    ("case/punct", "What is the capital of France?", "what is the capital of france"),
    ("case/punct", "How do I reverse a list in Python?", "how do i reverse a list in python"),
    ("case/punct", "Explain quantum entanglement.", "Explain quantum entanglement!"),
    ("contraction", "What is the boiling point of water?", "What's the boiling point of water?"),
    ("contraction", "What is a monad in Haskell?", "whats a monad in Haskell"),
    ("function words", "How do I reset my password?", "How can I reset my password?"),
    ("function words", "Tell me a joke about cats", "Please tell me a joke about cats"),
    ("function words", "Explain how vaccines work", "Can you explain how vaccines work?"),
    ("function words", "Summarize the plot of Hamlet", "Please summarize the plot of Hamlet"),
    ("function words", "Write a haiku about autumn", "Could you write a haiku about autumn?"),
    ("function words", "Translate hello into Spanish", "Translate hello to Spanish please"),
    ("function words", "Give me a recipe for pancakes", "I need a recipe for pancakes"),
    ("inflection", "Write a poem about dogs", "Write a poem about dog"),
    ("inflection", "List the planets of the solar system", "List the planet of the solar system"),
    ("inflection", "How are neural networks trained?", "How is a neural network trained?"),
    ("whitespace", "Define  photosynthesis", "Define photosynthesis"),
    ("greeting", "Hi, what is the speed of light?", "What is the speed of light?"),
    ("greeting", "What is the speed of light? Thanks", "what is the speed of light"),
    ("zh particles", "请帮我写一首关于春天的诗", "帮我写一首关于春天的诗"),
    ("zh particles", "什么是机器学习\uff1f", "什么是机器学习"),
    ("zh particles", "你能解释一下量子力学吗", "解释一下量子力学"),
    ("zh particles", "请介绍北京的历史", "介绍一下北京的历史"),
    ("synonym", "How do I change my password?", "How do I update my password?"),
    ("synonym", "What is the capital of France?", "Which city is the capital of France?"),
    ("synonym", "Write a short story about a dragon", "Compose a brief tale about a dragon"),
    ("synonym", "How tall is Mount Everest?", "What is the height of Mount Everest?"),
    ("synonym", "推荐几本科幻小说", "介绍几本科幻小说"),
    ("reorder", "In Python, how do I sort a dict by value?",
     "How do I sort a dict by value in Python?"),
]  # fmt: skip

NEAR: list[tuple[str, str, str]] = [
    ("number", "Book 2 tickets to Paris", "Book 3 tickets to Paris"),
    ("number", "What is 17 times 23?", "What is 17 times 24?"),
    ("number", "Summarize the news from 2019", "Summarize the news from 2020"),
    ("number", "Convert 100 USD to euros", "Convert 1000 USD to euros"),
    ("number", "Give me 5 ideas for a party", "Give me 10 ideas for a party"),
    ("negation", "Is aspirin safe for children?", "Is aspirin not safe for children?"),
    ("negation", "Why do cats purr?", "Why don't cats purr?"),
    ("negation", "Write a review that recommends this phone",
     "Write a review that doesn't recommend this phone"),
    ("negation", "I want a vegetarian dish with cheese", "I want a vegetarian dish without cheese"),
    ("negation", "这个药对孕妇安全吗", "这个药对孕妇不安全吗"),
    ("entity", "What is the capital of France?", "What is the capital of Spain?"),
    ("entity", "Who wrote Hamlet?", "Who wrote Macbeth?"),
    ("entity", "Compare Python and Java", "Compare Python and Rust"),
    ("entity", "What is the population of Tokyo?", "What is the population of Osaka?"),
    ("entity", "Translate hello into Spanish", "Translate hello into German"),
    ("entity", "介绍一下北京的历史", "介绍一下上海的历史"),
    ("entity", "用Python写一个快速排序", "用Java写一个快速排序"),
    ("order", "Does a dog chase a cat?", "Does a cat chase a dog?"),
    ("order", "Convert Celsius to Fahrenheit", "Convert Fahrenheit to Celsius"),
    ("order", "Translate from English to French", "Translate from French to English"),
    ("key word", "How do I install numpy?", "How do I uninstall numpy?"),
    ("key word", "Write a poem about summer", "Write a poem about winter"),
    ("key word", "What are the benefits of running?", "What are the risks of running?"),
    ("key word", "How do I increase my credit score?", "How do I decrease my credit score?"),
    ("key word", "Explain the causes of World War I", "Explain the consequences of World War I"),
    ("key word", "写一首关于春天的诗", "写一首关于秋天的诗"),
    ("unit", "How many meters in a mile?", "How many feet in a mile?"),
    ("unit", "Convert 5 kilograms to pounds", "Convert 5 grams to pounds"),
    ("lowercase entity", "what is the capital of france", "what is the capital of spain"),
    ("lowercase entity", "who wrote hamlet", "who wrote macbeth"),
]  # fmt: skip

THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95)


async def hits(threshold: float, pairs: list[tuple[str, str, str]]) -> list[bool]:
    found = []
    for _, cached, new in pairs:
        index = SemanticIndex(threshold, max_entries=100)
        await index.add("bucket", cached, "key")
        found.append(await index.find("bucket", new) is not None)
    return found


def by_kind(pairs: list[tuple[str, str, str]], found: list[bool]) -> str:
    kinds: dict[str, list[bool]] = {}
    for (kind, _, _), hit in zip(pairs, found, strict=True):
        kinds.setdefault(kind, []).append(hit)
    return ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in kinds.items())


async def main() -> None:
    print(f"{len(SAME)} rewordings (should hit), {len(NEAR)} near misses (must not)\n")
    print("threshold  hit rate (rewordings)  false-hit rate (near misses)")
    for threshold in THRESHOLDS:
        same = await hits(threshold, SAME)
        near = await hits(threshold, NEAR)
        print(f"{threshold:>9}  {sum(same) / len(same):>21.1%}  {sum(near) / len(near):>28.1%}")
    default = 0.8
    same = await hits(default, SAME)
    near = await hits(default, NEAR)
    print(f"\nat threshold {default}:")
    print("  rewordings hit, by kind:", by_kind(SAME, same))
    print("  near misses hit, by kind:", by_kind(NEAR, near))
    unguarded = [float(local_vector(a) @ local_vector(b)) >= default for _, a, b in NEAR]
    print(f"  near misses above the threshold without the guard: {sum(unguarded)}/{len(NEAR)}")
    guard_blocks = sum(not Guard.of(a).compatible(Guard.of(b)) for _, a, b in NEAR)
    print(f"  near misses the guard alone refuses: {guard_blocks}/{len(NEAR)}")

    index = SemanticIndex(default, max_entries=2000)
    prompts = [f"{a} variant {i}" for i in range(2000) for _, a, _ in SAME[:1]]
    for i, prompt in enumerate(prompts):
        await index.add("bucket", prompt, f"k{i}")
    timings = []
    for _, _, new in SAME * 20:
        started = time.perf_counter()
        await index.find("bucket", new)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(
        f"\nlookup in a bucket of 2,000 entries: p50 {statistics.median(timings):.3f} ms, "
        f"p99 {p99:.3f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
