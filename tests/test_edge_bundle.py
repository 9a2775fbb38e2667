"""The export's device bundle: a copy of edge/ alone runs its models with the project's runtime, as cli.py does."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

import cli
from edge.bundle import RUNTIME_FILES
from tests.helpers import ROOT


def test_a_copy_of_edge_alone_predicts_exactly_what_the_cli_prints(shared, tmp_path):
    device = shutil.copytree(shared.edge_dir, tmp_path / "device")
    np.save(tmp_path / "x.npy", shared.x_test[:7])
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    for flags in ([], ["--json"], ["--top-k", "2"]):
        bundle = subprocess.run(
            [sys.executable, "predict.py", "model_int8.tflite", "--input", str(tmp_path / "x.npy"), *flags],
            cwd=device,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bundle.returncode == 0, bundle.stderr
        model = str(device / "model_int8.tflite")
        expected = CliRunner().invoke(cli.app, ["predict", model, "--input", str(tmp_path / "x.npy"), *flags])
        assert bundle.stdout == expected.stdout and len(bundle.stdout.splitlines()) >= 7
    mistake = subprocess.run(
        [sys.executable, "predict.py", "model_int8.tflite", "--input", "missing.csv"],
        cwd=device,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert mistake.returncode == 2 and mistake.stderr.startswith("error: input file missing.csv does not exist")
    assert "Traceback" not in mistake.stderr


def test_the_bundle_runs_its_own_copy_of_the_runtime_and_needs_no_tensorflow(shared, tmp_path):
    device = shutil.copytree(shared.edge_dir, tmp_path / "device")
    probe = (
        "import sys; sys.path.insert(0, 'lib'); import edge.runtime, json; "
        "print(json.dumps([edge.runtime.__file__, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras', 'sklearn'))]))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], cwd=device, capture_output=True, text=True, timeout=60)
    where, heavy = json.loads(completed.stdout.strip().splitlines()[-1])
    assert where == str(device / "lib" / "edge" / "runtime.py") and heavy == []
    for relative in RUNTIME_FILES:  # one source of truth: the project's own files, byte for byte
        assert (device / "lib" / relative).read_bytes() == (ROOT / relative).read_bytes()
    lines = [line for line in (device / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert [line.split("<")[0].split(">")[0] for line in lines] == ["ai-edge-litert", "numpy", "pillow"]
    assert all("," in line for line in lines)  # pinned to the project's tested ranges
    manifest = json.loads((device / "manifest.json").read_text())
    entry = manifest["files"]["lib/edge/runtime.py"]
    assert entry["sha256"] == hashlib.sha256((device / "lib/edge/runtime.py").read_bytes()).hexdigest()
    assert {"predict.py", "requirements.txt"} <= set(manifest["files"])
