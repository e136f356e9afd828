"""How far the default's chosen models are from the best ensembles in hindsight: the ceiling of selection.

The default reuse lets each of its chosen models (`K` per class, at most `MAX_MODELS`) vote for every class.
This script runs every model once over the benchmark's tasks (:func:`mllzoo.evaluation.bench.measure`),
then scores, with the default's prompts, scale and votes, every ensemble of 2, 3 and 4 of the models on
every task, and reports the mean over tasks of the best one per task (chosen in hindsight, on the
task's labels), against the best single model in hindsight and against what ``mll`` chose from the
labels alone, with the chosen pair's rank among all pairs. Under each ceiling, the same with one ensemble
per class list (the tasks that share class names, domain and task words, such as one world task's
styles), the best one over the list's tasks: selection sees only the names, so no selection, however
its labels were measured, can do better than that with this vote.

Then the same for weighted pools of all the models, each model's 1/entropy-weighted probabilities times
a weight of its own: ``--pools`` random weightings (seeded, half sparse, half flat), each model alone and
all models equal, the best per task and per class list in hindsight. That bounds any weighting of the
votes, not only the choice of models (the per-task figure fits thousands of weightings to each task's
labels, so it flatters).

    NLTK_DATA=.nltk_data MLLZOO_LOAD_PLUGINS=mllzoo-plugin-minizoo .venv/bin/python \\
        benchmarks/ensemble_ceiling.py --registry registry.db --tasks world/styles
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import numpy as np

from mllzoo.defaults import MAX_MODELS, REUSE, K
from mllzoo.evaluation.bench import Bench, Task, ensemble_accuracy, measure
from mllzoo.reuse.ensemble import ReuseMethod, combine, reuse_method, voting_scale
from mllzoo.store.registry import Registry

SIZES = (2, 3, 4)
POOLS = 5000
SEED = 0
CHUNK = 250  # weightings pooled at once: bounded memory


def ensemble_scores(
    bench: Bench, method: ReuseMethod, task: Task, models: list[str], size: int
) -> dict[tuple[str, ...], float]:
    """The accuracy on ``task`` of every ensemble of ``size`` of ``models``, each voting for every
    class with the default's prompts, scale and votes."""
    every = [np.ones(len(task.classes), bool)] * size
    probs = bench.probs(method.prompts, voting_scale(method.scale, every))
    return {
        group: ensemble_accuracy([probs[m][task.name] for m in group], every, task.truth)
        for group in combinations(models, size)
    }


def pool_weights(models: int, pools: int, seed: int) -> np.ndarray:
    """``[pools + models + 1, models]``: random weightings (half from a sparse Dirichlet, half from a
    flat one), then each model alone, then all equal."""
    rng = np.random.default_rng(seed)
    return np.vstack(
        [
            rng.dirichlet(np.full(models, 0.3), pools - pools // 2),
            rng.dirichlet(np.ones(models), pools // 2),
            np.eye(models),
            np.full((1, models), 1 / models),
        ]
    )


def pool_scores(
    bench: Bench, method: ReuseMethod, task: Task, models: list[str], weights: np.ndarray
) -> dict[int, float]:
    """The accuracy on ``task`` of each weighting (a row of ``weights``) of every model's vote, with
    the default's prompts, scale and votes for several voters."""
    every = np.ones(len(task.classes), bool)
    probs = bench.probs(method.prompts, voting_scale(method.scale, [every, every]))
    votes = np.stack([combine([probs[m][task.name]], [every]) for m in models])  # [models, n, C]
    scores: dict[int, float] = {}
    for start in range(0, len(weights), CHUNK):
        pooled = np.einsum("wm,mnc->wnc", weights[start : start + CHUNK], votes)
        right = (pooled.argmax(axis=2) == task.truth[None, :]).mean(axis=1)
        scores |= {start + i: float(a) for i, a in enumerate(right)}
    return scores


def class_lists(tasks: list[Task]) -> list[list[int]]:
    """The tasks' indices, grouped by what selection sees of a task (:attr:`Task.seen`): the styles
    of one world task share one group."""
    groups: dict[tuple, list[int]] = {}
    for i, task in enumerate(tasks):
        groups.setdefault(task.seen, []).append(i)
    return list(groups.values())


def best_per_class_list(scores: list[dict], lists: list[list[int]]) -> list[float]:
    """Per task, the accuracy of the one ensemble that is best in hindsight over its whole class list
    (the best any selection from class names alone can do), rather than over the task alone."""
    out = [0.0] * len(scores)
    for tasks in lists:
        best = max(scores[tasks[0]], key=lambda group: sum(scores[i][group] for i in tasks))
        for i in tasks:
            out[i] = scores[i][best]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry.db"))
    parser.add_argument("--tasks", type=Path, default=Path("world/styles"))
    parser.add_argument("--pools", type=int, default=POOLS, help="random weightings of all models")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    measured = measure(Registry(args.registry), args.tasks, device="cpu")
    method = reuse_method(REUSE)
    bench = Bench(measured.selector, measured.similarity, measured.seconds, (method, K, MAX_MODELS))
    models, tasks = measured.selector.model_ids, measured.tasks
    sizes = [size for size in (1, *SIZES) if size <= len(models)]
    scores = {
        size: [ensemble_scores(bench, method, t, models, size) for t in tasks] for size in sizes
    }
    lists = class_lists(tasks)
    named = f"{len(lists)} class list" + ("s" if len(lists) != 1 else "")
    print(f"mean accuracy over {len(tasks)} tasks of {args.tasks} ({named}), {len(models)} models")
    for size in sizes:
        what = "single model" if size == 1 else f"ensemble of {size}"
        print(
            f"{f'best {what} in hindsight':44s}{np.mean([max(s.values()) for s in scores[size]]):.3f}"
        )
        print(
            f"{'  the best one per class list':44s}{np.mean(best_per_class_list(scores[size], lists)):.3f}"
        )
    weights = pool_weights(len(models), args.pools, args.seed)
    pools = [pool_scores(bench, method, t, models, weights) for t in tasks]
    print(
        f"{f'best weighted pool of all {len(models)} in hindsight':44s}"
        f"{np.mean([max(s.values()) for s in pools]):.3f}  ({len(weights)} weightings)"
    )
    print(f"{'  the best one per class list':44s}{np.mean(best_per_class_list(pools, lists)):.3f}")
    chosen, ranks = [], []
    for task, pairs in zip(tasks, scores.get(2, [])):
        picked = bench.recommend(task, K, models, MAX_MODELS)[0].models
        pair = tuple(m for m in models if m in picked)  # in the order of combinations()
        if pair in pairs:
            chosen.append(pairs[pair])
            ranks.append(1 + sum(v > pairs[pair] for v in pairs.values()))
    if not chosen:  # mll kept one model on every task: no pair to rank
        return
    print(
        f"{'the pair mll chose from the labels':44s}{np.mean(chosen):.3f}  "
        f"(on {len(chosen)} tasks; rank {np.mean(ranks):.1f} of {len(list(combinations(models, 2)))} "
        f"pairs on average)"
    )


if __name__ == "__main__":
    main()
