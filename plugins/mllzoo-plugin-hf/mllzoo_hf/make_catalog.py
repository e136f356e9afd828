"""Generate ``mllzoo_hf/catalog.json``: ``python -m mllzoo_hf.make_catalog``.

Each curated Hub checkpoint holds the same weights as an open_clip model (converted by its publisher),
so its size, GFLOPs, image size and ImageNet top-1 are cited from that twin in the open_clip plugin's
catalogue (needs ``mllzoo-plugin-openclip`` installed when generating, not when using this plugin).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from mllzoo import read_catalog, write_catalog

from .catalog import hub_spec

# (Hub repository, its open_clip twin, the licence its model card states)
CURATED = (
    ("openai/clip-vit-base-patch32", "ViT-B-32.openai", "MIT"),
    ("openai/clip-vit-base-patch16", "ViT-B-16.openai", "MIT"),
    ("openai/clip-vit-large-patch14", "ViT-L-14.openai", "MIT"),
    ("openai/clip-vit-large-patch14-336", "ViT-L-14-336.openai", "MIT"),
    ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "ViT-B-32.laion2b_s34b_b79k", "MIT"),
    ("laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "ViT-L-14.laion2b_s32b_b82k", "MIT"),
    ("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "ViT-H-14.laion2b_s32b_b79k", "MIT"),
    ("google/siglip-base-patch16-224", "ViT-B-16-SigLIP.webli", "Apache-2.0"),
    ("google/siglip-base-patch16-256", "ViT-B-16-SigLIP-256.webli", "Apache-2.0"),
    ("google/siglip-large-patch16-384", "ViT-L-16-SigLIP-384.webli", "Apache-2.0"),
    ("google/siglip-so400m-patch14-384", "ViT-SO400M-14-SigLIP-384.webli", "Apache-2.0"),
)


def main() -> None:
    twins = {f"{spec.arch}.{spec.tag}": spec for spec in read_catalog("mllzoo_openclip")}
    specs = []
    for repo, twin_name, licence in CURATED:
        twin = twins[twin_name]
        specs.append(
            hub_spec(
                repo,
                params_m=twin.params_m,
                gflops=twin.gflops,
                image_size=twin.image_size,
                license=licence,
                imagenet_top1=twin.imagenet_top1,
                extra={"metadata_from": f"open_clip/{twin_name}"},
            )
        )
    out = Path(str(resources.files("mllzoo_hf").joinpath("catalog.json")))
    write_catalog(specs, out)
    print(f"wrote {len(specs)} models to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
