"""Build the concept world: a training pool, a sample set and target tasks, disjoint by content.

``python -m mllzoo_minizoo.world [--out world] [--tiny] [--seed 0]``. Deterministic for a seed.
The concept -> synset mapping comes only from the committed CSV tables next to this file.

Pools and their sources (the tasks' sources differ from the sample set's, as the paper's
targets differ from its ImageNet-based sample set):

- ``train/<synset>/``: Noto Color Emoji and Symbola renders, half of the openclipart files, digits in
  DejaVu Sans/Mono, the first half of scikit-learn's handwritten digits, words in DejaVu Sans/Mono,
  flat procedural textures. ``train/index.csv`` records each image's source and name for captions.
- ``samples/<synset>/``: other renders of the same emoji, the other half of openclipart, digits
  and words in DejaVu Sans Condensed, flat textures.
- ``tasks/<task>/<class>/``: Twemoji (pets, food, vehicles, expressions, flags, sports), the second
  half of scikit-learn's digits, words in DejaVu Serif, worn textures.

Every image is hashed on its decoded pixels; an image whose hash is already in another pool is
never written, so no target image reaches training or the sample set.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import shutil
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from . import render
from .sources import CLIPART_ROOT, environment, preflight, twemoji_tarball
from .tables import read_csv

HERE = Path(__file__).parent

SAMPLES_PER_NODE = 10
TASK_IMAGES_PER_CLASS = 24
DIGIT_TASK_PER_CLASS = 40
WORDS_TASK = (
    "cat",
    "dog",
    "house",
    "tree",
    "car",
    "sun",
    "moon",
    "fish",
    "bird",
    "book",
    "apple",
    "star",
)

TASKS: dict[str, dict[str, str]] = {
    "pets": {"domain": "animal", "task": "recognise the animal", "source": "twemoji"},
    "food": {"domain": "food", "task": "recognise the dish or fruit", "source": "twemoji"},
    "vehicles": {"domain": "vehicle", "task": "recognise the vehicle", "source": "twemoji"},
    "expressions": {
        "domain": "facial expression",
        "task": "recognise the emotion on the face",
        "source": "twemoji",
    },
    "flags": {
        "domain": "country flag",
        "task": "recognise the country of the flag",
        "source": "twemoji",
    },
    "sports": {"domain": "sport", "task": "recognise the sport or activity", "source": "twemoji"},
    "digits": {
        "domain": "handwritten digit",
        "task": "read the handwritten digit",
        "source": "sklearn-digits",
    },
    "words": {
        "domain": "word",
        "task": "read the word written in the image",
        "source": "dejavu-serif",
    },
    "textures": {
        "domain": "texture pattern",
        "task": "recognise the pattern",
        "source": "procedural-worn",
    },
}
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def pixel_hash(img: Image.Image) -> str:
    """Content hash of the decoded RGB pixels (independent of PNG encoder settings)."""
    img = img.convert("RGB")
    return hashlib.sha256(f"{img.size}".encode() + img.tobytes()).hexdigest()


@dataclass
class World:
    """Writes images into the pools and refuses any image already present in another pool."""

    root: Path
    owner: dict[str, str] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    per_folder: Counter = field(default_factory=Counter)
    train_index: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)

    def add(
        self,
        pool: str,
        folder: str,
        img: Image.Image,
        source: str = "",
        name: str = "",
        domain: str = "",
    ) -> bool:
        digest = pixel_hash(img)
        if digest in self.owner:
            self.rejected["cross-pool" if self.owner[digest] != pool else "duplicate"] += 1
            return False
        self.owner[digest] = pool
        directory = self.root / pool / folder
        directory.mkdir(parents=True, exist_ok=True)
        key = f"{pool}/{folder}"
        path = directory / f"{self.per_folder[key]:05d}.png"
        self.per_folder[key] += 1
        img.convert("RGB").save(path, optimize=False, compress_level=6)
        self.counts[pool.split("/")[0]] += 1
        if pool == "train":
            self.train_index.append(
                (str(path.relative_to(self.root / "train")), folder, source, name, domain)
            )
        return True

    def folder_count(self, pool: str, folder: str) -> int:
        return self.per_folder[f"{pool}/{folder}"]


# ----------------------------------------------------------------------------------------- sources
class Twemoji:
    """Twemoji PNGs read straight from the npm tarball (no extraction), with skin-tone variants."""

    def __init__(self, tarball: Path):
        self.tar = tarfile.open(tarball)
        members = {m.name: m for m in self.tar.getmembers()}
        self.members = {
            n.rsplit("/", 1)[1]: m for n, m in members.items() if "/img/twitter/64/" in n
        }
        meta = json.load(self.tar.extractfile(members["package/emoji.json"]))  # type: ignore[arg-type]
        self.variants: dict[str, list[str]] = {}
        for entry in meta:
            images = [entry["image"]] + [
                v["image"] for v in (entry.get("skin_variations") or {}).values()
            ]
            self.variants[entry["unified"]] = [i for i in images if i in self.members]

    def images(self, code: str) -> list[Image.Image]:
        out = []
        for name in self.variants.get(code, []):
            img = render.open_rgba(io.BytesIO(self.tar.extractfile(self.members[name]).read()))  # type: ignore[union-attr]
            if img is not None:
                out.append(img)
        return out


def lemma_word(synset: str) -> str:
    return synset.split(".")[0].replace("_", " ")


# ------------------------------------------------------------------------------------------- tasks
def build_tasks(
    world: World, rng: random.Random, twemoji: Twemoji | None, digits, tiny: bool
) -> dict[str, dict]:
    built: dict[str, dict] = {}
    per_class = 20 if tiny else TASK_IMAGES_PER_CLASS
    emoji_classes: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for row in read_csv("tasks_emoji.csv"):
        emoji_classes[row["task"]][row["class"]] = row["codes"].split()
    for task, meta in TASKS.items():
        classes: dict[str, int] = {}
        sources_per_class: dict[str, int] = {}
        if meta["source"] == "twemoji":
            if twemoji is None:
                continue
            for cls, codes in emoji_classes[task].items():
                drawings = [img for code in codes for img in twemoji.images(code)]
                sources_per_class[cls] = len(drawings)
                classes[cls] = _fill(
                    world,
                    f"tasks/{task}",
                    cls,
                    per_class,
                    rng,
                    lambda i, d=drawings: render.compose(d[i % len(d)], rng, augment=i >= len(d)),
                )
            card = (
                "Twemoji (CC-BY 4.0) renders; each class has "
                f"{min(sources_per_class.values())}-{max(sources_per_class.values())} source drawings "
                "(an emoji, its gendered and skin-tone variants), augmented to "
                f"{per_class} images per class with random scale, rotation, shift and background colour."
            )
        elif task == "digits":
            _, test = digits
            limit = 20 if tiny else DIGIT_TASK_PER_CLASS
            for label in range(10 if not tiny else 5):
                samples = [px for px, y in test if y == label][: limit * 2]
                cls = DIGIT_NAMES[label]
                classes[cls] = _fill(
                    world,
                    f"tasks/{task}",
                    cls,
                    limit,
                    rng,
                    lambda i, s=samples: render.sklearn_digit(
                        s[i % len(s)], rng, augment=i >= len(s) // 2
                    ),
                )
            card = (
                "scikit-learn's handwritten digits (8x8 scans of 43 writers), the second half of the data set "
                "(the first half is in the training pool); upsampled to 64x64; real images, not augmented "
                "unless a class ran short."
            )
        elif task == "words":
            words = WORDS_TASK[:5] if tiny else WORDS_TASK
            for word in words:
                classes[word] = _fill(
                    world,
                    f"tasks/{task}",
                    word,
                    per_class,
                    rng,
                    lambda i, w=word: render.compose(
                        render.text_glyph(
                            w, rng.choice(render.fonts(render.TASK_FONTS)), render.dark_color(rng)
                        ),
                        rng,
                        fill=0.92,
                    ),
                )
            card = (
                "Words rendered in DejaVu Serif typefaces (no model trains on a serif face; the sample set "
                "uses DejaVu Sans Condensed) in random dark colours on light backgrounds, with jitter."
            )
        elif task == "textures":
            patterns = render.PATTERNS[:5] if tiny else render.PATTERNS
            for pattern in patterns:
                classes[pattern] = _fill(
                    world,
                    f"tasks/{task}",
                    pattern,
                    per_class,
                    rng,
                    lambda i, p=pattern: render.texture(p, rng, style="worn"),
                )
            card = (
                "Procedurally drawn patterns in the 'worn' style (earthy low-contrast palette, larger period, "
                "blur and grain); training and sample images use the 'flat' style of the same patterns."
            )
        if not classes:
            continue
        info = {
            "domain": meta["domain"],
            "task": meta["task"],
            "source": meta["source"],
            "card": card,
        }
        task_dir = world.root / "tasks" / task
        (task_dir / "task.json").write_text(json.dumps(info, indent=1) + "\n")
        built[task] = {**info, "classes": classes}
    return built


def _fill(world: World, pool: str, folder: str, n: int, rng: random.Random, make) -> int:
    """Write ``n`` distinct images made by ``make(i)``; gives up after 4n tries."""
    written = 0
    for i in range(n * 4):
        if written >= n:
            break
        img = make(i)
        if img is not None and world.add(pool, folder, img):
            written += 1
    return written


# ------------------------------------------------------------------------- training and sample pools
def build_concepts(world: World, rng: random.Random, digits, tiny: bool) -> None:
    emoji = read_csv("concepts_emoji.csv")
    clipart = [] if tiny else read_csv("concepts_clipart.csv")
    if tiny:
        keep = {"Animals & Nature", "Food & Drink"}
        emoji = [r for r in emoji if r["category"] in keep][:40] + [
            r for r in emoji if r["category"] == "Flags"
        ][:10]
    extra = read_csv("concepts_extra.csv")

    n_noto_train, n_symbola_train = (1, 1) if tiny else (4, 2)
    for row in emoji:
        synset, name, domain = row["synset"], row["name"], row["category"]
        noto = render.noto_glyph(row["code"])
        if noto is not None:
            world.add(
                "train", synset, render.compose(noto, rng, augment=False), "noto", name, domain
            )
            for _ in range(n_noto_train - 1):
                world.add("train", synset, render.compose(noto, rng), "noto", name, domain)
        sym = render.symbola_glyph(row["code"], render.dark_color(rng))
        if sym is not None:
            for _ in range(n_symbola_train):
                world.add("train", synset, render.compose(sym, rng), "symbola", name, domain)
    for row in clipart:
        split = int(hashlib.sha1(row["path"].encode()).hexdigest(), 16) % 2
        if split == 0:
            img = render.open_rgba(CLIPART_ROOT / row["path"])
            if img is not None:
                for i in range(3):
                    world.add(
                        "train",
                        row["synset"],
                        render.compose(img, rng, augment=i > 0),
                        "clipart",
                        lemma_word(row["synset"]),
                        "clipart/" + row["folder"],
                    )

    digit_rows = [r for r in extra if r["source"] == "digit"]
    texture_rows = [r for r in extra if r["source"] == "texture"]
    train_digits, _ = digits
    for row in digit_rows:
        for font in render.fonts(render.TRAIN_FONTS):
            for _ in range(1 if tiny else 6):
                glyph = render.text_glyph(row["key"], font, render.dark_color(rng))
                world.add(
                    "train",
                    row["synset"],
                    render.compose(glyph, rng, fill=0.7),
                    "digit",
                    row["name"],
                    "digits",
                )
        label = int(row["key"])
        for px in [px for px, y in train_digits if y == label][: 5 if tiny else 10**6]:
            world.add(
                "train",
                row["synset"],
                render.sklearn_digit(px, rng),
                "handwritten",
                row["name"],
                "digits",
            )
    for row in texture_rows:
        for _ in range(8 if tiny else 60):
            world.add(
                "train",
                row["synset"],
                render.texture(row["key"], rng, "flat"),
                "texture",
                row["name"],
                "textures",
            )

    synsets = sorted({r["synset"] for r in emoji} | {r["synset"] for r in clipart})
    words = word_concepts(synsets, tiny)
    for synset, word in words.items():
        for font in render.fonts(render.TRAIN_FONTS)[: 2 if tiny else 5]:
            glyph = render.text_glyph(word, font, render.dark_color(rng))
            world.add("train", synset, render.compose(glyph, rng, fill=0.92), "word", word, "words")

    # the sample set: up to SAMPLES_PER_NODE images per node, from the same concepts in other draws
    sources: dict[str, list] = defaultdict(list)
    for row in emoji:
        sources[row["synset"]].append(("noto", row["code"]))
        sources[row["synset"]].append(("symbola", row["code"]))
    for row in clipart:
        if int(hashlib.sha1(row["path"].encode()).hexdigest(), 16) % 2 == 1:
            sources[row["synset"]].append(("clipart", row["path"]))
    for row in digit_rows:
        sources[row["synset"]].append(("digit", row["key"]))
    for row in texture_rows:
        sources[row["synset"]].append(("texture", row["key"]))
    for synset, word in words.items():
        sources[synset].append(("word", word))
    per_node = 4 if tiny else SAMPLES_PER_NODE
    for synset in sorted(sources):
        drawings = [
            d
            for d in (_sample_drawing(kind, key, rng) for kind, key in sources[synset])
            if d is not None
        ]
        if not drawings:
            continue
        for i in range(per_node * 3):
            if world.folder_count("samples", synset) >= per_node:
                break
            kind, fg = drawings[i % len(drawings)]
            img = (
                fg()
                if kind == "texture"
                else render.compose(fg, rng, fill=0.92 if kind == "word" else 0.86)
            )
            world.add("samples", synset, img)


def _sample_drawing(kind: str, key: str, rng: random.Random):
    if kind == "noto":
        glyph = render.noto_glyph(key)
    elif kind == "symbola":
        glyph = render.symbola_glyph(key, render.dark_color(rng))
    elif kind == "clipart":
        glyph = render.open_rgba(CLIPART_ROOT / key)
    elif kind in ("digit", "word"):
        glyph = render.text_glyph(
            key, rng.choice(render.fonts(render.SAMPLE_FONTS)), render.dark_color(rng)
        )
    elif kind == "texture":
        return kind, lambda: render.texture(key, rng, "flat")
    else:
        raise ValueError(kind)
    return None if glyph is None else (kind, glyph)


def word_concepts(synsets: list[str], tiny: bool) -> dict[str, str]:
    """Synsets whose lemma is one short word, rendered as text so that models learn to read."""
    words = {
        s: lemma_word(s)
        for s in synsets
        if lemma_word(s).isalpha() and 3 <= len(lemma_word(s)) <= 9
    }
    for word in WORDS_TASK:  # the words task's classes must be readable by some model
        match = next((s for s in synsets if lemma_word(s) == word), None)
        if match:
            words.setdefault(match, word)
    if tiny:
        words = dict(list(words.items())[:20])
    return words


def load_digits_split() -> tuple[list, list]:
    """scikit-learn's 1,797 handwritten digits split in two halves by index (train | task)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    rows = list(zip(data.data, data.target.tolist()))
    half = len(rows) // 2
    return rows[:half], rows[half:]


def synset_table(synsets: list[str], strict: bool) -> dict[str, dict[str, str]]:
    """Lemma, definition and wnid per synset, so that training captions need no WordNet."""
    try:
        from nltk.corpus import wordnet as wn

        table = {}
        for name in synsets:
            syn = wn.synset(name)
            table[name] = {
                "lemma": syn.lemmas()[0].name().replace("_", " "),
                "definition": syn.definition(),
                "wnid": f"n{syn.offset():08d}",
            }
        return table
    except LookupError:
        if strict:
            raise SystemExit(
                "WordNet is not installed where NLTK looks (NLTK_DATA); run `make wordnet`"
            ) from None
        return {}


def build(out: Path, seed: int = 0, tiny: bool = False, cache: Path = Path(".cache")) -> dict:
    """The world in ``out`` (replaced), after checking every source it reads (:mod:`.sources`)."""
    preflight(cache, tiny)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(seed)
    world = World(out)
    twemoji = None if tiny else Twemoji(twemoji_tarball(cache))  # type: ignore[arg-type]
    digits = load_digits_split()
    tasks = build_tasks(world, rng, twemoji, digits, tiny)
    build_concepts(world, rng, digits, tiny)

    with (out / "train" / "index.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "synset", "source", "name", "domain"])
        writer.writerows(world.train_index)
    train_nodes = sorted(p.name for p in (out / "train").iterdir() if p.is_dir())
    sample_nodes = sorted(p.name for p in (out / "samples").iterdir() if p.is_dir())
    table = synset_table(sorted(set(train_nodes) | set(sample_nodes)), strict=not tiny)
    (out / "synsets.json").write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")
    digests: dict[str, list[str]] = defaultdict(list)
    for digest, pool in world.owner.items():
        digests[pool].append(digest)
    manifest = {
        "seed": seed,
        "tiny": tiny,
        "image_size": render.SIZE,
        "train": {
            "images": world.counts["train"],
            "nodes": len(train_nodes),
            "sources": dict(Counter(row[2] for row in world.train_index)),
        },
        "samples": {"images": world.counts["samples"], "nodes": len(sample_nodes)},
        "tasks": {
            name: {
                "classes": len(t["classes"]),
                "images": sum(t["classes"].values()),
                "min_per_class": min(t["classes"].values()),
                "source": t["source"],
            }
            for name, t in tasks.items()
        },
        "rejected": dict(world.rejected),
        "digests": {
            pool: hashlib.sha256("".join(sorted(h)).encode()).hexdigest()
            for pool, h in sorted(digests.items())
        },
        "environment": environment(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mllzoo_minizoo.world", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("world"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny", action="store_true", help="a small world from Debian sources only, in seconds"
    )
    parser.add_argument("--cache", type=Path, default=Path(".cache"))
    parser.add_argument(
        "--check", action="store_true", help="only check that every source is present"
    )
    args = parser.parse_args(argv)
    if args.check:
        preflight(args.cache, args.tiny)
        print(json.dumps({"sources": "all present", "environment": environment()}, indent=1))
        return
    manifest = build(args.out, args.seed, args.tiny, args.cache)
    print(json.dumps({k: manifest[k] for k in ("train", "samples", "tasks", "rejected")}, indent=1))


if __name__ == "__main__":
    main()
