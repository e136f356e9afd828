"""Pull throughput: ``mllzoo labels pull`` from a local server against a plain ``curl`` of the same files.

Publishes a registry's labels (default: the shipped registry, eight labels and its graph), serves the
folder with ``python -m http.server`` on 127.0.0.1, then, in the same run and from the same server,
times (median of ``--repeats``):

- ``curl``: one ``curl`` process fetching every file the index lists to disk (when ``curl`` is not on
  PATH, a plain urllib read loop stands in, and the output says so);
- ``mllzoo download``: the same files through :func:`mllzoo.store.download.fetch` (the network part of
  a pull: size-bounded reads, SHA-256 of every file, then the rename and a link);
- ``mllzoo labels pull``: the whole pull into a registry path that does not exist yet (index, downloads,
  checks, graph and labels imported, all in this process).

    .venv/bin/python benchmarks/pull_throughput.py [--registry registry.db] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", type=Path, default=ROOT / "registry.db")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from mllzoo.labeling.index import publish, pull
    from mllzoo.store import download
    from mllzoo.store.registry import Registry

    work = Path(tempfile.mkdtemp(prefix="mllzoo-pull-bench-"))
    os.environ["MLLZOO_CACHE_DIR"] = str(work / "cache")
    try:
        shutil.copyfile(args.registry, work / "pub.db")
        registry = Registry(work / "pub.db", create=False)
        publish(registry, work / "site", [])
        registry.close()
        index = json.loads((work / "site" / "index.json").read_text())
        files = [(e["file"], e["bytes"], e["sha256"]) for e in index["graphs"] + index["labels"]]
        total = sum(size for _, size, _ in files)

        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=work / "site",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(base + "index.json")
            out = work / "out"
            curl = shutil.which("curl")

            def baseline() -> None:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                if curl:
                    command = [curl, "-s", "-f"]
                    for name, _, _ in files:
                        command += ["-o", str(out / name), base + name]
                    subprocess.run(command, check=True)
                    return
                for name, _, _ in files:
                    with (
                        urllib.request.urlopen(base + name) as response,
                        open(out / name, "wb") as target,
                    ):
                        shutil.copyfileobj(response, target)

            def fetch_all() -> None:
                shutil.rmtree(download.download_dir(), ignore_errors=True)
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                for name, size, sha256 in files:
                    download.fetch(base + name, size, sha256, out / name, progress=False)

            def pull_all() -> None:
                target = work / "pulled" / "registry.db"
                shutil.rmtree(target.parent, ignore_errors=True)
                shutil.rmtree(download.download_dir(), ignore_errors=True)
                pull(target, base, [], progress=False)

            measured = [
                (
                    "curl" if curl else "urllib read loop (curl not found)",
                    median_seconds(baseline, args.repeats),
                ),
                ("mllzoo download (fetch + sha256)", median_seconds(fetch_all, args.repeats)),
                ("mllzoo labels pull (new registry)", median_seconds(pull_all, args.repeats)),
            ]
        finally:
            server.terminate()
            server.wait()
        reference = measured[0][1]
        print(
            f"{len(files)} files, {total / 1e6:.1f} MB, served by python -m http.server on "
            f"127.0.0.1; median of {args.repeats} runs"
        )
        print(f"{'client':<36} {'seconds':>8} {'MB/s':>8} {'vs baseline':>12}")
        for name, seconds in measured:
            print(
                f"{name:<36} {seconds:8.3f} {total / 1e6 / seconds:8.1f} "
                f"{reference / seconds:11.2f}x"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
