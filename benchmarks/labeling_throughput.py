"""Labeling throughput: `mllzoo register`'s path against a naive loop that re-reads every image per model.

The naive loop is what the MLL reference code does: for every model, open, decode and preprocess
every sample image again, then encode it. mllzoo decodes each image once per distinct transform
and shares the tensors across models. Both run the same models on the same images and device.

    .venv/bin/python benchmarks/labeling_throughput.py [--samples world/samples] [--max-per-node 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mllzoo.catalog import discover_models
from mllzoo.graph import build_graph, save_graph
from mllzoo.images import open_rgb
from mllzoo.labeling import label_models
from mllzoo.registry import Registry
from mllzoo.vlm import encode_images, encode_texts, load_model


def naive(graph, root: Path, entries, batch_size: int) -> float:
    """Per model: re-open, re-decode, re-preprocess every image; then rank nodes per image."""
    import torch

    started = time.perf_counter()
    for entry in entries:
        model = load_model(entry.spec, "cpu")
        text = encode_texts(model, graph.captions)
        for start in range(0, len(graph.image_paths), batch_size):
            paths = graph.image_paths[start:start + batch_size]
            pixels = torch.stack([model.preprocess(open_rgb(root / p)) for p in paths])
            np.argsort(-(encode_images(model, pixels) @ text.T), axis=1)[:, :32]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=Path("world/samples"))
    parser.add_argument("--max-per-node", type=int, default=10)
    parser.add_argument("--family", default="minizoo")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    graph = build_graph(args.samples, max_per_node=args.max_per_node)
    entries = [e for e in discover_models().values() if e.spec.family == args.family]
    print(f"{len(entries)} {args.family} models, {len(graph.nodes)} nodes, {len(graph.image_paths)} images, CPU")
    with tempfile.TemporaryDirectory() as tmp:
        registry = Registry(Path(tmp) / "r.db")
        save_graph(registry, graph, str(args.samples))
        started = time.perf_counter()
        report = label_models(registry, graph, args.samples, entries, device="cpu", batch_size=args.batch_size,
                              progress=False)
        ours = time.perf_counter() - started
        assert len(report.labeled) == len(entries), report.failed
    baseline = naive(graph, args.samples, entries, args.batch_size)
    total = len(entries) * len(graph.image_paths)
    print(f"mllzoo register path: {ours:.1f} s, {total / ours:.0f} image-encodings/s")
    print(f"naive re-decode loop: {baseline:.1f} s, {total / baseline:.0f} image-encodings/s")
    print(f"speed-up: {baseline / ours:.2f}x")


if __name__ == "__main__":
    main()
