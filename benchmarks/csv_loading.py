"""How fast, and in how much memory, does a large numeric CSV load?

One seeded CSV (``--rows`` rows of ``--columns`` float features written with 6 significant digits, then an
integer ``label`` column), loaded three ways, each in a fresh child process so that its peak resident memory
(``ru_maxrss``) is its own:

- ours: ``recipes.data.load_dataset(path)`` (float32 features, labels encoded, every cell checked)
- pandas: a bare ``pandas.read_csv(path)`` (float64 columns, nothing checked)
- numpy: ``numpy.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)``

Each child also reports its resident memory after its imports, so the table shows the peak both whole and
above that floor, and that increase as a multiple of the final float32 feature array (rows x columns x 4 bytes).
The physical limit is pandas' own parse: ours is that parse plus a float32 copy and checks, so the time ratio
to pandas cannot go below 1.0, and memory cannot go below 1x the float32 array.

Usage: python benchmarks/csv_loading.py [--rows 640000] [--columns 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import common
import numpy as np

# Each child: imports, notes its resident memory, loads, and prints seconds and both memory figures (KiB).
CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
{imports}
floor = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
started = time.perf_counter()
{load}
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "floor_kib": floor}}))
"""

LOADERS = {
    "ours: recipes.data.load_dataset": (
        "import pandas\nfrom recipes.data import load_dataset",
        "data = load_dataset({path!r}); assert data.x.dtype == np.float32",
    ),
    "bare pandas.read_csv": ("import pandas", "frame = pandas.read_csv({path!r})"),
    "numpy.loadtxt (float32)": ("", "x = np.loadtxt({path!r}, delimiter=',', skiprows=1, dtype=np.float32)"),
}


def write_csv(path: Path, rows: int, columns: int, seed: int) -> None:
    """A numeric CSV: ``columns`` float features with 6 significant digits and an integer label of 5 classes."""
    generator = np.random.default_rng(seed)
    header = ",".join([*(f"f{index}" for index in range(columns)), "label"])
    with path.open("w") as handle:
        handle.write(header + "\n")
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            x = generator.normal(0.0, 10.0, size=(count, columns))
            labels = generator.integers(0, 5, size=(count, 1))
            np.savetxt(handle, np.hstack([x, labels]), fmt=["%.6g"] * columns + ["%d"], delimiter=",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=640_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs per loader; the median time is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workspace:
        path = Path(workspace) / "large.csv"
        write_csv(path, args.rows, args.columns, args.seed)
        array_mib = args.rows * args.columns * 4 / 2**20
        print(f"{args.rows:,} rows x {args.columns} features + label: {path.stat().st_size / 2**20:.1f} MiB of text, ")
        print(f"final float32 array {array_mib:.1f} MiB; median of {args.repeats} runs, peak = largest run\n")
        results = {}
        for name, (imports, load) in LOADERS.items():
            runs = [_alone_run(imports, load, path) for _ in range(args.repeats)]
            results[name] = {
                "seconds": statistics.median(run["seconds"] for run in runs),
                "peak_kib": max(run["peak_kib"] for run in runs),
                "floor_kib": min(run["floor_kib"] for run in runs),
            }
    pandas_seconds = results["bare pandas.read_csv"]["seconds"]
    print("| loader | seconds | / pandas | peak RSS MiB | above imports MiB | above imports / float32 array |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, result in results.items():
        peak, above = result["peak_kib"] / 1024, (result["peak_kib"] - result["floor_kib"]) / 1024
        print(
            f"| {name} | {result['seconds']:.2f} | {result['seconds'] / pandas_seconds:.2f} | {peak:.0f} | "
            f"{above:.0f} | {above / array_mib:.2f}x |"
        )


def _alone_run(imports: str, load: str, path: Path) -> dict[str, float]:
    """One loader measured in a child of its own wrapper process, so ``ru_maxrss`` is that child's alone."""
    code = CHILD.format(root=str(common.ROOT), imports=imports, load=load.format(path=str(path)))
    wrapper = (
        "import json, resource, subprocess, sys\n"
        f"out = subprocess.run([sys.executable, '-c', {code!r}], check=True, capture_output=True, text=True).stdout\n"
        "print(json.dumps({**json.loads(out), 'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    return json.loads(
        subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True).stdout
    )


if __name__ == "__main__":
    main()
