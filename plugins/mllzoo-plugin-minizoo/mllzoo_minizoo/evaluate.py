"""Zero-shot accuracy of every minizoo model on every target task of the world.

``python -m mllzoo_minizoo.evaluate [--world world] [--json FILE]`` prints a models x tasks table.
Models go through the same hooks as any family (``mllzoo.load_model`` / ``encode_*``). Each
class is prompted with "a photo of a {class}." and "a photo of a {class}, a type of {domain}."
(the task's domain words), averaged, as the core's reuse step prompts a model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PROMPTS = ("a photo of a {c}.", "a photo of a {c}, a type of {domain}.")


def load_task(task_dir: Path) -> tuple[dict, list[str], list[Path], np.ndarray]:
    meta = json.loads((task_dir / "task.json").read_text())
    classes = sorted(p.name for p in task_dir.iterdir() if p.is_dir())
    paths, labels = [], []
    for i, cls in enumerate(classes):
        for path in sorted((task_dir / cls).glob("*.png")):
            paths.append(path)
            labels.append(i)
    return meta, classes, paths, np.asarray(labels)


def class_embeddings(model, classes: list[str], domain: str) -> np.ndarray:
    from mllzoo import encode_texts

    vecs = np.stack(
        [encode_texts(model, [p.format(c=c, domain=domain) for c in classes]) for p in PROMPTS]
    )
    mean = vecs.mean(0)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def evaluate(world: Path) -> dict[str, dict[str, float]]:
    import torch
    from PIL import Image

    from mllzoo import discover_models, encode_images, load_model

    torch.set_num_threads(1)
    tasks = {
        p.name: load_task(p)
        for p in sorted((world / "tasks").iterdir())
        if (p / "task.json").exists()
    }
    specs = [e.spec for mid, e in discover_models().items() if e.spec.family == "minizoo"]
    results: dict[str, dict[str, float]] = {}
    decoded: dict[
        tuple[str, str], torch.Tensor
    ] = {}  # (preprocess_key, task) -> images, decoded once
    for spec in specs:
        model = load_model(spec, device="cpu")
        results[spec.id] = {}
        for name, (meta, classes, paths, labels) in tasks.items():
            key = (model.preprocess_key, name)
            if key not in decoded:
                decoded[key] = torch.stack(
                    [model.preprocess(Image.open(p).convert("RGB")) for p in paths]
                )
            feats = encode_images(model, decoded[key])
            text = class_embeddings(model, classes, meta["domain"])
            pred = (feats @ text.T).argmax(1)
            results[spec.id][name] = float((pred == labels).mean())
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    models = list(results)
    tasks = list(next(iter(results.values())))
    best = {t: max(results[m][t] for m in models) for t in tasks}
    width = max(len(m) for m in models) + 2
    lines = ["model".ljust(width) + "".join(f"{t[:11]:>12}" for t in tasks) + f"{'mean':>8}"]
    for m in models:
        cells = "".join(
            f"{results[m][t]:>11.3f}{'*' if results[m][t] == best[t] else ' '}" for t in tasks
        )
        lines.append(m.ljust(width) + cells + f"{np.mean(list(results[m].values())):>8.3f}")
    winners = {m for m in models if all(results[m][t] == best[t] for t in tasks)}
    lines.append(
        "* best on the task. "
        + (
            f"{', '.join(winners)} is best on every task."
            if winners
            else "No single model is best on every task."
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mllzoo_minizoo.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--world", type=Path, default=Path("world"))
    parser.add_argument("--json", type=Path, default=None, help="also write the accuracies here")
    args = parser.parse_args(argv)
    results = evaluate(args.world)
    if not results:
        raise SystemExit("no minizoo model is installed with weights (run `make minizoo`)")
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
