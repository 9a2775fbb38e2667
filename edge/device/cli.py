"""The device's command line: ``python predict.py MODEL --input FILE`` in an export bundle, which prints what
``python cli.py predict`` prints, and ends as ``cli.py`` does (:mod:`edge.device.process`): a mistake, a file it may
not read or a full disk is one ``error:`` line on stderr and exit status 2; Ctrl-C and SIGTERM one line and 130 or
143; a reader that stops early (``| head``) ends it quietly."""

from __future__ import annotations

import argparse
import os
import sys

from edge.device.predictions import predict_file, prediction_report
from edge.device.process import disk_full, handle_sigterm, one_line_errors


def main(argv: list[str] | None = None) -> int:
    """``python predict.py MODEL --input FILE [--top-k K] [--threads N] [--json]``: the export bundle's command,
    printing what ``python cli.py predict`` prints (a mistake: one ``error:`` line on stderr, status 2)."""
    parser = argparse.ArgumentParser(description="Run an exported model with LiteRT and numpy (no TensorFlow).")
    parser.add_argument("model", help="a .tflite file of this export (its manifest.json beside it)")
    parser.add_argument(
        "--input", "-i", required=True, help="a .csv, .npy, .npz, .ts, image or .wav file of raw inputs"
    )
    parser.add_argument("--top-k", type=int, default=3, help="classes shown per example (classifiers)")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    options = parser.parse_args(argv)
    handle_sigterm()
    try:
        with one_line_errors(lambda error: disk_full(error, "send the output elsewhere"), after_signal="stopped"):
            model, predictions = predict_file(options.model, options.input, options.top_k, options.threads)
            text, warning = prediction_report(model, predictions, options.json)
            if warning:
                print(warning, file=sys.stderr)
            print(text, flush=True)
    except BrokenPipeError:  # the reader stopped early (predict.py ... | head): end quietly, as command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that Python's exit flush has a sink
    except SystemExit as ended:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # a full disk would fail the exit flush too
        return int(ended.code)
    return 0
