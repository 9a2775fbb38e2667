"""Keyword spotting trained at its defaults on espeak-ng speech and scored in int8 on voices it never heard."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import require_programs

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_ds_cnn_at_its_defaults_hears_voices_it_never_heard(tmp_path):
    """The clips of benchmarks/speech.py (1,080 training clips of 12 classes from 120 voices, 288 held-out clips of
    32 voices whose variants no training clip uses): the test split at 90% or more, and the int8 model, through the
    device runtime, right on at least 80% of the held-out clips. Measured 94-97% and 89.2%; training is not bit-for-bit
    repeatable across machines (thread scheduling in TensorFlow's reductions), so the floors sit a few points below.
    Before the defaults followed the data size this trained to chance (8.3%) with exit 0."""
    require_programs("espeak-ng", "sox")
    sys.path.insert(0, str(BENCHMARKS))
    from speech import held_out_accuracy
    from speech_clips import write_clips

    from edge.export import export_run
    from recipes.config import resolve_config
    from recipes.training import train

    parts = write_clips(tmp_path / "speech", seed=0)
    config = resolve_config(None, {"recipe": "ds_cnn", "data": str(parts["train"]), "out": str(tmp_path / "runs")})
    result = train(config, report=None)
    assert result.metrics["test"]["accuracy"] >= 0.90
    report = export_run(result.run_dir, variants=("int8",))
    assert not report.failing
    accuracy, confusions = held_out_accuracy(result.run_dir / "edge" / "model_int8.tflite", parts["held_out"])
    assert accuracy >= 0.80, confusions.most_common(5)
