"""``mllzoo bench``: MLL against the choices users would otherwise make, on accuracy and cost.

Every model runs once over every task (each image decoded once per transform); all methods are
then scored from those per-model probabilities, so they see exactly the same model outputs:

- ``mll_k1``, ``mll_k3``: selection from class names alone, then the inverse-entropy ensemble;
- ``inb``, ``inb_k3``: the model(s) with the best ImageNet zero-shot top-1 in the metadata, or,
  where models lack it, the best accuracy on the registry's own sample set;
- ``oracle_single``: the best single model in hindsight (it needs every model run on labelled data);
- ``all_models``: every model ensembled with the same rule; ``mean_single``: a random pick on average.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mllzoo.classes import display_name
from mllzoo.defaults import BATCH_SIZE, BENCH_ORDERS, DEVICE, SEED
from mllzoo.errors import MllzooError
from mllzoo.extras import require
from mllzoo.graph.images import ImageCache, class_folder_images
from mllzoo.models.catalog import discover_models
from mllzoo.models.vlm import load_model
from mllzoo.reuse.ensemble import class_vectors, combine, zero_shot_probabilities
from mllzoo.selection.recommend import Selector
from mllzoo.store.registry import Registry

METHODS = ("mll_k1", "mll_k3", "inb", "inb_k3", "oracle_single", "all_models", "mean_single")


@dataclass
class Task:
    name: str
    classes: list[str]
    images: list[str]
    truth: np.ndarray
    domain: str | None
    task: str | None


def load_tasks(tasks_dir: Path) -> list[Task]:
    """Every sub-folder laid out as ImageFolder (class-named sub-folders), with optional task.json."""
    tasks_dir = Path(tasks_dir)
    if not tasks_dir.is_dir():
        raise MllzooError(f"tasks folder not found: {tasks_dir}")
    tasks = []
    for folder in sorted(p for p in tasks_dir.iterdir() if p.is_dir()):
        labeled = [
            (str(file), name) for file, name in class_folder_images(folder) if name is not None
        ]
        class_names = sorted({name for _, name in labeled})
        if len(class_names) < 2:
            continue
        index = {name: y for y, name in enumerate(class_names)}
        card = (
            json.loads((folder / "task.json").read_text())
            if (folder / "task.json").exists()
            else {}
        )
        tasks.append(
            Task(
                folder.name,
                [display_name(c) for c in class_names],
                [file for file, _ in labeled],
                np.array([index[name] for _, name in labeled]),
                card.get("domain"),
                card.get("task"),
            )
        )
    if not tasks:
        raise MllzooError(
            f"no ImageFolder task (a folder of class-named sub-folders) in {tasks_dir}"
        )
    return tasks


def model_probabilities(
    model_ids: list[str], tasks: list[Task], device: str, batch_size: int
) -> dict:
    """``{model_id: {task: softmax probabilities [images, classes]}}``, each model loaded once."""
    catalog = discover_models()
    missing = [m for m in model_ids if m not in catalog]
    if missing:
        raise MllzooError(f"labeled model(s) not installed: {', '.join(missing)}")
    caches = {t.name: ImageCache(None, [str(Path(p).resolve()) for p in t.images]) for t in tasks}
    out: dict[str, dict[str, np.ndarray]] = {}
    for model_id in model_ids:
        model = load_model(catalog[model_id].spec, device, plugin=catalog[model_id].plugin)
        out[model_id] = {}
        for task in tasks:
            vectors = class_vectors(model, task.classes, task.domain)
            probs, ok = zero_shot_probabilities(model, vectors, caches[task.name], batch_size)
            if len(ok) != len(task.images):
                raise MllzooError(
                    f"task {task.name} has unreadable images; remove them to benchmark"
                )
            out[model_id][task.name] = probs
    return out


def accuracy(scores: np.ndarray, truth: np.ndarray) -> float:
    return float((scores.argmax(axis=1) == truth).mean())


def ensemble_accuracy(probs: list[np.ndarray], votes: list[np.ndarray], truth: np.ndarray) -> float:
    return accuracy(combine(probs, votes), truth)


def leaderboard(selector: Selector) -> list[str]:
    """Model ids by the leaderboard a user would read: ImageNet top-1, else sample-set accuracy."""
    top1 = {m: selector.metadata.get(m, {}).get("imagenet_top1") for m in selector.model_ids}
    if all(v is not None for v in top1.values()):
        return sorted(selector.model_ids, key=lambda m: -top1[m])
    sample_accuracy = {
        m: float((label.rank[label.rank >= 0] == 0).mean())
        for m, label in zip(selector.model_ids, selector.whole_labels())
    }
    return sorted(selector.model_ids, key=lambda m: -sample_accuracy[m])


def mll_accuracy(
    selector: Selector, task: Task, probs: dict, k: int, models: list[str] | None = None
):
    """Accuracy of MLL's selection and reuse, its models, and the selection's wall time."""
    started = time.perf_counter()
    rec = selector.recommend(task.classes, task.domain, task.task, k=k, models=models)
    seconds = time.perf_counter() - started
    votes = rec.votes()
    return (
        ensemble_accuracy([probs[m][task.name] for m in votes], list(votes.values()), task.truth),
        rec.models,
        seconds,
    )


def score_task(selector: Selector, task: Task, probs: dict, models: list[str]) -> dict:
    """All methods' accuracy and cost on one task, among ``models``."""
    n = len(task.images)
    everyone = [np.ones(len(task.classes), bool)] * len(models)
    singles = {m: accuracy(probs[m][task.name], task.truth) for m in models}
    board = [m for m in leaderboard(selector) if m in models]
    k1, k1_models, k1_seconds = mll_accuracy(selector, task, probs, 1, models)
    k3, k3_models, k3_seconds = mll_accuracy(selector, task, probs, 3, models)
    acc = {
        "mll_k1": k1,
        "mll_k3": k3,
        "inb": singles[board[0]],
        "inb_k3": ensemble_accuracy(
            [probs[m][task.name] for m in board[:3]], everyone[:3], task.truth
        ),
        "oracle_single": max(singles.values()),
        "all_models": ensemble_accuracy(
            [probs[m][task.name] for m in models], everyone, task.truth
        ),
        "mean_single": float(np.mean(list(singles.values()))),
    }
    used = {
        "mll_k1": len(k1_models),
        "mll_k3": len(k3_models),
        "inb": 1,
        "inb_k3": min(3, len(models)),
        "oracle_single": len(models),
        "all_models": len(models),
        "mean_single": 1,
    }
    cost: dict[str, dict[str, Any]] = {
        m: {"models_loaded": used[m], "image_forward_passes": used[m] * n} for m in METHODS
    }
    cost["mll_k1"]["selection_seconds"] = round(k1_seconds, 4)
    cost["mll_k3"]["selection_seconds"] = round(k3_seconds, 4)
    cost["mll_k1"]["models"], cost["mll_k3"]["models"] = k1_models, k3_models
    cost["inb"]["models"] = board[:1]
    cost["oracle_single"]["models"] = [max(singles, key=lambda m: singles[m])]
    return {
        "name": task.name,
        "classes": len(task.classes),
        "images": n,
        "accuracy": acc,
        "cost": cost,
    }


def growth(selector: Selector, tasks: list[Task], probs: dict, orders: int, seed: int) -> dict:
    """Mean accuracy over tasks as models join the hub one at a time, in ``orders`` random orders."""
    rng = random.Random(seed)
    curves: dict[str, list[list[float]]] = {"mll_k1": [], "inb": [], "oracle_single": []}
    for _ in range(orders):
        order = selector.model_ids[:]
        rng.shuffle(order)
        per_size: dict[str, list[float]] = {key: [] for key in curves}
        for size in range(1, len(order) + 1):
            rows = [score_task(selector, task, probs, order[:size])["accuracy"] for task in tasks]
            for key in curves:
                per_size[key].append(float(np.mean([row[key] for row in rows])))
        for key in curves:
            curves[key].append(per_size[key])
    return {key: np.mean(value, axis=0).round(4).tolist() for key, value in curves.items()}


def run_bench(
    registry: Registry,
    tasks_dir: Path,
    device: str = DEVICE,
    batch_size: int = BATCH_SIZE,
    orders: int = BENCH_ORDERS,
    seed: int = SEED,
) -> dict:
    selector = Selector(registry, captioner="templates", keep_labels=True)
    tasks = load_tasks(tasks_dir)
    probs = model_probabilities(selector.model_ids, tasks, device, batch_size)
    rows = [score_task(selector, task, probs, selector.model_ids) for task in tasks]
    average = {m: round(float(np.mean([r["accuracy"][m] for r in rows])), 4) for m in METHODS}
    return {
        "tasks": rows,
        "average": average,
        "models": selector.model_ids,
        "growth": growth(selector, tasks, probs, orders, seed) if orders else None,
    }


def plot(result: dict, path: Path) -> None:
    """Accuracy per task by method, and accuracy against hub size (the paper's growth plot)."""
    matplotlib = require("matplotlib", "bench", "mllzoo bench --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [t["name"] for t in result["tasks"]] + ["average"]
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / len(METHODS)
    for i, method in enumerate(METHODS):
        values = [t["accuracy"][method] for t in result["tasks"]] + [result["average"][method]]
        bars.bar(np.arange(len(names)) + i * width, values, width, label=method)
    bars.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right")
    bars.set_ylabel("top-1 accuracy")
    bars.set_title("Accuracy per task")
    bars.legend(fontsize=8, ncol=2)
    if result.get("growth"):
        for key, curve in result["growth"].items():
            lines.plot(range(1, len(curve) + 1), curve, marker="o", label=key)
        lines.set_xlabel("models in the hub")
        lines.set_ylabel("mean accuracy over tasks")
        lines.set_title("Growing the hub (mean of random orders)")
        lines.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
