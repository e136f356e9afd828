"""How far the default's chosen models are from the best ensembles in hindsight: the ceiling of selection.

The default reuse lets each of its chosen models (`K` per class, at most `MAX_MODELS`) vote for every class.
This script runs every model once over the benchmark's tasks (:func:`mllzoo.evaluation.bench.measure`),
then scores, with the default's prompts, scale and votes, every ensemble of 2, 3 and 4 of the models on
every task, and reports the mean over tasks of the best one per task (chosen in hindsight, on the
task's labels), against the best single model in hindsight and against what ``mll`` chose from the
labels alone, with the chosen pair's rank among all pairs.

    NLTK_DATA=.nltk_data MLLZOO_LOAD_PLUGINS=mllzoo-plugin-minizoo .venv/bin/python \\
        benchmarks/ensemble_ceiling.py --registry registry.db --tasks world/styles
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import numpy as np

from mllzoo.defaults import MAX_MODELS, REUSE, K
from mllzoo.evaluation.bench import Bench, ensemble_accuracy, measure
from mllzoo.reuse.ensemble import reuse_method, voting_scale
from mllzoo.store.registry import Registry

SIZES = (2, 3, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry.db"))
    parser.add_argument("--tasks", type=Path, default=Path("world/styles"))
    args = parser.parse_args()
    measured = measure(Registry(args.registry), args.tasks, device="cpu")
    method = reuse_method(REUSE)
    bench = Bench(measured.selector, measured.similarity, measured.seconds, (method, K, MAX_MODELS))
    models = measured.selector.model_ids
    sizes = [size for size in SIZES if size <= len(models)]
    best: dict[int, list[float]] = {size: [] for size in (1, *sizes)}
    chosen, ranks = [], []
    for task in measured.tasks:
        every = np.ones(len(task.classes), bool)
        for size in (1, *sizes):
            probs = bench.probs(method.prompts, voting_scale(method.scale, [every] * size))
            scores = {
                group: ensemble_accuracy(
                    [probs[m][task.name] for m in group], [every] * size, task.truth
                )
                for group in combinations(models, size)
            }
            best[size].append(max(scores.values()))
            if size == 2:
                pair = tuple(
                    m
                    for m in models
                    if m in bench.mll(task, method, K, models, MAX_MODELS)["models"]
                )
                if pair in scores:
                    chosen.append(scores[pair])
                    ranks.append(1 + sum(v > scores[pair] for v in scores.values()))
    print(f"mean accuracy over {len(measured.tasks)} tasks of {args.tasks}, {len(models)} models")
    print(f"{'best single model in hindsight':44s}{np.mean(best[1]):.4f}")
    for size in sizes:
        print(f"{f'best ensemble of {size} in hindsight':44s}{np.mean(best[size]):.4f}")
    if not chosen:  # mll kept one model on every task: no pair to rank
        return
    print(
        f"{'the pair mll chose from the labels':44s}{np.mean(chosen):.4f}  "
        f"(on {len(chosen)} tasks; rank {np.mean(ranks):.1f} of {len(list(combinations(models, 2)))} "
        f"pairs on average)"
    )


if __name__ == "__main__":
    main()
