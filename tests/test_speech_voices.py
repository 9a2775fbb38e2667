"""Keyword spotting trained at its defaults on espeak-ng speech and scored in int8 on voices it never heard."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import require_programs

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_ds_cnn_at_its_defaults_hears_voices_it_never_heard(tmp_path, tflm_objects):
    """The clips of benchmarks/speech.py (1,080 training clips of 12 classes from 120 voices, 288 held-out clips of
    32 voices whose variants no training clip uses): the test split at 90% or more, and the int8 model, through the
    device runtime, right on at least 80% of the held-out clips. Measured 94-97% and 89.2%; training is not bit-for-bit
    repeatable across machines (thread scheduling in TensorFlow's reductions), so the floors sit a few points below.
    Before the defaults followed the data size this trained to chance (8.3%) with exit 0.

    The firmware package of the same export runs on the emulated Cortex-M4 on 20 held-out clips as 16-bit PCM, its
    MFCCs computed in C: tests/firmware_checks.py says what is checked against LiteRT."""
    require_programs("espeak-ng", "sox")
    sys.path.insert(0, str(BENCHMARKS))
    from speech import held_out_accuracy
    from speech_clips import write_clips

    from edge.device.audio import read_wav
    from edge.device.mfcc import wav_features
    from edge.export import export_run
    from edge.firmware import write_examples
    from recipes.config import resolve_config
    from recipes.training import train
    from tests.firmware_checks import assert_runs_like_litert, build_and_run, firmware_model

    parts = write_clips(tmp_path / "speech", seed=0)
    config = resolve_config(None, {"recipe": "ds_cnn", "data": str(parts["train"]), "out": str(tmp_path / "runs")})
    result = train(config, report=None)
    assert result.metrics["test"]["accuracy"] >= 0.90
    report = export_run(result.run_dir, variants=("int8",), firmware=True)
    assert not report.failing
    accuracy, confusions = held_out_accuracy(result.run_dir / "edge" / "model_int8.tflite", parts["held_out"])
    assert accuracy >= 0.80, confusions.most_common(5)

    firmware = result.run_dir / "edge" / "firmware"
    assert "#define MODEL_EXAMPLE_COUNT 20" in (firmware / "example" / "examples.h").read_text()  # test-split PCM
    clips = sorted(parts["held_out"].rglob("*.wav"))[::14][:20]  # every class
    pcm = np.array([np.rint(read_wav(clip)[0] * 32768.0).astype(np.int16)[:16000] for clip in clips])
    write_examples(firmware, pcm, "mfcc")
    model = firmware_model(result.run_dir / "edge")
    run = build_and_run(firmware, tflm_objects)[0]
    assert_runs_like_litert(run, model, np.concatenate([wav_features(clip, model.front_end) for clip in clips]), False)
