"""One process of a distributed search: the keras-tuner chief that serves the oracle, or a worker that trains trials.

:mod:`tuning.distributed` starts and supervises these processes on one machine; on other machines start more
workers by hand (see :mod:`tuning.distributed`). Which one a process is, and where the chief listens, come from
``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from edge.device.errors import UserError


def exit_with_parent() -> None:
    """End this process when the process that started it is gone (no orphaned chief or worker)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_process(tune_dir: Path, round_number: int, threads: int) -> None:
    """Be the chief or a worker (by ``KERASTUNER_TUNER_ID``) of a round of the search in ``tune_dir``."""
    from recipes.backend import import_keras
    from recipes.input_pipeline import prepare_data
    from tuning.keras_tuner_patches import serve_oracle
    from tuning.search import SearchData, load_settings, read_space, round_tuner, search

    settings = load_settings(tune_dir)
    space = read_space(settings, round_number)
    data = SearchData(settings.base, prepare_data(settings.base))
    import_keras(settings.base.seed)
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    tuner = round_tuner(settings, data, round_number, space, report=lambda line: print(line, flush=True))
    if os.environ.get("KERASTUNER_TUNER_ID") == "chief":
        tuner.save()
        serve_oracle(tuner.oracle, os.environ["KERASTUNER_ORACLE_IP"], int(os.environ["KERASTUNER_ORACLE_PORT"]))
    else:
        search(tuner)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tuning.worker`` (one chief or worker process)."""
    parser = argparse.ArgumentParser(
        prog="python -m tuning.worker",
        description="Run one keras-tuner chief or worker of a search; KERASTUNER_TUNER_ID, "
        "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT say which and where (see tuning/distributed.py).",
    )
    parser.add_argument("--tune-dir", type=Path, required=True, help="the search's folder, runs/tune/<name>")
    parser.add_argument("--round", type=int, default=1, help="the coarse-to-fine round to run")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    parser.add_argument("--supervised", action="store_true", help="exit when the starting process is gone")
    args = parser.parse_args(argv)
    for variable in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        if not os.environ.get(variable):
            print(f"error: set {variable} (see python -m tuning.worker --help)", file=sys.stderr)
            return 2
    if not (args.tune_dir / "search.json").is_file():
        print(f"error: {args.tune_dir} has no search.json; start the search with python cli.py tune", file=sys.stderr)
        return 2
    if args.supervised:
        exit_with_parent()
    try:
        run_process(args.tune_dir, args.round, args.threads)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
