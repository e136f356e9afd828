"""How a sample folder names its classes: by WordNet (``dog.n.01``, wnids ``n02084071``: ImageNet's
train set, -Sketch, -R, -A) or by ImageNet-1k class index (``0`` .. ``999``: ImageNet-V2), read as
wnids through a shipped class-index table.

The table is the standard ImageNet-1k order, the sorted list of its 1000 wnids, as
:data:`TABLE_SOURCE` ships it (``mllzoo/data/imagenet1k_wnids.txt`` names it in its header).
"""

from __future__ import annotations

import functools
from importlib import resources

CLASS_INDEX, WORDNET = "imagenet-1k class index", "wordnet"
TABLE = "data/imagenet1k_wnids.txt"
TABLE_SOURCE = "timm 1.0.31 (timm/data/_info/imagenet_synsets.txt)"
N_CLASSES = 1000


@functools.cache
def imagenet1k_wnids() -> tuple[str, ...]:
    """The wnid of each ImageNet-1k class, by class index."""
    text = resources.files("mllzoo").joinpath(TABLE).read_text("utf-8")
    wnids = tuple(line for line in text.splitlines() if line and not line.startswith("#"))
    if len(wnids) != N_CLASSES or list(wnids) != sorted(wnids):
        raise RuntimeError(f"{TABLE} is damaged: reinstall mllzoo")  # a packaging fault, not input
    return wnids


def is_class_index(name: str) -> bool:
    """``0`` .. ``999`` as ImageNet-V2 writes them (no leading zeros)."""
    return name.isdigit() and name == str(int(name)) and int(name) < N_CLASSES


def detect(folder_names: list[str]) -> str:
    """:data:`CLASS_INDEX` when every class folder is an ImageNet-1k class index, else :data:`WORDNET`."""
    names = [name for name in folder_names if not name.startswith(".")]
    return CLASS_INDEX if names and all(is_class_index(name) for name in names) else WORDNET


def wordnet_name(layout: str, folder_name: str) -> str:
    """The name to look up in WordNet: the folder's own, or the wnid of its class index."""
    if layout == CLASS_INDEX:
        return imagenet1k_wnids()[int(folder_name)]
    return folder_name


def describe(layout: str, folders: int) -> str:
    """One line on what a root's folders were read as."""
    if layout == CLASS_INDEX:
        return (
            f"{folders} ImageNet-1k class-index folders (0..999, the ImageNet-V2 layout), read as "
            f"wnids by the class-index table of {TABLE_SOURCE}"
        )
    return f"{folders} WordNet folders (synset names such as dog.n.01, or wnids such as n02084071)"
