"""Per-tensor weights where they hold: int8 bytes and parity, every layer per channel against export's choice.

Usage::

    python benchmarks/per_tensor.py [--out DIR]

Trains seeded runs (seed 0) on built-in data of every task and kind: digits (mlp; cnn, with and without
BatchNorm), wine (mlp), the machine autoencoder, diabetes (a regression) and motion (cnn1d, with and without
BatchNorm), then exports each run's int8 twice, with ``--per-channel`` (the converter's file) and with export's
per-layer choice (:mod:`edge.per_tensor`). Printed per run: layers made per tensor, both files' bytes, the error
the choice holds (mean |int8 - Keras| on the calibration examples, in output standard deviations) and the test
split's parity figures of both (accuracy and agreement, AUC, or R²), plus whether TFLite Micro ran the chosen file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import common  # puts the project on the import path

RUNS = (
    ("digits", "mlp", 20, ()),
    ("digits", "cnn", 15, ()),
    ("digits", "cnn", 15, ("batch_norm=true",)),
    ("wine", "mlp", 40, ()),
    ("machine", "autoencoder", 15, ()),
    ("diabetes", "mlp", 40, ()),
    ("motion", "cnn1d", 20, ()),
    ("motion", "cnn1d", 20, ("batch_norm=true",)),
)


def parity_text(row: dict) -> str:
    """The task's parity figures of one exported variant."""
    if "auc" in row:
        return f"AUC {row['auc']:.4f} (Keras {row['keras_auc']:.4f}), decisions {row['agreement']:.1%}"
    if "r2" in row:
        return f"R² {row['r2']:.4f} (Keras {row['keras_r2']:.4f})"
    return f"accuracy {row['accuracy']:.2%} (Keras {row['keras_accuracy']:.2%}), agreement {row['agreement']:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="where runs go (default: a temporary folder)")
    args = parser.parse_args()
    from edge.export import export_run

    with tempfile.TemporaryDirectory() as temporary:
        out = args.out or Path(temporary)
        print(
            "| run | per-tensor layers | bytes, per channel | bytes, chosen | smaller | error, per channel → chosen "
            "| parity, per channel | parity, chosen | TFLite Micro |"
        )
        print("| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |")
        for data, recipe, epochs, settings in RUNS[:1] if common.smoke() else RUNS:
            epochs = 1 if common.smoke() else epochs
            name = f"{data}-{recipe}" + ("-bn" if settings else "")
            command = [sys.executable, "cli.py", "train", "--data", data, "--recipe", recipe, "--epochs", str(epochs)]
            command += ["--out", str(out), "--name", name, *[part for item in settings for part in ("--set", item)]]
            subprocess.run(command, check=True, capture_output=True, cwd=common.ROOT)
            run = out / "train" / f"{name}-1"
            rows = {}
            for per_tensor in (False, True):
                report = export_run(run, ["int8"], per_tensor=per_tensor)
                rows[per_tensor] = (report.to_dict()["variants"][0], report)
            (fixed, _), (chosen, report) = rows[False], rows[True]
            choice = chosen["weight_quantization"]
            layers = len(choice["per_tensor"]) + len(choice["per_channel"])
            micro = report.micro
            print(
                f"| {name} | {len(choice['per_tensor'])}/{layers} | {fixed['bytes']:,} | {chosen['bytes']:,} | "
                f"{1 - chosen['bytes'] / fixed['bytes']:.1%} | "
                f"{choice['baseline_error']:.4f} → {choice['error']:.4f} | "
                f"{parity_text(fixed)} | {parity_text(chosen)} | "
                f"{'agrees on ' + format(micro.agreement, '.1%') if micro and micro.measured else 'not run'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
