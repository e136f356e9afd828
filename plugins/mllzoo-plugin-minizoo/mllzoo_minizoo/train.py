"""Train the minizoo: LiT-style image towers against the frozen all-MiniLM-L6-v2 text tower.

``python -m mllzoo_minizoo.train [--world world] [--only ARCH.TAG ...] [--threads 1]`` trains every
recipe in :mod:`.zoo` on the world's *training pool* only and writes ``weights/*.safetensors`` and
``models.json``. Deterministic for the recipes' seeds on one thread.

Two losses, both against frozen MiniLM embeddings (LiT: the text tower never moves):

- a class-level loss over every concept of the model's mix, with a caption template drawn per step
  from those zero-shot use will show the model ("a photo of a {lemma}.", the semantic graph's node
  captions "{lemma} which is {definition}", ...);
- an in-batch contrastive loss against each image's own source caption ("an emoji of dog face",
  "a clip art of a bicycle", "the word house"), where images of the same concept are all positives.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .towers import ImageTower, normalize, save_tower
from .zoo import MIXES, MODELS_JSON, RECIPES, Recipe

CLASS_TEMPLATES = (
    "a photo of a {lemma}.",
    "{lemma} which is {definition}",
    "{lemma}",
    "a drawing of a {lemma}.",
)
SOURCE_TEMPLATES = {
    "noto": "an emoji of {name}",
    "symbola": "a black and white symbol of {name}",
    "clipart": "a clip art of a {name}",
    "digit": "the digit {name}",
    "handwritten": "a handwritten digit {name}",
    "texture": "a {name} pattern",
    "word": "the word {name}",
}
BATCH = 128


class Pool:
    """The training pool decoded once: uint8 images [N, 64, 64, 3] and their index rows."""

    def __init__(self, world: Path):
        with (world / "train" / "index.csv").open(encoding="utf-8") as fh:
            self.rows = list(csv.DictReader(fh))
        self.images = np.stack(
            [np.asarray(Image.open(world / "train" / r["path"]).convert("RGB")) for r in self.rows]
        )
        self.synsets: dict[str, dict[str, str]] = json.loads((world / "synsets.json").read_text())

    def select(self, mix: str) -> np.ndarray:
        parts = MIXES[mix]
        if not parts:
            return np.arange(len(self.rows))
        keep = [
            i
            for i, r in enumerate(self.rows)
            if any(r["domain"] == p or r["domain"].startswith(p + "/") for p in parts)
        ]
        return np.asarray(keep)


class TextBank:
    """MiniLM embeddings of every caption, computed once and shared by all recipes."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def need(self, texts: list[str]) -> None:
        from mllzoo import minilm_embed

        missing = sorted({t for t in texts if t not in self.vectors})
        if missing:
            for text, vec in zip(missing, minilm_embed(missing)):
                self.vectors[text] = vec

    def matrix(self, texts: list[str]) -> torch.Tensor:
        self.need(texts)
        return torch.from_numpy(np.stack([self.vectors[t] for t in texts]))


def class_captions(pool: Pool, synset: str) -> list[str]:
    info = pool.synsets.get(synset) or {
        "lemma": synset.split(".")[0].replace("_", " "),
        "definition": "",
    }
    return [
        t.format(lemma=info["lemma"], definition=info["definition"]).strip()
        for t in CLASS_TEMPLATES
    ]


def source_caption(row: dict[str, str]) -> str:
    return SOURCE_TEMPLATES[row["source"]].format(name=row["name"])


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Light affine (scale, rotation, shift) and colour jitter on a normalised batch."""
    n = x.shape[0]
    scale = torch.empty(n).uniform_(0.85, 1.15, generator=gen)
    angle = torch.empty(n).uniform_(-0.2, 0.2, generator=gen)
    shift = torch.empty(n, 2).uniform_(-0.1, 0.1, generator=gen)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = torch.empty(n, 1, 1, 1).uniform_(0.75, 1.25, generator=gen)
    bright = torch.empty(n, 1, 1, 1).uniform_(-0.15, 0.15, generator=gen)
    gray = (torch.rand(n, 1, 1, 1, generator=gen) < 0.1).float()
    x = x * contrast + bright
    x = gray * x.mean(1, keepdim=True).expand_as(x) + (1 - gray) * x
    return x.clamp(-1.5, 1.5)


def measure(tower: ImageTower, size: int) -> tuple[float, float]:
    """Parameters (millions) and forward GFLOPs for one image (torch's FLOP counter: 2 x MACs)."""
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in tower.parameters()) / 1e6
    tower.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        tower(torch.zeros(1, 3, size, size))
    return round(params, 3), round(counter.get_total_flops() / 1e9, 4)


def train(recipe: Recipe, pool: Pool, bank: TextBank, log: Any = print) -> dict[str, Any]:
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    idx = pool.select(recipe.mix)
    rows = [pool.rows[i] for i in idx]
    classes = sorted({r["synset"] for r in rows})
    class_of = {s: i for i, s in enumerate(classes)}
    labels = torch.tensor([class_of[r["synset"]] for r in rows])
    # class-level text targets [templates, classes, 384]
    per_class = [class_captions(pool, s) for s in classes]
    class_text = torch.stack(
        [bank.matrix([caps[t] for caps in per_class]) for t in range(len(CLASS_TEMPLATES))]
    )
    captions = [source_caption(r) for r in rows]
    caption_vecs = bank.matrix(captions)

    images = torch.from_numpy(pool.images[idx]).permute(0, 3, 1, 2)
    if recipe.image_size != images.shape[-1]:
        images = (
            F.interpolate(
                images.float(),
                size=recipe.image_size,
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
        )
    tower = ImageTower(recipe)
    params_m, gflops = measure(tower, recipe.image_size)
    tower.train()
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    decay = [p for n, p in tower.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in tower.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": 0.05},
            {"params": no_decay + [logit_scale], "weight_decay": 0.0},
        ],
        lr=recipe.lr,
    )
    steps = max(1, recipe.budget // BATCH)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))),
    )
    n = len(rows)
    order = rng.permutation(n)
    cursor, start, running = 0, time.time(), 0.0
    for step in range(steps):
        if cursor + BATCH > n:
            order, cursor = rng.permutation(n), 0
        batch = torch.from_numpy(order[cursor : cursor + BATCH])
        cursor += BATCH
        x = augment(normalize(images[batch]), gen)
        y = labels[batch]
        feats = tower(x)
        scale = logit_scale.exp().clamp(max=100)
        t = int(rng.integers(len(CLASS_TEMPLATES)))
        loss_class = F.cross_entropy(scale * feats @ class_text[t].T, y)
        logits = scale * feats @ caption_vecs[batch].T
        pos = (y[:, None] == y[None, :]).float()
        target = pos / pos.sum(1, keepdim=True)
        loss_caption = 0.5 * (
            -(target * F.log_softmax(logits, 1)).sum(1).mean()
            - (target * F.log_softmax(logits.T, 1)).sum(1).mean()
        )
        loss = loss_class + 0.5 * loss_caption
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if step % 50 == 0 or step == steps - 1:
            log(
                f"{recipe.id} step {step + 1}/{steps} loss {running:.3f} scale {scale.item():.1f} "
                f"{time.time() - start:.0f}s"
            )
    seconds = round(time.time() - start, 1)
    tower.eval()
    save_tower(tower, recipe, recipe.weights_file)
    return {
        "id": recipe.id,
        "arch": recipe.arch,
        "tag": recipe.tag,
        "weights": recipe.weights_file.name,
        "timm_model": recipe.timm_name,
        "timm_kwargs": {
            k: list(v) if isinstance(v, tuple) else v for k, v in recipe.timm_kwargs.items()
        },
        "image_size": recipe.image_size,
        "params_m": params_m,
        "gflops": gflops,
        "training_mix": recipe.mix,
        "mix_parts": list(MIXES[recipe.mix]) or ["all"],
        "train_images": n,
        "concepts": len(classes),
        "images_seen": steps * BATCH,
        "epochs": round(steps * BATCH / n, 1),
        "train_seconds": seconds,
        "final_loss": round(running, 3),
        "text_tower": "all-MiniLM-L6-v2 (frozen)",
        "seed": recipe.seed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mllzoo_minizoo.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--world", type=Path, default=Path("world"))
    parser.add_argument("--only", nargs="*", default=None, help="ARCH.TAG of the recipes to train")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every budget (e.g. 0.05 for a smoke run)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipes = [
        replace(r, budget=int(r.budget * args.scale))
        for r in RECIPES
        if args.only is None or f"{r.arch}.{r.tag}" in args.only
    ]
    t0 = time.time()
    pool = Pool(args.world)
    print(f"training pool: {len(pool.rows)} images, decoded in {time.time() - t0:.0f}s", flush=True)
    bank = TextBank()
    all_captions = [c for s in {r["synset"] for r in pool.rows} for c in class_captions(pool, s)]
    bank.need(all_captions + [source_caption(r) for r in pool.rows])
    print(
        f"{len(bank.vectors)} captions embedded with MiniLM in {time.time() - t0:.0f}s", flush=True
    )
    existing = (
        {m["id"]: m for m in json.loads(MODELS_JSON.read_text())} if MODELS_JSON.exists() else {}
    )
    for rec in recipes:
        existing[rec.id] = train(rec, pool, bank, log=lambda s: print(s, flush=True))
        ordered = [existing[r.id] for r in RECIPES if r.id in existing]
        MODELS_JSON.write_text(json.dumps(ordered, indent=1) + "\n")
    print(f"trained {len(recipes)} models in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
