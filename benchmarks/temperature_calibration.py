"""Reuse with each model's temperature calibrated on the graph's own samples, against CLIP's fixed one.

The paper's reuse scores classes at CLIP's logit scale (``mllzoo.reuse.ensemble.LOGIT_SCALE``, 100)
for every model, so the 1/entropy votes compare confidences that no one calibrated. This script fits, per model, the
logit scale that minimises the negative log-likelihood of each sample's own node among all graph
nodes (what labeling could store, from the images it already encodes), on a seeded subset of the
sample set; then runs every model once over the benchmark's tasks (:func:`mllzoo.evaluation.bench.measure`)
and scores every method and ablation three ways from those same outputs:

- ``fixed 100``: CLIP's logit scale, as the paper's reuse;
- ``fitted``: each model at its fitted scale;
- ``shared``: every model at the median of the fitted scales (is it the temperature, or comparability?),
  and at each scale of ``--scales``.

    NLTK_DATA=.nltk_data MLLZOO_LOAD_PLUGINS=mllzoo-plugin-minizoo .venv/bin/python \\
        benchmarks/temperature_calibration.py --registry registry.db --samples world/samples \\
        --tasks world/styles [--fit-samples 5000]

(`make world`, then `python -m mllzoo_minizoo.world.styles --world world`: docs/reuse-benchmark.md.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mllzoo.evaluation.bench import measure, score
from mllzoo.graph.concept_graph import load_graph
from mllzoo.graph.images import ImageCache
from mllzoo.models.catalog import discover_models
from mllzoo.models.vlm import CaptionFeatures, encode_images, load_model
from mllzoo.reuse.ensemble import LOGIT_SCALE
from mllzoo.store.registry import Registry

GRID = np.geomspace(2, 400, 61)  # logit scales tried; CLIP's 100 lies inside
SHOWN = ("mll", "mll_k3", "paper_k1", "paper_k3", "inb", "oracle_single", "all_models")
ABLATIONS = [
    f"{p}/score^{w}/scale100/k{k}"  # the scale in the name is overridden by each way below
    for p in ("descriptions", "concepts")
    for w in (0, 1)
    for k in (1, 2, 3)
]


def nll_per_scale(similarity: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Mean negative log-likelihood of each row's ``own`` column, at every scale of :data:`GRID`."""
    out = []
    for scale in GRID:
        logits = scale * similarity
        logits -= logits.max(axis=1, keepdims=True)
        log_total = np.log(np.exp(logits).sum(axis=1))
        out.append(float((log_total - logits[np.arange(len(own)), own]).mean()))
    return np.array(out)


def fit_scales(registry: Registry, samples: Path, fit_samples: int, seed: int) -> dict[str, float]:
    """Per labeled model, the :data:`GRID` scale with the least NLL on ``fit_samples`` seeded samples."""
    graph = load_graph(registry)
    rng = np.random.default_rng(seed)
    pairs = graph.samples[
        rng.choice(len(graph.samples), min(fit_samples, len(graph.samples)), replace=False)
    ]
    images = sorted(set(pairs[:, 1].tolist()))
    cache = ImageCache(
        samples,
        [graph.image_paths[i] for i in images],
        2 * 1024**3,
        [graph.image_hashes[i] for i in images],
    )
    row_of = {image: row for row, image in enumerate(images)}
    captions = CaptionFeatures(graph.captions)
    catalog = discover_models()
    labeled = sorted(registry.labeled_model_ids(graph.id))
    scales = {}
    for model_id in labeled:
        started = time.perf_counter()
        model = load_model(catalog[model_id].spec, "cpu", plugin=catalog[model_id].plugin)
        text = captions.of(model)
        tensor, ok = cache.chunk(model.preprocess_key, model.preprocess, 0, len(images))
        features = np.concatenate(
            [encode_images(model, tensor[s : s + 256]) for s in range(0, len(ok), 256)]
        )
        readable = {image: r for r, image in enumerate(ok)}
        keep = [i for i, image in enumerate(pairs[:, 1]) if row_of[image] in readable]
        similarity = features[[readable[row_of[pairs[i, 1]]] for i in keep]] @ text.T
        nll = nll_per_scale(similarity, pairs[keep, 0])
        scales[model_id] = float(GRID[nll.argmin()])
        at_fixed = nll[np.abs(GRID - 100).argmin()]
        print(
            f"{model_id:34s} fitted scale {scales[model_id]:6.1f}  NLL {nll.min():.3f} "
            f"(at 100: {at_fixed:.3f}, uniform: {np.log(len(graph.nodes)):.3f})  "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return scales


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry.db"))
    parser.add_argument("--samples", type=Path, default=Path("world/samples"))
    parser.add_argument("--tasks", type=Path, default=Path("world/styles"))
    parser.add_argument("--fit-samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scales", type=float, nargs="*", default=[], help="more shared scales")
    args = parser.parse_args()
    registry = Registry(args.registry)
    fitted = fit_scales(registry, args.samples, args.fit_samples, args.seed)
    shared = float(np.median(list(fitted.values())))
    measured = measure(registry, args.tasks, device="cpu")
    ways = {
        "fixed 100": score(measured, orders=0, scales=dict.fromkeys(fitted, LOGIT_SCALE)),
        "fitted": score(measured, orders=0, scales=fitted),
    }
    for scale in [shared, *args.scales]:
        ways[f"shared {scale:.3g}"] = score(measured, orders=0, scales=dict.fromkeys(fitted, scale))
    names = list(ways)
    print(
        f"\nmean accuracy over {len(measured.tasks)} tasks, {sum(len(t.images) for t in measured.tasks)} images"
    )
    print(f"{'method':30s}" + "".join(f"{n:>14s}" for n in names))
    for method in SHOWN:
        print(f"{method:30s}" + "".join(f"{ways[n]['average'][method]:14.3f}" for n in names))
    for ablation in ABLATIONS:
        print(
            f"{ablation:30s}"
            + "".join(f"{ways[n]['ablations'][ablation]['accuracy']:14.3f}" for n in names)
        )
    for n in names:
        print(
            f"{n}: mll - oracle_single {100 * ways[n]['targets']['mll_minus_oracle_single']:+.1f}, "
            f"mll_k3 - mll {100 * (ways[n]['average']['mll_k3'] - ways[n]['average']['mll']):+.1f} points"
        )


if __name__ == "__main__":
    main()
