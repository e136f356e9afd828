"""Labeling throughput: decoding each sample image once per transform against once per model.

Both runs are mllzoo's own labeling of the same models on the same graph and device; the naive
run keeps no preprocessed images between models, so every model re-opens, re-decodes and
re-preprocesses every image (what the MLL reference code does). The world's samples are small 64 px
PNGs that decode fast; ``--jpeg 256`` re-encodes them as 256 px JPEGs, closer to the photos of the
paper's sample set, where decoding costs more.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/labeling_throughput.py [--samples world/samples] [--max-per-node 3] [--jpeg 256]

``--decode-workers 0,1,2`` measures instead whether decoding keeps the model busy: one small open_clip
ViT with random weights labels photo-sized JPEGs (500x375, written first) with each number of decoding
worker processes, against the model's own forward throughput on tensors already preprocessed, in the
same run. The labeling rate is the steady one, over the parts after the first (a long run's rate:
no model load, caption encoding or worker start in it), with the whole run's time beside it.

    NLTK_DATA=.nltk_data .venv/bin/python benchmarks/labeling_throughput.py --decode-workers 0,1,2 [--images-per-node 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import types
from pathlib import Path

from PIL import Image

from mllzoo.models.catalog import discover_models
from mllzoo.graph.concept_graph import build_graph, save_graph
from mllzoo.labeling.compute import LocalExecutor, PartDone
from mllzoo.labeling.driver import label_models
from mllzoo.store.registry import Registry
from mllzoo.models.vlm import LoadedModel, encode_images as encode, load_model


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
    parser.add_argument(
        "--decode-workers",
        help="comma-separated numbers of decoding workers to compare (e.g. 0,1,2) on photo-sized JPEGs",
    )
    parser.add_argument("--images-per-node", type=int, default=60)
    args = parser.parse_args()
    if args.decode_workers:
        decoding_throughput([int(w) for w in args.decode_workers.split(",")], args.images_per_node)
        return
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


PHOTO_SYNSETS = [  # WordNet synsets, one folder each (the graph adds their hypernyms)
    "dog.n.01", "cat.n.01", "horse.n.01", "car.n.01", "apple.n.01",
    "banana.n.02", "chair.n.01", "bird.n.01", "boat.n.01", "tree.n.01",
]  # fmt: skip
BENCH_FAMILY = "benchclip"
BENCH_ARCH = "bench-vit"  # a small ViT at 224 px: 4 layers of width 256 over 7x7 patches of 32 px
BENCH_CONFIG = {
    "embed_dim": 256,
    "vision_cfg": {"image_size": 224, "layers": 4, "width": 256, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 2},
}
BATCH = 32
CHUNK = 64  # images per part (fewer on a small run): the steady rate leaves the first part out


def photo_samples(root: Path, per_node: int) -> Path:
    """``per_node`` 500x375 JPEGs per synset folder: smooth colour fields with noise, about the size
    and decoding cost of ImageNet photos."""
    import numpy as np

    rng = np.random.default_rng(0)
    for synset in PHOTO_SYNSETS:
        folder = root / synset
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_node):
            base = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
                (500, 375), Image.BICUBIC
            )
            noise = rng.normal(0, 12, (375, 500, 3))
            pixels = np.clip(np.asarray(base, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", "JPEG", quality=90)
    return root


def bench_checkpoint(folder: Path) -> Path:
    """The benchmark architecture's config and seeded random weights, as a user's checkpoint."""
    import json

    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{BENCH_ARCH}.json").write_text(json.dumps(BENCH_CONFIG))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    torch.save(open_clip.create_model(BENCH_ARCH).state_dict(), folder / f"{BENCH_ARCH}.pt")
    return folder / f"{BENCH_ARCH}.pt"


def load(spec, device, dtype):
    """The benchmark family's model: open_clip's own code on the random checkpoint."""
    import open_clip

    open_clip.add_model_config(Path(spec.source).parent)
    model, _, preprocess = open_clip.create_model_and_transforms(
        BENCH_ARCH, pretrained=spec.source, weights_only=True
    )
    return LoadedModel(
        spec,
        model.eval(),
        preprocess,
        "bench224",
        open_clip.get_tokenizer(BENCH_ARCH),
        77,
        device,
        dtype,
    )


def encode_images(model, images):
    import torch

    with torch.inference_mode():
        return torch.nn.functional.normalize(model.module.encode_image(images), dim=-1).numpy()


def encode_texts(model, texts):
    import torch

    with torch.inference_mode():
        return torch.nn.functional.normalize(
            model.module.encode_text(model.tokenizer(texts)), dim=-1
        ).numpy()


def forward_rate(entry, graph, root: Path) -> float:
    """Images per second of the model alone: its encoder over the graph's images, preprocessed first."""
    import torch

    from mllzoo.graph.images import open_rgb

    model = load_model(entry.spec, "cpu")
    tensors = torch.stack([model.preprocess(open_rgb(root / rel)) for rel in graph.image_paths])
    encode(model, tensors[:BATCH])  # warm-up
    started = time.perf_counter()
    for s in range(0, len(tensors), BATCH):
        encode(model, tensors[s : s + BATCH])
    return len(tensors) / (time.perf_counter() - started)


class PartClock(LocalExecutor):
    """The local executor, noting when each part is done: the steady rate is the images of the parts
    after the first over the time they took (no model load, caption encoding or worker start in it)."""

    def run(self, *args, **kwargs):
        self.done: list[tuple[float, int]] = []
        for event in super().run(*args, **kwargs):
            if isinstance(event, PartDone):
                self.done.append((time.perf_counter(), event.stop - event.start))
            yield event

    def steady_rate(self) -> float:
        (first, _), *rest = self.done
        return sum(n for _, n in rest) / (rest[-1][0] - first) if rest else float("nan")


def decoding_throughput(worker_counts: list[int], per_node: int) -> None:
    """Labeling rate with each number of decoding workers against the model's forward rate."""
    import os

    from mllzoo.models.catalog import CatalogEntry
    from mllzoo.models.vlm import ModelSpec

    with tempfile.TemporaryDirectory() as tmp:
        root = photo_samples(Path(tmp) / "photos", per_node)
        spec = ModelSpec(family=BENCH_FAMILY, arch=BENCH_ARCH, tag="random", image_size=224,
                         source=str(bench_checkpoint(Path(tmp) / "weights")))  # fmt: skip
        entry = CatalogEntry(spec, "benchmark", None)
        graph = build_graph(root, max_per_node=per_node)
        n = len(graph.image_paths)
        print(
            f"{BENCH_ARCH} (open_clip ViT, 224 px, random weights), {n} images of 500x375 JPEG, "
            f"{len(graph.nodes)} nodes, batches of {BATCH}, CPU with {os.cpu_count()} cores"
        )
        before = forward_rate(entry, graph, root)
        runs = []
        for workers in worker_counts:
            clock = PartClock(decode_workers=workers)
            seconds, _ = timed_labeling(
                graph, root, [entry], Path(tmp), f"w{workers}", batch_size=BATCH,
                chunk=min(CHUNK, max(1, n // 4)),
                executor=clock,
            )  # fmt: skip
            runs.append((workers, clock.steady_rate(), seconds))
        after = forward_rate(entry, graph, root)  # again: a shared machine's speed drifts
        forward = (before + after) / 2
        print(
            f"model forward on ready tensors: {forward:.1f} images/s "
            f"(mean of {before:.1f} before and {after:.1f} after the labeling runs)"
        )
        for workers, steady, seconds in runs:
            print(
                f"labeling, {workers} decoding worker(s): {steady:.1f} images/s after the first part "
                f"({steady / forward:.0%} of forward); {seconds:.1f} s in all with model load, "
                f"captions and worker start ({n / seconds:.1f} images/s)"
            )


if __name__ == "__main__":
    from mllzoo.models.family import family_hooks
    from mllzoo.plugins import load_plugins, pm

    hooks = dict(zip(("mllzoo_load_model", "mllzoo_encode_images", "mllzoo_encode_texts"),
                     family_hooks(BENCH_FAMILY, "__main__")))  # fmt: skip
    load_plugins()
    pm.register(types.SimpleNamespace(**hooks), "benchmark")
    main()
