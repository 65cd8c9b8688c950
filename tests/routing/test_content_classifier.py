"""The built-in classifier: training, prediction, the disk cache and labelled data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyroute.routing.classify import (
    TextClassifier,
    cache_key,
    load_labelled,
    load_or_train,
)

ENGLISH = [
    ("write a python function that sorts a list", "code"),
    ("fix this bug in my javascript code", "code"),
    ("how do I reverse a string in java", "code"),
    ("what does this SQL query return", "code"),
    ("book a flight from london to paris", "travel"),
    ("find me a hotel in tokyo for next week", "travel"),
    ("how much is a train ticket to berlin", "travel"),
    ("what documents do I need to travel to canada", "travel"),
]
CHINESE = [
    ("帮我写一个Python函数来排序列表", "code"),
    ("这段代码有什么错误", "code"),
    ("用Java实现二分查找", "code"),
    ("写一首关于秋天的诗", "poem"),
    ("以月亮为题写一首七言绝句", "poem"),
    ("请创作一首赞美春天的现代诗", "poem"),
]


def test_trains_and_predicts_english() -> None:
    """A few English examples per label are enough for clear prompts."""
    model = TextClassifier.train(ENGLISH)
    assert model.predict("please debug my python function")[0] == "code"
    assert model.predict("I need a cheap flight to rome")[0] == "travel"


def test_trains_and_predicts_chinese() -> None:
    """Character n-grams need no tokenizer: Chinese works the same way."""
    model = TextClassifier.train(CHINESE)
    assert model.predict("用Python写一个函数")[0] == "code"
    assert model.predict("写一首关于大海的诗")[0] == "poem"


def test_scores_are_probabilities() -> None:
    """scores() covers every label and sums to one; predict() rescales its maximum."""
    model = TextClassifier.train(ENGLISH)
    scores = model.scores("hotel near the station")
    assert set(scores) == {"code", "travel"}
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    label, confidence = model.predict("hotel near the station")
    assert scores[label] == max(scores.values())
    assert confidence == pytest.approx((scores[label] - 0.5) / 0.5, abs=1e-5)


def test_needs_two_labels() -> None:
    """One label is no classification problem."""
    with pytest.raises(ValueError, match="two labels"):
        TextClassifier.train([("a", "x"), ("b", "x")])


def test_second_load_comes_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same inputs, second time: loaded from disk, not trained, same predictions."""
    first = load_or_train(ENGLISH, directory=tmp_path)
    assert not first.from_cache
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_training(*_args: object, **_kwargs: object) -> TextClassifier:
        raise AssertionError("retrained despite a cached model")

    monkeypatch.setattr(TextClassifier, "train", no_training)
    second = load_or_train(ENGLISH, directory=tmp_path)
    assert second.from_cache
    text = "compile my rust program"
    assert second.scores(text) == pytest.approx(first.scores(text))


def test_changed_inputs_change_the_key() -> None:
    """Another example changes the cache key (so the model is retrained)."""
    assert cache_key(ENGLISH) != cache_key([*ENGLISH, ("rent a car in lisbon", "travel")])


@pytest.mark.parametrize("content", [b"not a zip file", b"PK\x03\x04 truncated"])
def test_corrupt_cache_is_ignored(tmp_path: Path, content: bytes) -> None:
    """A damaged cache file is retrained over, never trusted."""
    path = tmp_path / f"{cache_key(ENGLISH)}.npz"
    path.write_bytes(content)
    model = load_or_train(ENGLISH, directory=tmp_path)
    assert not model.from_cache
    assert load_or_train(ENGLISH, directory=tmp_path).from_cache


def test_foreign_cache_is_ignored(tmp_path: Path) -> None:
    """A valid model stored under another key's name is not loaded for this key."""
    load_or_train(CHINESE, directory=tmp_path)
    (foreign,) = tmp_path.glob("*.npz")
    foreign.rename(tmp_path / f"{cache_key(ENGLISH)}.npz")
    model = load_or_train(ENGLISH, directory=tmp_path)
    assert not model.from_cache
    assert model.predict("book a hotel in rome")[0] == "travel"


def test_data_file_formats(tmp_path: Path) -> None:
    """JSONL objects, JSON pairs and CSV with a header all load to (text, label) rows."""
    rows = [("hello, world", "greet"), ('say "bye"', "farewell")]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": lb}) for t, lb in rows) + "\n\n")
    pairs = tmp_path / "d.json"
    pairs.write_text(json.dumps([list(r) for r in rows]))
    csv = tmp_path / "d.csv"
    csv.write_text('text,label,source\n"hello, world",greet,x\n"say ""bye""",farewell,y\n')
    for path in (jsonl, pairs, csv):
        assert load_labelled(path) == rows


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.jsonl", '{"text": "a", "label": "b"}\n{oops\n', "line 2: invalid JSON"),
        ("x.jsonl", '{"text": "a"}\n', "must be strings"),
        ("x.json", '{"a": 1}', "JSON list"),
        ("x.csv", "prompt,intent\na,b\n", "'text' and 'label'"),
        ("x.txt", "a\tb\n", "unknown format"),
    ],
)
def test_bad_data_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    """Malformed files fail with the file and line named."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_labelled(path)


def test_missing_data_file(tmp_path: Path) -> None:
    """A file that is not there is a ValueError naming it."""
    with pytest.raises(ValueError, match=r"cannot read .*missing\.jsonl"):
        load_labelled(tmp_path / "missing.jsonl")
