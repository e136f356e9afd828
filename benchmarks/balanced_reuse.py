"""Balanced reuse (``predict --balanced``) on batches whose classes are equal in number, and on those
whose classes are not.

Balancing rescales each model's probabilities over the batch until every class gets an equal share
(:func:`mllzoo.reuse.ensemble.balance_classes`). It assumes the classes are about equally present.
This script runs every model once over the benchmark's tasks (:func:`mllzoo.evaluation.bench.measure`),
then scores ``mll``, ``mll_balanced`` and the best single model in hindsight, plain and balanced,
on subsets of each task's images drawn with a fixed seed (a subset with fewer images than classes,
which ``predict --balanced`` refuses, is scored unbalanced in the balanced columns too; the table
counts the tasks balanced):

- ``every image``: the task as built (its classes about equal in number);
- ``half the classes at 25%``: the first half of the classes keep every image, the rest a quarter;
- ``one class is 80%``: the first class keeps every image, the others share a quarter of its count;
- ``some classes only``: the images of the fewest classes, in a random order, that give at least one
  image per class (``--balanced`` needs that many), with every class still a possible answer: a folder
  that holds only some of the classes.

    NLTK_DATA=.nltk_data MLLZOO_LOAD_PLUGINS=mllzoo-plugin-minizoo .venv/bin/python \\
        benchmarks/balanced_reuse.py --registry registry.db --tasks world/styles

(`make world`, then `python -m mllzoo_minizoo.world.styles --world world`: docs/reuse-benchmark.md.)
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from mllzoo.evaluation.bench import Measured, measure, score
from mllzoo.store.registry import Registry

SHOWN = ("mll", "mll_balanced", "oracle_single", "oracle_balanced")


def every_image(truth: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    return np.ones(len(truth), bool)


def half_the_classes_at_25(truth: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    return (truth < classes // 2) | (rng.random(len(truth)) < 0.25)


def one_class_is_80(truth: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    keep = truth == 0
    others = rng.permutation(np.flatnonzero(~keep))[: max(1, int(keep.sum()) // 4)]
    keep[others] = True
    return keep


def some_classes_only(truth: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(truth, minlength=classes)
    order = rng.permutation(classes)
    taken = order[: int(np.searchsorted(np.cumsum(counts[order]), classes)) + 1]
    return np.isin(truth, taken)


# each scenario's rule: which of a task's images (by their true classes) it keeps, as a bool mask
SCENARIOS = {
    "every image": every_image,
    "half the classes at 25%": half_the_classes_at_25,
    "one class is 80%": one_class_is_80,
    "some classes only": some_classes_only,
}


def subset(measured: Measured, scenario: str, seed: int) -> Measured:
    """``measured`` with each task cut to the images ``scenario`` keeps."""
    rng = np.random.default_rng(seed)
    masks = {
        task.name: SCENARIOS[scenario](task.truth, len(task.classes), rng)
        for task in measured.tasks
    }
    tasks = [
        replace(
            task,
            images=[image for image, keep in zip(task.images, masks[task.name]) if keep],
            truth=task.truth[masks[task.name]],
        )
        for task in measured.tasks
    ]
    similarity = {
        prompts: {
            model: {name: sim[masks[name]] for name, sim in per_task.items()}
            for model, per_task in per_model.items()
        }
        for prompts, per_model in measured.similarity.items()
    }
    return Measured(measured.selector, tasks, similarity, measured.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry.db"))
    parser.add_argument("--tasks", type=Path, default=Path("world/styles"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    measured = measure(Registry(args.registry), args.tasks, device="cpu")
    print(
        f"mean accuracy over {len(measured.tasks)} tasks of {args.tasks}\n"
        f"{'scenario':26s}{'images':>8s}{'balanced':>10s}"
        + "".join(f"{m:>17s}" for m in SHOWN)
        + "  balanced - mll (points)"
    )
    for scenario in SCENARIOS:
        part = subset(measured, scenario, args.seed)
        average = score(part, orders=0)["average"]
        images = sum(len(t.images) for t in part.tasks)
        balanced = sum(len(t.images) >= len(t.classes) for t in part.tasks)
        print(
            f"{scenario:26s}{images:8d}{f'{balanced}/{len(part.tasks)}':>10s}"
            + "".join(f"{average[m]:17.3f}" for m in SHOWN)
            + f"  {100 * (average['mll_balanced'] - average['mll']):+.1f}"
        )


if __name__ == "__main__":
    main()
