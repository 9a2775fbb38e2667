"""What the benchmark scripts share: the project on the import path and the run they measure.

Each script runs as ``python benchmarks/NAME.py`` from anywhere; it imports this module first.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the scripts import the project's packages
    sys.path.insert(0, str(ROOT))


def smoke() -> bool:
    """Whether the suite runs this script as a smoke test (``EDGE_RECIPES_SMOKE=1``, tests/test_benchmarks.py): the
    least work that runs every line once, one epoch, one data set; its figures mean nothing."""
    return os.environ.get("EDGE_RECIPES_SMOKE") == "1"


def run_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser whose first, optional argument is the run to measure."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("run_dir", nargs="?", help="a trained run (default: train the default recipe)")
    return parser


def prepare_run(run_dir: str | None, workspace: Path) -> Path:
    """The run to measure: the one given, or the default recipe (mlp on digits, seed 0) trained into
    ``workspace``."""
    from recipes.config import resolve_config
    from recipes.training import train

    if run_dir is not None:
        return Path(run_dir)
    print("training the default recipe (mlp on digits, seed 0) ...", flush=True)
    return train(resolve_config(None, {"out": str(workspace)}, []), report=None).run_dir
