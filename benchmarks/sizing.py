"""Sizing a real hub on paper, from measurements: GPU-hours, wall time on N GPUs, registry size, `recommend` latency.

For the MLL benchmark's 49-model hub (the models marked ``mll49`` in the plugins' catalogues) and for a
1,000-model hub (the GFLOPs of the 49 repeated to 1,000 models), at the paper's scale (9,000 nodes x 75
images, every sample its own image: 675,000 images).

Measured in this run, on this machine's CPU (one thread):
- decoding and preprocessing one image: synthetic 500 x 375 JPEGs (about the ImageNet median) through
  open_clip's 224-px evaluation transform, what every labeling task does per image and model;
- ranking: the numpy work labeling does per chunk (similarities against 9,000 captions at width 768,
  node lists cut to the budget, own-node ranks: ``labeling.compute_part`` after the image tower);
- the image tower per image for the minizoo models and for open_clip ViT-B-32 and ViT-B-16 (random
  weights, nothing downloaded), to show the cost follows GFLOPs from 0.005 to 17 GFLOPs;
- registry bytes and `recommend` latency on a synthetic registry at the paper's scale (the builder of
  recommend_latency.py) with a few labels, extrapolated linearly in the number of models. Its labels
  are those of weak models (at most 20% of samples ranked first), so they fill the 64 MB budget as the
  shipped minizoo labels do at that scale: an upper bound on size and read time.
Assumed (inputs, with their source): the GPU's dense BF16 throughput and the share of it an image tower
reaches, and the CPU cores beside each GPU. GPU time per image = catalogue GFLOPs / (TFLOPS x
utilisation); catalogue GFLOPs count one image and one text (open_clip's convention) while labeling
runs the text tower once per caption, so this is an upper bound (the run prints the image tower's own
GFLOPs for ViT-B: 40-55% of the catalogue's).

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/sizing.py [--gpu-tflops 312 --utilisation 0.4 --cores-per-gpu 8 --gpus 8,64]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = sorted(ROOT.glob("plugins/*/mllzoo_*/catalog.json"))
CATALOGUES_BY_NAME = {path.parent.name.removeprefix("mllzoo_"): path for path in CATALOGUES}
from mllzoo.defaults import PAPER_NODES, PAPER_PER_NODE  # noqa: E402

PAPER_IMAGES = PAPER_NODES * PAPER_PER_NODE
CHUNK, DIM = 1024, 768


def timed(fn, repeats: int) -> float:
    """Seconds per call, best of ``repeats`` after one warm-up."""
    fn()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def decode_seconds(n: int = 32) -> float:
    """Open + RGB + open_clip's 224-px eval transform, per image."""
    from open_clip.transform import image_transform
    from PIL import Image

    from mllzoo.graph.images import open_rgb

    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp())
    for i in range(n):  # smooth colour fields with noise: photo-like JPEG sizes
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((500, 375), Image.BICUBIC)
        pixels = np.asarray(image, np.int16) + rng.integers(-12, 12, (375, 500, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"{i}.jpg", quality=90
        )
    transform = image_transform(224, is_train=False)
    paths = sorted(folder.glob("*.jpg"))
    return timed(lambda: [transform(open_rgb(p)) for p in paths], 2) / n


def ranking_seconds() -> float:
    """Per image: similarities against the captions, lists cut to the budget, own ranks, one chunk."""
    from mllzoo.graph.concept_graph import Graph, Node
    from mllzoo.labeling.compute import chunk_label

    rng = np.random.default_rng(0)
    nodes = [Node(i, "", "", "", "", "", 0, []) for i in range(PAPER_NODES)]
    samples = np.stack([rng.integers(0, PAPER_NODES, CHUNK), np.arange(CHUNK)], 1).astype(np.int32)
    graph = Graph("sizing", nodes, [""] * CHUNK, [""] * CHUNK, samples)
    features = rng.standard_normal((CHUNK, DIM)).astype(np.float32)
    text = rng.standard_normal((PAPER_NODES, DIM)).astype(np.float32)
    ok = np.arange(CHUNK)
    return timed(lambda: chunk_label(graph, features @ text.T, ok, 0, CHUNK, None), 2) / CHUNK


def tower_seconds() -> list[dict]:
    """Image tower seconds per image on this CPU, with its image-only GFLOPs (torch's FLOP counter)."""
    import open_clip
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mllzoo.models.catalog import discover_models
    from mllzoo.models.vlm import encode_images, load_model

    def image_gflops(encode, batch) -> float:
        with FlopCounterMode(display=False) as counter:
            encode(batch[:1])
        return counter.get_total_flops() / 1e9

    rows = []
    for entry in sorted(discover_models().values(), key=lambda e: e.spec.id):
        if entry.spec.family != "minizoo":
            continue
        model = load_model(entry.spec, "cpu")
        batch = torch.rand(64, 3, entry.spec.image_size, entry.spec.image_size)

        def encode(images, model=model):
            return encode_images(model, images)

        rows.append(
            {
                "model": entry.spec.id,
                "image_gflops": image_gflops(encode, batch),
                "catalogue_gflops": entry.spec.gflops,
                "seconds": timed(lambda: encode(batch), 2) / len(batch),
            }
        )
    catalogue = {
        e["arch"]: e["gflops"] for e in json.loads(CATALOGUES_BY_NAME["openclip"].read_text())
    }
    for arch, n in (("ViT-B-32", 16), ("ViT-B-16", 8)):
        model = open_clip.create_model(arch, pretrained=None).eval()
        batch = torch.rand(n, 3, 224, 224)
        with torch.inference_mode():
            rows.append(
                {
                    "model": f"open_clip/{arch} (random weights)",
                    "image_gflops": image_gflops(model.encode_image, batch),
                    "catalogue_gflops": catalogue[arch],
                    "seconds": timed(lambda: model.encode_image(batch), 1) / n,
                }
            )
    return rows


def hub_gflops() -> list[float]:
    """Catalogue GFLOPs of every model marked ``mll49``."""
    return [
        entry["gflops"]
        for path in CATALOGUES
        for entry in json.loads(path.read_text())
        if "mll49" in entry.get("hubs", [])
    ]


def registry_and_recommend(counts: tuple[int, int]) -> dict:
    """Bytes on disk of a paper-scale synthetic registry at two label counts, and `recommend` at the
    larger one split into its fixed part and the reading and replaying of each label."""
    from recommend_latency import add_labels, synthetic_graph, task_classes

    from mllzoo.selection.recommend import Selector, recommend
    from mllzoo.store.registry import Registry
    from mllzoo.selection.scoring import class_scores
    from mllzoo.text.embedders import get_embedder

    folder = Path(tempfile.mkdtemp())
    registry = Registry(folder / "paper-scale.db")
    graph = synthetic_graph(registry, PAPER_NODES, PAPER_PER_NODE)
    get_embedder("minilm").embed(["warm up"])
    rng = np.random.default_rng(0)
    sizes, have = [], 0
    for count in counts:
        add_labels(
            registry, graph, range(have, count), None, rng, quality=(0.0, 0.2), miss_rank=200
        )
        have = count
        registry.db.execute("pragma wal_checkpoint(truncate)")
        sizes.append((folder / "paper-scale.db").stat().st_size)
    rec = recommend(task_classes(), registry=registry)
    total = timed(lambda: recommend(task_classes(), registry=registry), 3)
    selector = Selector(registry)
    subset = np.unique(rec.selection.match.nodes)
    replay = timed(
        lambda: class_scores(selector.replay(selector.model_ids)(subset), rec.selection.match), 3
    )
    per_label = (sizes[1] - sizes[0]) / (counts[1] - counts[0])
    return {
        "counts": counts,
        "sizes": sizes,
        "label_bytes": per_label,
        "base_bytes": sizes[0] - counts[0] * per_label,
        "recommend": total,
        "recommend_per_model": replay / counts[1],
        "recommend_fixed": total - replay,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gpu-tflops",
        type=float,
        default=312.0,
        help="dense BF16 TFLOPS of one GPU [default: 312, NVIDIA A100's datasheet figure]",
    )
    parser.add_argument(
        "--utilisation",
        type=float,
        default=0.4,
        help="share of it an image tower reaches at batch 256 in BF16 [default: 0.4, assumed]",
    )
    parser.add_argument(
        "--cores-per-gpu",
        type=int,
        default=8,
        help="CPU cores beside each GPU, one labeling task each (--gpus-per-model 1/cores)",
    )
    parser.add_argument("--gpus", default="8,64", help="cluster sizes for the wall time")
    parser.add_argument("--sizes", default="2,6", help="two label counts of the synthetic registry")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    decode, rank = decode_seconds(), ranking_seconds()
    cpu_per_image = decode + rank
    print(
        f"measured per image on one CPU thread: decode + 224-px preprocess {decode * 1e3:.2f} ms, "
        f"ranking among {PAPER_NODES:,} nodes {rank * 1e3:.2f} ms"
    )
    print("\nimage tower on one CPU thread (measured):")
    print(
        "| model | image GFLOPs | catalogue GFLOPs | ms per image | GFLOP/s |\n| --- | --- | --- | --- | --- |"
    )
    for row in tower_seconds():
        print(
            f"| {row['model']} | {row['image_gflops']:.4f} | {row['catalogue_gflops']} | "
            f"{row['seconds'] * 1e3:.2f} | {row['image_gflops'] / row['seconds']:.1f} |"
        )
    sizes = tuple(int(n) for n in args.sizes.split(","))
    reg = registry_and_recommend(sizes)
    print(
        f"\nsynthetic paper-scale registry ({PAPER_NODES:,} nodes x {PAPER_PER_NODE} images, labels fitted "
        f"to the budget): "
        + ", ".join(f"{n} labels {b / 1e6:.0f} MB" for n, b in zip(reg["counts"], reg["sizes"]))
        + f"; recommend with {reg['counts'][1]} labels {reg['recommend']:.2f} s (best of 3)"
    )
    print(
        f"-> {reg['label_bytes'] / 1e6:.1f} MB per label on disk, {reg['base_bytes'] / 1e6:.0f} MB graph and "
        f"caption embeddings; recommend {reg['recommend_fixed']:.2f} s fixed (100 CIFAR-100 classes described, "
        f"embedded, matched) + {reg['recommend_per_model'] * 1e3:.0f} ms per label read and replayed"
    )

    gpu_flops = args.gpu_tflops * 1e3 * args.utilisation  # GFLOP/s
    gflops49 = hub_gflops()
    gpus = [int(n) for n in args.gpus.split(",")]
    print(
        f"\nassumed: {args.gpu_tflops:g} TFLOPS x {args.utilisation:g} utilisation = {gpu_flops / 1e3:.0f} "
        f"effective TFLOPS per GPU, {args.cores_per_gpu} CPU cores per GPU decoding and ranking "
        f"({args.cores_per_gpu / cpu_per_image:,.0f} images/s per GPU at most)"
    )
    print(
        f"\n| hub | models | images per model | GPU-hours (GPU compute alone) | "
        + " | ".join(f"wall on {n} GPUs" for n in gpus)
        + " | CPU-bound share | registry | recommend |"
    )
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in gpus) + " | --- | --- | --- |")
    for name, flops in (
        ("MLL paper (mll49)", gflops49),
        ("1,000 models", [gflops49[i % len(gflops49)] for i in range(1000)]),
    ):
        seconds, compute, cpu_bound = 0.0, 0.0, 0
        for g in flops:
            rate = min(args.cores_per_gpu / cpu_per_image, gpu_flops / g)  # images/s per GPU
            cpu_bound += rate < gpu_flops / g
            seconds += PAPER_IMAGES / rate
            compute += PAPER_IMAGES * g / gpu_flops
        hours = seconds / 3600
        walls = " | ".join(f"{hours / n:.1f} h" for n in gpus)
        size = reg["base_bytes"] + len(flops) * reg["label_bytes"]
        latency = reg["recommend_fixed"] + len(flops) * reg["recommend_per_model"]
        print(
            f"| {name} | {len(flops):,} | {PAPER_IMAGES:,} | {hours:,.0f} ({compute / 3600:,.0f}) | {walls} | "
            f"{cpu_bound / len(flops):.0%} | {size / 1e9:.1f} GB | {latency:.1f} s |"
        )


if __name__ == "__main__":
    main()
