"""The world's tables shipped beside this module (concepts, tasks): read by the builder and by the
source checks alike, so neither imports the other."""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).parent


def read_csv(name: str) -> list[dict[str, str]]:
    with (HERE / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
