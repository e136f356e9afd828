"""Labeling throughput: decoding each sample image once per transform against once per model.

Both runs are mllzoo's own labeling of the same models on the same graph and device; the naive
run keeps no preprocessed images between models, so every model re-opens, re-decodes and
re-preprocesses every image (what the MLL reference code does). The world's samples are small 64 px
PNGs that decode fast; ``--jpeg 256`` re-encodes them as 256 px JPEGs, closer to the photos of the
paper's sample set, where decoding costs more.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/labeling_throughput.py [--samples world/samples] [--max-per-node 3] [--jpeg 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from mllzoo.models.catalog import discover_models
from mllzoo.graph.concept_graph import build_graph, save_graph
from mllzoo.labeling.driver import label_models
from mllzoo.store.registry import Registry
from mllzoo.models.vlm import load_model


def as_jpegs(graph, root: Path, target: Path, size: int) -> Path:
    """The graph's images re-encoded as ``size`` px JPEGs under the same relative paths."""
    for rel in graph.image_paths:
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(root / rel).convert("RGB").resize((size, size), Image.BICUBIC).save(
            out, "JPEG", quality=90
        )
    return target


def timed_labeling(graph, root: Path, entries, folder: Path, name: str, **kwargs):
    registry = Registry(folder / f"{name}.db")
    save_graph(registry, graph, str(root))
    started = time.perf_counter()
    report = label_models(registry, graph, root, entries, device="cpu", progress=False, **kwargs)
    assert len(report.labeled) == len(entries), report.failed
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=Path("world/samples"))
    parser.add_argument("--max-per-node", type=int, default=3)
    parser.add_argument("--family", default="minizoo")
    parser.add_argument(
        "--jpeg", type=int, help="re-encode the samples as JPEGs of this size first"
    )
    args = parser.parse_args()
    graph = build_graph(args.samples, max_per_node=args.max_per_node)
    entries = [e for e in discover_models().values() if e.spec.family == args.family]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.samples
        if (
            args.jpeg
        ):  # a graph of the JPEGs themselves: labeling checks every image against its hash
            root = as_jpegs(graph, args.samples, Path(tmp) / "jpeg", args.jpeg)
            graph = build_graph(root, max_per_node=args.max_per_node)
        style = f"{args.jpeg} px JPEG" if args.jpeg else "world PNG"
        print(
            f"{len(entries)} {args.family} models, {len(graph.nodes)} nodes, {len(graph.image_paths)} "
            f"images ({style}), CPU"
        )
        for entry in entries:  # warm-up: model code, weights and files in memory for both runs
            load_model(entry.spec, "cpu")
        for rel in graph.image_paths:
            (root / rel).read_bytes()
        naive, naive_report = timed_labeling(
            graph, root, entries, Path(tmp), "naive", cache_bytes=0
        )
        ours, report = timed_labeling(graph, root, entries, Path(tmp), "ours")
    total = len(entries) * len(graph.image_paths)
    print(
        f"decode once per model (naive): {naive:.1f} s, {total / naive:.0f} image-encodings/s, "
        f"{naive_report.image_decodes} decodes"
    )
    print(
        f"decode once per transform (mllzoo): {ours:.1f} s, {total / ours:.0f} image-encodings/s, "
        f"{report.image_decodes} decodes"
    )
    print(f"speed-up: {naive / ours:.2f}x")


if __name__ == "__main__":
    main()
