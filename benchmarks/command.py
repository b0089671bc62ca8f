"""How fast the ``aezoo`` command is on your images: ``python -m benchmarks.command``.

For each variant, interleaved ``--repeats`` times: ``aezoo reconstruct`` on one image (the
first image's latency, start-up included: Python, TensorFlow, the model) and on ``--images``
PNG files (MNIST test digits, inverted and enlarged 4x, so every image goes through the whole
preprocessing). Prints a markdown table for reports/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aezoo.data import load_prepared


def write_pngs(test_images: np.ndarray, folder: Path) -> list[Path]:
    """Each image dark on light, enlarged 4x (112x112), as PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(test_images):
        path = folder / f"{index:05d}.png"
        Image.fromarray(255 - image).resize((112, 112), Image.Resampling.BILINEAR).save(path)
        paths.append(path)
    return paths


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", nargs="+", default=["dense16", "conv"])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("data/prepared/clean.npz"))
    args = parser.parse_args(argv)
    test = load_prepared(args.data)["test"].x[: args.images]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        paths = write_pngs(test, work / "images")
        aezoo = [sys.executable, "-m", "aezoo", "reconstruct"]
        one: dict[str, list[float]] = {name: [] for name in args.variants}
        many: dict[str, list[float]] = {name: [] for name in args.variants}
        for repeat in range(args.repeats):
            for name in args.variants:
                out = ["--out", str(work / "out")]
                one[name].append(timed([*aezoo, name, str(paths[0]), *out]))
                many[name].append(timed([*aezoo, name, str(work / "images"), *out]))
                print(f"repeat {repeat + 1}, {name}: 1 image {one[name][-1]:.2f} s, "
                      f"{len(paths):,} images {many[name][-1]:.2f} s", file=sys.stderr)  # fmt: skip
    print(f"| variant | first image, start-up included | {len(paths):,} images | images/s "
          "| images/s after start-up |\n|---|---:|---:|---:|---:|")  # fmt: skip
    for name in args.variants:
        first, total = statistics.median(one[name]), statistics.median(many[name])
        after = (len(paths) - 1) / max(total - first, 1e-9)
        print(f"| {name} | {first:.2f} s | {total:.2f} s | {len(paths) / total:,.0f} "
              f"| {after:,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
