"""``mllzoo bench``: MLL against the choices users would otherwise make, on accuracy and cost.

Every model runs once over every task (each image decoded and encoded once per model); each
prompt set then gives its class vectors, and all methods are scored from those per-model
probabilities, so they see exactly the same model outputs:

- ``mll``: the default configuration (reuse :data:`~mllzoo.defaults.REUSE`, k = :data:`~mllzoo.defaults.K`
  among at most :data:`~mllzoo.defaults.MAX_MODELS` models); ``mll_k3``: the same reuse with each class's
  top 3, no model budget; ``paper_k1``, ``paper_k3``: the MLL paper's method (photo prompts, 1/entropy
  votes, no model budget), as MLL was before the evidence reuse; ``mll_balanced``: ``mll`` with each
  model's probabilities balanced over the task's images (``predict --balanced``; on a task with fewer
  images than classes, where ``predict`` refuses it, the same as ``mll``);
- ``inb``, ``inb_k3``: the model(s) with the best ImageNet zero-shot top-1 in the metadata, or,
  where models lack it, the best accuracy on the registry's own sample set;
- ``oracle_single``: the best single model in hindsight on each task (it needs every model run on
  labelled data); ``oracle_paper``: the same with the paper's prompts; ``oracle_balanced``: the same,
  balanced; ``fixed_single``: the one model best on average over all the run's tasks, in hindsight
  (one model for every task, as a user who benchmarked the zoo on labelled tasks would keep);
- ``all_models``: every model voting for every class, with the default's vote weights;
  ``mean_single``: a random pick on average.

``inb``, ``inb_k3``, the ``oracle`` rows and ``all_models`` use the default's prompts. Every ablation
(prompt set x score power x logit scale x k and model budget, :data:`ABLATIONS`) is scored in the same
run.
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
from mllzoo.defaults import BATCH_SIZE, BENCH_ORDERS, DEVICE, MAX_MODELS, REUSE, SEED, K
from mllzoo.errors import MllzooError
from mllzoo.extras import require
from mllzoo.graph.images import ImageCache, class_folder_images
from mllzoo.models.vlm import load_model
from mllzoo.reuse.ensemble import (
    LOGIT_SCALE,
    PROMPT_SETS,
    SOFT_SCALE,
    ReuseMethod,
    balance_classes,
    class_prompts,
    class_vectors,
    combine,
    image_features,
    reuse_method,
    shared_texts,
    softmax,
    vote_weights,
    voting_scale,
)
from mllzoo.selection.recommend import Recommendation, Selector
from mllzoo.store.registry import Registry
from mllzoo.store.user_models import known_models

METHODS = (
    "mll",
    "mll_k3",
    "mll_balanced",
    "paper_k1",
    "paper_k3",
    "inb",
    "inb_k3",
    "oracle_single",
    "oracle_paper",
    "oracle_balanced",
    "fixed_single",
    "all_models",
    "mean_single",
)
POWERS = (0.0, 1.0, 2.0)
SCALES = (LOGIT_SCALE, SOFT_SCALE)
BUDGETS = ((1, None), (2, None), (3, None), (2, 2), (3, 3))  # (k, the most models in all)
ABLATIONS = {
    f"{prompts}/score^{power:g}/scale{scale:g}/k{k}" + (f"/max{most}" if most else ""): (
        ReuseMethod(prompts, power, scale),
        k,
        most,
    )
    for prompts in PROMPT_SETS
    for power in POWERS
    for scale in SCALES
    for k, most in BUDGETS
}
PAPER = reuse_method("paper")


@dataclass
class Task:
    name: str
    classes: list[str]
    images: list[str]
    truth: np.ndarray
    domain: str | None
    task: str | None

    @property
    def seen(self) -> tuple[tuple[str, ...], str | None, str | None]:
        """What selection sees of the task (its class names, domain and task words): tasks alike in
        this get the same models, whatever their images."""
        return tuple(self.classes), self.domain, self.task


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


def model_similarities(
    model_ids: list[str], tasks: list[Task], texts: dict, device: str, batch_size: int
) -> tuple[dict, dict]:
    """``{prompt set: {model_id: {task: cosine similarities [images, classes]}}}`` for each prompt set
    in ``texts`` (``{prompt set: {task: per-class prompts}}``), each model loaded once, each image
    encoded once per model and each task's prompts once per text tower (as ``predict`` does); and the
    seconds spent: ``{"image": {model: {task: s}}, "text": {prompt set: {task: {tower: s}}}, "tower":
    {model: tower}}``."""
    catalog = known_models()
    missing = [m for m in model_ids if m not in catalog]
    if missing:
        raise MllzooError(f"labeled model(s) not installed: {', '.join(missing)}")
    caches = {t.name: ImageCache(None, [str(Path(p).resolve()) for p in t.images]) for t in tasks}
    shared = {p: {t.name: shared_texts(texts[p][t.name]) for t in tasks} for p in texts}
    similarity: dict[str, dict[str, dict[str, np.ndarray]]] = {p: {} for p in texts}
    seconds: dict[str, Any] = {"image": {}, "text": {p: {t.name: {} for t in tasks} for p in texts}}
    seconds["tower"] = {}
    for model_id in model_ids:
        model = load_model(catalog[model_id].spec, device, plugin=catalog[model_id].plugin)
        tower = seconds["tower"][model_id] = model.text_key or model_id
        seconds["image"][model_id] = {}
        for prompt_set in texts:
            similarity[prompt_set][model_id] = {}
        for task in tasks:
            started = time.perf_counter()
            features, ok = image_features(model, caches[task.name], batch_size)
            seconds["image"][model_id][task.name] = time.perf_counter() - started
            if len(ok) != len(task.images):
                raise MllzooError(
                    f"task {task.name} has unreadable images; remove them to benchmark"
                )
            for prompt_set, per_task in texts.items():
                started = time.perf_counter()
                vectors = class_vectors(model, per_task[task.name], shared[prompt_set][task.name])
                spent = seconds["text"][prompt_set][task.name]
                spent[tower] = spent.get(tower, 0.0) + time.perf_counter() - started
                similarity[prompt_set][model_id][task.name] = features @ vectors.T
    return similarity, seconds


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


class Bench:
    """The benchmark's shared state: the selector, the per-model probabilities and timings, and
    each selection made once (a class list's selection is the same whatever its images' style)."""

    def __init__(
        self,
        selector: Selector,
        similarity: dict,
        seconds: dict,
        default: tuple,
        scales: dict[str, float] | None = None,
    ):
        self.selector, self.similarity, self.seconds = selector, similarity, seconds
        self.default: tuple[ReuseMethod, int, int | None] = default
        self.scales = scales or {}
        self.board = leaderboard(selector)
        self._recommendations: dict[tuple, tuple[Recommendation, float]] = {}
        self._probs: dict[tuple[str, float], dict] = {}
        self._singles: dict[tuple[str, str], float] = {}  # (model, task name) -> its accuracy alone

    def probs(self, prompt_set: str, scale: float) -> dict:
        """``{model: {task: softmax probabilities}}`` under one prompt set, each model at the logit
        ``scale`` (or its own, where :attr:`scales` names one); computed once."""
        if (prompt_set, scale) not in self._probs:
            self._probs[prompt_set, scale] = {
                m: {t: softmax(self.scales.get(m, scale) * sim) for t, sim in per_task.items()}
                for m, per_task in self.similarity[prompt_set].items()
            }
        return self._probs[prompt_set, scale]

    def recommend(
        self, task: Task, k: int, models: list[str], most: int | None = None
    ) -> tuple[Recommendation, float]:
        """The selection for ``task`` among ``models`` (at most ``most`` of them in all) and its wall
        time (made once)."""
        key = (*task.seen, k, tuple(models), most)
        if key not in self._recommendations:
            started = time.perf_counter()
            rec = self.selector.recommend(
                task.classes, task.domain, task.task, k=k, models=models, max_models=most
            )
            self._recommendations[key] = (rec, time.perf_counter() - started)
        return self._recommendations[key]

    def reuse_seconds(self, task: Task, prompt_set: str, models: list[str]) -> float:
        """Reuse time per image: the models' image encodings, plus their prompts' embedding once per
        text tower among them (the ensemble shares a tower's embeddings, as ``predict`` does)."""
        towers = {self.seconds["tower"][m] for m in models}
        text = self.seconds["text"][prompt_set][task.name]
        images = sum(self.seconds["image"][m][task.name] for m in models)
        return (images + sum(text[tower] for tower in towers)) / len(task.images)

    def mll(
        self,
        task: Task,
        method: ReuseMethod,
        k: int,
        models: list[str],
        most: int | None = None,
        balanced: bool = False,
    ) -> dict:
        """Accuracy of selection (``k`` per class, at most ``most`` models in all) and reuse under
        ``method`` (its probabilities ``balanced`` over the task's images), its models, and its
        costs."""
        rec, seconds = self.recommend(task, k, models, most)
        votes = rec.votes()
        weights = [
            vote_weights(rec.selection.scores[rec.model_ids.index(m)], mask, method.power)
            for m, mask in votes.items()
        ]
        scale = voting_scale(method.scale, votes.values())
        probs = [self.probs(method.prompts, scale)[m][task.name] for m in votes]
        if balanced:
            probs = [balance_classes(p) for p in probs]
        return {
            "accuracy": ensemble_accuracy(probs, weights, task.truth),
            "models": rec.models,
            "selection_seconds": seconds,
            "reuse_seconds_per_image": self.reuse_seconds(task, method.prompts, rec.models),
        }

    def singles(self, task: Task, models: list[str]) -> dict[str, float]:
        """Each of ``models`` alone on ``task``, with the default's prompts (each computed once: the
        headline, the fixed pick and every hub size of the growth curve ask again)."""
        method = self.default[0]
        prompts = self.probs(method.prompts, voting_scale(method.scale, []))  # argmax: any scale
        for m in models:
            if (m, task.name) not in self._singles:
                self._singles[m, task.name] = accuracy(prompts[m][task.name], task.truth)
        return {m: self._singles[m, task.name] for m in models}

    def headline(self, task: Task, models: list[str], fixed: str) -> tuple[dict, dict]:
        """The methods of :data:`METHODS` on one task among ``models``, ``fixed`` the model best over
        all tasks: accuracy, and what each used (and each model's own accuracy)."""
        method, k, most = self.default
        every_class = np.ones(len(task.classes), bool)
        prompts = self.probs(method.prompts, voting_scale(method.scale, []))
        several = self.probs(method.prompts, voting_scale(method.scale, [every_class] * 2))
        paper = self.probs(PAPER.prompts, voting_scale(PAPER.scale, []))
        singles = self.singles(task, models)
        balances = len(task.images) >= len(task.classes)  # else predict --balanced refuses
        balanced_singles = {
            m: accuracy(balance_classes(prompts[m][task.name]), task.truth)
            if balances
            else singles[m]
            for m in models
        }
        paper_singles = {m: accuracy(paper[m][task.name], task.truth) for m in models}
        board = [m for m in self.board if m in models]
        runs = {
            "mll": self.mll(task, method, k, models, most),
            "mll_k3": self.mll(task, method, 3, models),
            "mll_balanced": self.mll(task, method, k, models, most, balanced=balances),
            "paper_k1": self.mll(task, PAPER, 1, models),
            "paper_k3": self.mll(task, PAPER, 3, models),
        }
        everyone = self.recommend(task, len(models), models)[0]
        acc = {name: run["accuracy"] for name, run in runs.items()}
        acc |= {
            "inb": singles[board[0]],
            "inb_k3": ensemble_accuracy(
                [several[m][task.name] for m in board[:3]], [every_class] * 3, task.truth
            ),
            "oracle_single": max(singles.values()),
            "oracle_paper": max(paper_singles.values()),
            "oracle_balanced": max(balanced_singles.values()),
            "fixed_single": singles[fixed],
            "all_models": ensemble_accuracy(
                [several[m][task.name] for m in everyone.model_ids],
                [vote_weights(row, every_class, method.power) for row in everyone.selection.scores],
                task.truth,
            ),
            "mean_single": float(np.mean(list(singles.values()))),
        }
        used = {name: run["models"] for name, run in runs.items()} | {
            "inb": board[:1],
            "inb_k3": board[:3],
            "oracle_single": [max(singles, key=lambda m: singles[m])],
            "oracle_paper": [max(paper_singles, key=lambda m: paper_singles[m])],
            "oracle_balanced": [max(balanced_singles, key=lambda m: balanced_singles[m])],
            "fixed_single": [fixed],
        }
        return acc, {"runs": runs, "used": used, "singles": singles}

    def fixed_single(self, tasks: list[Task], models: list[str]) -> str:
        """The one of ``models`` with the best mean accuracy over ``tasks``, in hindsight."""
        per_task = [self.singles(task, models) for task in tasks]
        return max(models, key=lambda m: sum(row[m] for row in per_task))

    def score_task(self, task: Task, models: list[str], fixed: str) -> dict:
        """Every method's and every ablation's accuracy and cost on one task, among ``models``
        (``fixed`` the model best over all tasks)."""
        n = len(task.images)
        acc, detail = self.headline(task, models, fixed)
        loaded = {m: len(detail["used"].get(m, [])) for m in METHODS}
        hindsight = ("oracle_single", "oracle_paper", "oracle_balanced", "fixed_single")
        loaded |= {m: len(models) for m in hindsight}  # each needs every model run on labels
        loaded |= {"all_models": len(models), "mean_single": 1}
        cost: dict[str, dict[str, Any]] = {
            m: {"models_loaded": loaded[m], "image_forward_passes": loaded[m] * n} for m in METHODS
        }
        for name, run in detail["runs"].items():
            cost[name]["selection_seconds"] = run["selection_seconds"]
            cost[name]["reuse_seconds_per_image"] = run["reuse_seconds_per_image"]
        for name, used in detail["used"].items():
            cost[name]["models"] = used
        ablations = {}
        for name, (method, k, most) in ABLATIONS.items():
            run = self.mll(task, method, k, models, most)
            ablations[name] = {
                "accuracy": run["accuracy"],
                "models_loaded": len(run["models"]),
                "reuse_seconds_per_image": run["reuse_seconds_per_image"],
            }
        return {
            "name": task.name,
            "classes": len(task.classes),
            "images": n,
            "accuracy": acc,
            "singles": detail["singles"],
            "cost": cost,
            "ablations": ablations,
        }

    def growth_point(self, task: Task, models: list[str], fixed: str) -> dict[str, float]:
        """``mll``, ``inb``, ``oracle_single`` and ``fixed_single`` (``fixed``, the one of ``models``
        best over all tasks) on one task among ``models``."""
        method, k, most = self.default
        singles = self.singles(task, models)
        board = [m for m in self.board if m in models]
        return {
            "mll": self.mll(task, method, k, models, most)["accuracy"],
            "inb": singles[board[0]],
            "oracle_single": max(singles.values()),
            "fixed_single": singles[fixed],
        }

    def growth(self, tasks: list[Task], orders: int, seed: int) -> dict:
        """Mean accuracy over tasks as models join the hub one at a time, in ``orders`` random orders."""
        rng = random.Random(seed)
        keys = ("mll", "inb", "oracle_single", "fixed_single")
        curves: dict[str, list[list[float]]] = {key: [] for key in keys}
        for _ in range(orders):
            order = self.selector.model_ids[:]
            rng.shuffle(order)
            per_size: dict[str, list[float]] = {key: [] for key in keys}
            for size in range(1, len(order) + 1):
                hub = order[:size]
                fixed = self.fixed_single(tasks, hub)
                rows = [self.growth_point(task, hub, fixed) for task in tasks]
                for key in keys:
                    per_size[key].append(float(np.mean([row[key] for row in rows])))
            for key in keys:
                curves[key].append(per_size[key])
        return {key: np.mean(value, axis=0).tolist() for key, value in curves.items()}


def prompt_texts(selector: Selector, tasks: list[Task]) -> dict:
    """``{prompt set: {task: per-class prompts}}``: each class's descriptions from the selector's
    captioner and the caption of its best-matched concept."""
    out: dict[str, dict[str, list[list[str]]]] = {p: {} for p in PROMPT_SETS}
    for task in tasks:
        descriptions = selector.descriptions(task.classes, task.domain, task.task)
        rec = selector.recommend(task.classes, task.domain, task.task)
        for prompt_set in PROMPT_SETS:
            out[prompt_set][task.name] = class_prompts(
                task.classes, task.domain, prompt_set, descriptions, rec.best_concepts
            )
    return out


def mean(values) -> float:
    """Unrounded, as every figure here: rounding once, where printed, keeps the last digit true
    (0.27246 rounded to 0.2725 first would print as 0.273)."""
    return float(np.mean(list(values)))


@dataclass
class Measured:
    """What running every model over every task gave: scored as often as wanted (:func:`score`)."""

    selector: Selector
    tasks: list[Task]
    similarity: dict
    seconds: dict


def measure(
    registry: Registry, tasks_dir: Path, device: str = DEVICE, batch_size: int = BATCH_SIZE
) -> Measured:
    """Every labeled model over the tasks in ``tasks_dir``, with every prompt set: the costly part."""
    selector = Selector(registry, captioner="templates", keep_labels=True)
    tasks = load_tasks(tasks_dir)
    texts = prompt_texts(selector, tasks)
    similarity, seconds = model_similarities(selector.model_ids, tasks, texts, device, batch_size)
    return Measured(selector, tasks, similarity, seconds)


def run_bench(
    registry: Registry,
    tasks_dir: Path,
    device: str = DEVICE,
    batch_size: int = BATCH_SIZE,
    orders: int = BENCH_ORDERS,
    seed: int = SEED,
    reuse: str = REUSE,
    k: int = K,
    max_models: int | None = MAX_MODELS,
) -> dict:
    """Every method and ablation on the tasks in ``tasks_dir``; ``mll`` is ``reuse`` at ``k`` among
    at most ``max_models``."""
    return score(
        measure(registry, tasks_dir, device, batch_size), orders, seed, reuse, k, max_models
    )


def score(
    measured: Measured,
    orders: int = BENCH_ORDERS,
    seed: int = SEED,
    reuse: str = REUSE,
    k: int = K,
    max_models: int | None = MAX_MODELS,
    scales: dict[str, float] | None = None,
) -> dict:
    """Every method and ablation from what :func:`measure` gave; ``scales`` sets a model's logit
    scale for every method (default: each method's own, as ``predict`` uses)."""
    method = reuse_method(reuse)
    selector, tasks = measured.selector, measured.tasks
    bench = Bench(selector, measured.similarity, measured.seconds, (method, k, max_models), scales)
    fixed = bench.fixed_single(tasks, selector.model_ids)
    rows = [bench.score_task(task, selector.model_ids, fixed) for task in tasks]
    average = {m: mean(r["accuracy"][m] for r in rows) for m in METHODS}
    ablations = {
        name: {
            "accuracy": mean(r["ablations"][name]["accuracy"] for r in rows),
            "models_loaded": mean(r["ablations"][name]["models_loaded"] for r in rows),
            "worst_task_vs_paper_k1": min(
                r["ablations"][name]["accuracy"] - r["accuracy"]["paper_k1"] for r in rows
            ),
            "reuse_seconds_per_image": mean(
                r["ablations"][name]["reuse_seconds_per_image"] for r in rows
            ),
        }
        for name in ABLATIONS
    }
    return {
        "tasks": rows,
        "average": average,
        "ablations": ablations,
        "default": {
            "reuse": reuse,
            "prompts": method.prompts,
            "power": method.power,
            "scale": method.scale,
            "k": k,
            "max_models": max_models,
        },
        "targets": targets(rows, average),
        "models": selector.model_ids,
        "fixed_single": fixed,
        "growth": bench.growth(tasks, orders, seed) if orders else None,
    }


def targets(rows: list[dict], average: dict) -> dict:
    """The issue's targets, as measured in this run: ``mll`` against the references."""

    def cost(method: str, key: str) -> float:
        return mean(r["cost"][method][key] for r in rows)

    return {
        "mll_minus_oracle_single": average["mll"] - average["oracle_single"],
        "mll_minus_fixed_single": average["mll"] - average["fixed_single"],
        "mll_minus_inb": average["mll"] - average["inb"],
        "mll_balanced_minus_oracle_single": average["mll_balanced"] - average["oracle_single"],
        "mll_minus_paper_k1_worst_task": min(
            r["accuracy"]["mll"] - r["accuracy"]["paper_k1"] for r in rows
        ),
        "models_loaded_mll": cost("mll", "models_loaded"),
        "models_loaded_paper_k1": cost("paper_k1", "models_loaded"),
        "reuse_time_ratio_mll_to_paper_k1": cost("mll", "reuse_seconds_per_image")
        / cost("paper_k1", "reuse_seconds_per_image"),
    }


def plot(result: dict, path: Path) -> None:
    """Accuracy per task by method, and accuracy against hub size (the paper's growth plot)."""
    matplotlib = require("matplotlib", "bench", "mllzoo bench --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [t["name"] for t in result["tasks"]] + ["average"]
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / len(METHODS)
    colours = plt.get_cmap("tab20")  # one each: the default cycle repeats after ten
    for i, method in enumerate(METHODS):
        values = [t["accuracy"][method] for t in result["tasks"]] + [result["average"][method]]
        bars.bar(
            np.arange(len(names)) + i * width, values, width, label=method, color=colours(i % 20)
        )
    bars.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right")
    bars.set_ylabel("top-1 accuracy")
    bars.set_title("Accuracy per task")
    bars.legend(fontsize=8, ncol=2)
    if result.get("growth"):  # mll, inb, oracle_single and fixed_single only
        for key, curve in result["growth"].items():
            lines.plot(range(1, len(curve) + 1), curve, marker="o", label=key)
        lines.set_xlabel("models in the hub")
        lines.set_ylabel("mean accuracy over tasks")
        lines.set_title("Growing the hub (mean of random orders)")
        lines.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
