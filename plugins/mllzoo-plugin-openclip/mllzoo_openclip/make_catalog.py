"""Generate ``catalog.json`` from the installed open_clip: ``python -m mllzoo_openclip.make_catalog``.

Per ``(arch, tag)`` of ``open_clip.list_pretrained()`` this records what registration needs without
torch: parameters and GFLOPs measured on the ``meta`` device (no weights, no memory; GFLOPs count one
image at the model's size plus one text of its context length, a multiply-add as 2, which is the
convention of open_clip's published profile), image size, preprocessing, licence, weights origin,
open_clip's published ImageNet zero-shot top-1, and membership of the MLL benchmark hub.

Architectures whose text tower needs a Hugging Face config (RoBERTa, XLM-R, NLLB) cannot be built
offline; they take open_clip's published size and FLOPs instead, and say so in ``extra``.
Set ``HF_HUB_OFFLINE=1`` when the hub is unreachable so those fail at once instead of retrying.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from mllzoo import ModelSpec, write_catalog

from .catalog import is_eva

RESULTS = "openclip_results.csv"  # in mllzoo_openclip/data: see data/README.md
DEFAULT_HUB_DIR = Path(__file__).resolve().parent / "data"  # see data/README.md
HUB = "mll49"

# Weights licences as their publishers state them (model cards, repositories); UNKNOWN where unsure.
UNKNOWN = (
    "unknown"  # said outright, so a user sees it; the conformance check refuses a missing licence
)
_LICENCE_BY_TAG_PREFIX = (
    ("openai", "MIT"),  # github.com/openai/CLIP
    ("metaclip_", "CC-BY-NC-4.0"),  # facebook/metaclip model cards
    ("dfn2b", "apple-ascl"),  # apple/DFN*-CLIP model cards
    ("dfn5b", "apple-ascl"),
    ("webli", "Apache-2.0"),  # google big_vision SigLIP / SigLIP 2
    ("merged2b", "MIT"),  # BAAI EVA-CLIP
    ("laion", "MIT"),  # LAION / open_clip model cards (laion400m, laion2b, laion5b, aesthetic)
    ("frozen_laion", "MIT"),
    ("datacomp_", "MIT"),  # DataComp / CommonPool model cards
    ("commonpool", "MIT"),
    ("cc12m", "MIT"),  # trained by open_clip
    ("yfcc15m", "MIT"),
    ("mscoco_finetuned", "MIT"),
)


def licence(arch: str, tag: str) -> str:
    """The weights' licence by tag family (CLIPA's and NLLB-CLIP's by architecture)."""
    if arch.startswith("nllb-clip"):
        return "CC-BY-NC-4.0"  # visheratin/nllb-clip model cards
    if "CLIPA" in arch:
        return UNKNOWN
    for prefix, name in _LICENCE_BY_TAG_PREFIX:
        if tag.startswith(prefix):
            return name
    return UNKNOWN


def published_results() -> dict[tuple[str, str], dict[str, float]]:
    """open_clip's published params (M), GFLOPs and ImageNet top-1, by ``(arch, tag)``."""
    text = (
        resources.files("mllzoo_openclip")
        .joinpath("data")
        .joinpath(RESULTS)
        .read_text(encoding="utf-8")
    )
    return {
        (row["name"], row["pretrained"]): {
            "params_m": float(row["params (M)"]),
            "gflops": float(row["FLOPs (B)"]),
            "imagenet_top1": float(row["ImageNet 1k"]),
        }
        for row in csv.DictReader(text.splitlines())
    }


def hub_members(hub_dir: Path) -> tuple[set[str], dict[str, dict[str, float]]]:
    """The MLL benchmark's model list and the facts its authors published for each (read, not copied)."""
    names = {
        line.strip()
        for line in (hub_dir / "mll49-models.txt").read_text().splitlines()
        if line.strip()
    }
    with open(hub_dir / "mll49-model-info.csv", newline="") as handle:
        info = {
            f"{row['name']}.{row['pretrained']}": {
                "params_m": float(row["params (M)"]),
                "gflops": float(row["FLOPs (B)"]),
                "imagenet_top1": float(row["ImageNet"]),
            }
            for row in csv.DictReader(handle)
        }
    return names, info


def measure(arch: str, model_cfg: dict[str, Any] | None = None, places: int = 2) -> dict[str, Any]:
    """Params (M), GFLOPs (``places`` decimals), image size and context length of ``arch`` (or of the
    architecture ``model_cfg`` describes, a user's own), built without weights."""
    import open_clip
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .loading import open_clip_name

    cfg = model_cfg or open_clip.get_model_config(arch)
    size = cfg["vision_cfg"].get("image_size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    context = cfg["text_cfg"].get("context_length", 77)
    facts: dict[str, Any] = {"image_size": max(size), "context_length": context}
    try:
        with (
            torch.device("meta"),
            warnings.catch_warnings(),
            open_clip_name(arch, model_cfg) as name,
        ):
            warnings.simplefilter("ignore")
            model = open_clip.create_model(name, pretrained=None, device="meta")
            model.requires_grad_(False)  # the flop counter's module tracker wants no grads
            counter = FlopCounterMode(display=False)
            with counter:
                model.encode_image(torch.zeros(1, 3, *size))
                model.encode_text(torch.zeros(1, context, dtype=torch.long))
    except Exception as exc:
        facts["measure_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        return facts
    facts["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, places)
    facts["gflops"] = round(counter.get_total_flops() / 1e9, places)
    return facts


def build(family: str, owns: Callable[[str], bool], hub_dir: Path) -> list[ModelSpec]:
    """A spec per ``(arch, tag)`` that open_clip lists and ``owns(arch)`` accepts."""
    import open_clip

    hub, hub_info = hub_members(hub_dir)
    published = published_results()
    measured: dict[str, dict[str, Any]] = {}
    specs = []
    for arch, tag in open_clip.list_pretrained():
        if not owns(arch):
            continue
        if arch not in measured:
            print(f"measuring {arch}", file=sys.stderr)
            measured[arch] = measure(arch)
        facts = measured[arch]
        pcfg = open_clip.get_pretrained_cfg(arch, tag)
        known = published.get((arch, tag), {})
        extra: dict[str, Any] = {
            "context_length": facts["context_length"],
            "preprocess": {
                key: pcfg[key]
                for key in ("mean", "std", "interpolation", "resize_mode")
                if key in pcfg
            },
        }
        params_m, gflops = facts.get("params_m"), facts.get("gflops")
        if params_m is None and known:
            params_m, gflops = known["params_m"], known["gflops"]
            extra["size_source"] = (
                "open_clip docs/openclip_results.csv (architecture not buildable offline)"
            )
        if f"{arch}.{tag}" in hub_info:
            extra[HUB] = hub_info[f"{arch}.{tag}"]
        source = (
            "hf-hub:" + pcfg["hf_hub"].rstrip("/")
            if pcfg.get("hf_hub")
            else pcfg.get("url") or None
        )
        specs.append(
            ModelSpec(
                family=family,
                arch=arch,
                tag=tag,
                params_m=params_m,
                gflops=gflops,
                image_size=facts["image_size"],
                license=licence(arch, tag),
                source=source,
                imagenet_top1=known.get("imagenet_top1"),
                hubs=(HUB,) if f"{arch}.{tag}" in hub else (),
                extra=extra,
            )
        )
    return specs


def main(
    family: str = "open_clip",
    owns: Callable[[str], bool] = lambda arch: not is_eva(arch),
    package: str = "mllzoo_openclip",
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(
        description=f"Write {package}/catalog.json from open_clip.list_pretrained()."
    )
    parser.add_argument(
        "--hub-dir",
        type=Path,
        default=DEFAULT_HUB_DIR,
        help="folder with mll49-models.txt and mll49-model-info.csv [default: the package's data folder]",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(str(resources.files(package).joinpath("catalog.json")))
    )
    args = parser.parse_args(argv)
    specs = build(family, owns, args.hub_dir.resolve())
    write_catalog(specs, args.out)
    print(
        f"wrote {len(specs)} models ({sum(HUB in s.hubs for s in specs)} in {HUB}) to {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
