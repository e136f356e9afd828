"""Every source the world builder reads, checked before it builds anything.

Without this, a missing source changes the world silently: the builder skips openclipart when its
folder is absent and falls back to DejaVu Sans when a typeface is missing, so the sample set comes
out partial and no longer matches the graph the shipped labels were made on. One seeded generator
and the cross-pool duplicate check run through the whole build, so every source (the tasks' Twemoji
included) shapes the sample set. :func:`preflight` names each missing source with the command that
installs it; :func:`environment` records the versions that decide the bytes of every image.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import render
from .tables import read_csv

TWEMOJI_PACKAGE = "emoji-datasource-twitter@16.0.0"
TWEMOJI_TARBALL = "emoji-datasource-twitter-16.0.0.tgz"
TWEMOJI_SHA1 = "e2bd39a8acb77e158106f8249dd7b4cd93fa1b14"  # the npm registry's dist.shasum
CLIPART_ROOT = Path("/usr/share/openclipart/png")
DEBIAN_PACKAGES = (
    "fonts-noto-color-emoji",
    "fonts-symbola",
    "fonts-dejavu-core",
    "fonts-dejavu-extra",
    "openclipart-png",
    "wordnet-base",
)
CORE_DEJAVU = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
)  # the rest of the typefaces are in fonts-dejavu-extra


@dataclass
class Source:
    what: str
    present: Callable[[], bool]
    install: str
    tiny: bool = False  # the tiny world (tests) needs it too


def _fonts_present(names) -> bool:
    return all((render.DEJAVU / name).exists() for name in names)


def _clipart_present() -> bool:

    return all((CLIPART_ROOT / row["path"]).is_file() for row in read_csv("concepts_clipart.csv"))


def _wordnet_present() -> bool:
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
    except (ImportError, LookupError):
        return False
    return True


def _module(name: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(name) is not None


def sources(cache: Path) -> list[Source]:
    extra = sorted(
        set(render.TRAIN_FONTS + render.SAMPLE_FONTS + render.TASK_FONTS) - set(CORE_DEJAVU)
    )
    apt = "sudo apt-get install"
    return [
        Source(
            f"Noto Color Emoji ({render.NOTO})",
            render.NOTO.exists,
            f"{apt} fonts-noto-color-emoji",
            tiny=True,
        ),
        Source(
            f"Symbola ({render.SYMBOLA})", render.SYMBOLA.exists, f"{apt} fonts-symbola", tiny=True
        ),
        Source(
            f"DejaVu Sans, Mono and Serif ({render.DEJAVU})",
            lambda: _fonts_present(CORE_DEJAVU),
            f"{apt} fonts-dejavu-core",
            tiny=True,
        ),
        Source(
            f"DejaVu Condensed, Oblique and Italic faces ({render.DEJAVU})",
            lambda: _fonts_present(extra),
            f"{apt} fonts-dejavu-extra",
        ),
        Source(
            f"the openclipart PNGs named in concepts_clipart.csv ({CLIPART_ROOT})",
            _clipart_present,
            f"{apt} openclipart-png",
        ),
        Source(
            f"Twemoji: npm {TWEMOJI_PACKAGE}, sha1 {TWEMOJI_SHA1} ({cache / 'npm' / TWEMOJI_TARBALL})",
            lambda: twemoji_tarball(cache) is not None,
            f"install npm (it fetches the tarball once), or run `npm pack {TWEMOJI_PACKAGE}` in "
            f"{cache / 'npm'} on a machine with network access and copy it here",
        ),
        Source(
            "WordNet 3.0 for NLTK (NLTK_DATA)",
            _wordnet_present,
            "make wordnet (Debian wordnet-base and wordnet-sense-index, no network)",
        ),
        Source(
            "scikit-learn (its bundled handwritten digits)",
            _module("sklearn"),
            "pip install scikit-learn",
            tiny=True,
        ),
        Source(
            "fontTools (Symbola's character map)",
            _module("fontTools"),
            "pip install fonttools",
            tiny=True,
        ),
    ]


def twemoji_tarball(cache: Path) -> Path | None:
    """The pinned npm tarball in the cache, fetched with ``npm pack`` when missing; None when it cannot
    be had. A cached tarball with another checksum is refused, never used."""
    target = cache / "npm" / TWEMOJI_TARBALL
    if not target.exists() and shutil.which("npm") is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", TWEMOJI_PACKAGE, "--silent"], cwd=target.parent, capture_output=True
        )
    if not target.exists():
        return None
    digest = hashlib.sha1(target.read_bytes()).hexdigest()
    if digest != TWEMOJI_SHA1:
        raise SystemExit(
            f"{target} has sha1 {digest}, not {TWEMOJI_SHA1} (npm {TWEMOJI_PACKAGE}): delete it"
        )
    return target


def preflight(cache: Path, tiny: bool) -> None:
    """Stop before building, naming every missing source and how to get it."""
    missing = [s for s in sources(cache) if (s.tiny or not tiny) and not s.present()]
    if missing:
        lines = "\n".join(f"  - {s.what}: {s.install}" for s in missing)
        raise SystemExit(
            f"cannot build the {'tiny ' if tiny else ''}world, {len(missing)} source(s) missing "
            f"(nothing was written):\n{lines}"
        )


def environment() -> dict[str, str | None]:
    """Versions that decide the bytes of the images: the Debian packages, Pillow and its libraries."""
    import numpy
    from PIL import __version__ as pillow
    from PIL import features

    versions: dict[str, str | None] = {}
    for package in DEBIAN_PACKAGES:
        try:
            result = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
            )
            versions[package] = result.stdout.strip() or None
        except OSError:  # not a Debian system
            versions[package] = None
    return {
        **versions,
        "pillow": pillow,
        "freetype2": features.version("freetype2"),
        "zlib": features.version("zlib"),
        "numpy": numpy.__version__,
        "twemoji_sha1": TWEMOJI_SHA1,
    }
