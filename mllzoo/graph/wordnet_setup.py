"""Lay out Debian's WordNet 3.0 (``wordnet-base``, ``wordnet-sense-index``) where NLTK reads it.

``nltk.download('wordnet')`` needs the network; these packages do not. Usage:
``python -m mllzoo.graph.wordnet_setup NLTK_DATA_DIR`` (``make wordnet`` does this).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DEBIAN_WORDNET = Path("/usr/share/wordnet")
FILES = (
    "data.noun",
    "data.verb",
    "data.adj",
    "data.adv",
    "index.noun",
    "index.verb",
    "index.adj",
    "index.adv",
    "noun.exc",
    "verb.exc",
    "adj.exc",
    "adv.exc",
    "index.sense",
    "cntlist.rev",
)
# The 45 lexicographer files in WordNet's order (lexnames(5WN)); NLTK needs them as `lexnames`.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
POS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def install(nltk_data: Path, source: Path = DEBIAN_WORDNET) -> Path:
    target = nltk_data / "corpora" / "wordnet"
    if (target / "lexnames").exists():
        return target
    missing = [name for name in FILES if not (source / name).exists()]
    if missing:
        raise SystemExit(
            f"WordNet files missing from {source} ({', '.join(missing)}): "
            "apt-get install wordnet-base wordnet-sense-index"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source / name, target / name)
    (target / "lexnames").write_text(
        "".join(f"{i:02d}\t{name}\t{POS[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))
    )
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mllzoo.graph.wordnet_setup", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "nltk_data",
        type=Path,
        metavar="NLTK_DATA_DIR",
        help="folder NLTK reads (set NLTK_DATA to it); WordNet goes to corpora/wordnet inside",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=DEBIAN_WORDNET,
        help=f"where the Debian WordNet files are [default: {DEBIAN_WORDNET}]",
    )
    args = parser.parse_args(argv)
    print(f"WordNet ready in {install(args.nltk_data, args.source)}")


if __name__ == "__main__":
    main()
