"""A recommend answered by `mllzoo serve` against the same recommend from a fresh `mllzoo recommend --json`.

Starts a real `mllzoo serve` on the shipped registry.db, asks it --repeats times for CIFAR-100's 100 class
names (recommend.json, each time a class list it has not seen, so no class-vector reuse inside the server;
an embedding cache of its own, warm for both), and times as many fresh CLI runs of the same lists with the
cache warm: the median of each and their ratio. Both answers are checked to be the same document.

    .venv/bin/python benchmarks/web_latency.py [--repeats 5]    (needs pip install 'mllzoo[web]')
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "registry.db"
CIFAR = ROOT / "benchmarks" / "data" / "mll-classnames" / "CIFAR100.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    names = [line for line in CIFAR.read_text().splitlines() if line.strip()][:100]
    lists = [
        names[i:] + names[:i] for i in range(args.repeats)
    ]  # the same classes in another order each time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tempfile.mkdtemp(prefix="mllzoo-web-latency-")  # never the user's own cache
    os.environ["MLLZOO_CACHE_DIR"] = cache  # for the server and every CLI run below
    server = subprocess.Popen(
        [sys.executable, "-m", "mllzoo", "--registry", str(REGISTRY), "serve", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/-/mllzoo/recommend.json?"
    try:
        while True:
            try:
                urllib.request.urlopen(url + urlencode({"classes": "dog"}), timeout=60).read()
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit("mllzoo serve did not start")
                time.sleep(0.3)
        with tempfile.TemporaryDirectory() as folder:
            files = []
            for i, classes in enumerate(lists):
                files.append(Path(folder) / f"classes-{i}.txt")
                files[-1].write_text("\n".join(classes) + "\n")
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "mllzoo",
                        "--registry",
                        str(REGISTRY),
                        "recommend",
                        str(files[-1]),
                        "--json",
                    ],
                    capture_output=True,
                    check=True,
                )  # warms the cache
            web, cli = [], []
            for classes, file in zip(lists, files):
                start = time.perf_counter()
                answer = urllib.request.urlopen(
                    url + urlencode({"classes": "\n".join(classes)}), timeout=120
                ).read()
                web.append(time.perf_counter() - start)
                start = time.perf_counter()
                printed = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "mllzoo",
                        "--registry",
                        str(REGISTRY),
                        "recommend",
                        str(file),
                        "--json",
                    ],
                    capture_output=True,
                    check=True,
                ).stdout
                cli.append(time.perf_counter() - start)
                assert answer == printed, "the server's document differs from the CLI's"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(cache, ignore_errors=True)
    print(
        f"100 classes (CIFAR-100), shipped registry, {args.repeats} runs each, embedding cache warm:"
    )
    print(f"  mllzoo serve, recommend.json  median {median(web):.3f} s (best {min(web):.3f} s)")
    print(f"  fresh mllzoo recommend --json median {median(cli):.3f} s (best {min(cli):.3f} s)")
    print(f"  the server answers {median(cli) / median(web):.1f}x faster")


if __name__ == "__main__":
    main()
