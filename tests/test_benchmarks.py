"""Every script in benchmarks/ runs: a smoke run at the smallest size (``EDGE_RECIPES_SMOKE=1``, one epoch, one
data set), so a script nobody has run lately cannot rot unseen. The figures mean nothing here; BENCHMARKS.md
holds the real ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, require_programs

pytestmark = pytest.mark.slow  # each script trains or converts: left out of the quick subset (-m "not slow")

BENCHMARKS = ROOT / "benchmarks"
TIMEOUT = 600


def run_script(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``benchmarks/<name>`` as a user would, in smoke mode; its standard output."""
    environment = {**os.environ, "EDGE_RECIPES_SMOKE": "1", **(env or {})}
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment,
    )
    assert completed.returncode == 0, f"{name}: {completed.stderr[-3000:]}"
    return completed.stdout


def test_every_script_has_a_smoke_run_here():
    tested = set(SMOKE_ARGUMENTS) | {"common.py", "ucr.py", "ucr_aeon.py", "firmware_targets.py", "speech.py"}
    tested |= {"speech_clips.py", "edge_latency.py", "small_data_defaults.py"}
    assert {path.name for path in BENCHMARKS.glob("*.py")} == tested


SMOKE_ARGUMENTS = {
    "train_overhead.py": ["--epochs", "1", "--repeats", "1"],
    "csv_loading.py": ["--rows", "300", "--columns", "3", "--repeats", "1"],
    "latency_calibration.py": [],
    "int8_layout.py": ["--epochs", "1"],
    "per_tensor.py": [],
    "regression_parity.py": [],
    "timeseries_recipes.py": [],
    "tuning_budget.py": ["--random-trials", "1", "--max-epochs", "2", "--factor", "2", "--patience", "1"],
    "compression.py": ["--prune", "0.5"],
    "reference_models.py": ["--runs", "2", "--warmup", "0"],
    "data_scale.py": ["--kind", "wav", "--sizes", "24"],
}


@pytest.mark.parametrize("name", SMOKE_ARGUMENTS)
def test_the_script_runs(name, tmp_path):
    arguments = ["--out", str(tmp_path / "runs")] if name == "per_tensor.py" else SMOKE_ARGUMENTS[name]
    output = run_script(name, *arguments)
    assert output.strip(), f"{name} printed nothing"


def test_edge_latency_measures_a_given_run(shared):
    output = run_script("edge_latency.py", str(shared.run_dir), "--runs", "3", "--warmup", "1")
    assert "int8" in output


def test_small_data_defaults_compares_two_checkouts(tmp_path):
    output = run_script("small_data_defaults.py", "--before", str(ROOT), "--sets", "iris")
    assert "| iris |" in output


def test_ucr_scores_a_recipe_against_the_cached_minirocket_figures(tmp_path):
    """ucr.py on a cache as ucr_aeon.py writes it (one tiny two-class set), without aeon."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 40)

    def series(count):
        labels = np.arange(count) % 2
        x = np.stack([np.sin(2 * np.pi * (2 + 3 * label) * t) for label in labels])[..., None]
        return (x + 0.1 * rng.normal(size=x.shape)).astype(np.float32), labels.astype(str)

    x_train, y_train = series(30)
    x_test, y_test = series(20)
    np.savez(tmp_path / "Tiny.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (tmp_path / "minirocket.json").write_text(json.dumps({"aeon": "-", "sets": {"Tiny": {"accuracy": 1.0}}}))
    output = run_script("ucr.py", "--cache", str(tmp_path), "--recipes", "cnn1d", "--set", "epochs=1")
    assert "Tiny" in output and "mean rank" in output


def test_ucr_aeon_finds_the_classification_sets_it_would_fit(tmp_path):
    """aeon is no dependency (it lives in its own venv), so the part that reads the wheel's folder runs here on a
    folder like it: equal-length classification sets only."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import ucr_aeon
    finally:
        sys.path.remove(str(BENCHMARKS))
    headers = {
        "Good": "@problemName Good\n@classLabel true 1 2\n@data\n",
        "Regress": "@problemName Regress\n@targetLabel true\n@data\n",
        "Ragged": "@problemName Ragged\n@equalLength false\n@classLabel true 1 2\n@data\n",
    }
    for name, header in headers.items():
        (tmp_path / name).mkdir()
        for split in ("TRAIN", "TEST"):
            (tmp_path / name / f"{name}_{split}.ts").write_text(header)
    assert ucr_aeon.classification_sets(tmp_path) == ["Good"]
    help_text = subprocess.run(
        [sys.executable, str(BENCHMARKS / "ucr_aeon.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0 and "cache folder" in help_text.stdout


def test_speech_writes_clips_and_scores_held_out_voices(tmp_path):
    require_programs("espeak-ng", "sox")
    output = run_script("speech_clips.py", str(tmp_path / "clips"), "--per-class", "1", "--held-out-per-class", "1")
    assert (tmp_path / "clips" / "train").is_dir(), output
    output = run_script("speech.py", "--folder", str(tmp_path / "speech"), "--per-class", "3", "--set", "epochs=1")
    assert "held-out" in output


def test_firmware_targets_builds_and_runs_on_the_emulator(tflm_objects):
    require_programs("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from tests.firmware_checks import TFLM_ROOT

    output = run_script(
        "firmware_targets.py",
        "--tflm-root",
        str(TFLM_ROOT.resolve()),
        env={"XDG_CACHE_HOME": str(Path(tflm_objects).parents[1])},
    )
    assert "| autoencoder |" in output
