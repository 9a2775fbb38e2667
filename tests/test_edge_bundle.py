"""The export's device bundle: a copy of edge/ alone runs its models with the project's runtime, as cli.py does."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np

from edge.bundle import runtime_files
from tests.helpers import ROOT, assert_bundle_predicts_like_the_cli, run_bundle


def test_a_copy_of_edge_alone_predicts_exactly_what_the_cli_prints(shared, device_env, tmp_path):
    np.save(tmp_path / "x.npy", shared.x_test[:7])
    for flags in ([], ["--json"], ["--top-k", "2"]):
        folder = tmp_path / f"run{len(flags)}"
        output = assert_bundle_predicts_like_the_cli(
            device_env, shared.edge_dir, folder, "model_int8.tflite", "--input", str(tmp_path / "x.npy"), *flags
        )
        assert len(output.splitlines()) >= 7
    mistake = run_bundle(device_env, folder / "device", "model_int8.tflite", "--input", "missing.csv")
    assert mistake.returncode == 2 and mistake.stderr.startswith("error: input file missing.csv does not exist")
    assert "Traceback" not in mistake.stderr
    no_tensorflow = subprocess.run([str(device_env), "-c", "import tensorflow"], capture_output=True, timeout=60)
    assert no_tensorflow.returncode != 0  # the device environment really has no TensorFlow to import


def test_the_bundle_runs_its_own_copy_of_the_runtime_and_needs_no_tensorflow(shared, tmp_path):
    device = shutil.copytree(shared.edge_dir, tmp_path / "device")
    probe = (
        "import sys; sys.path.insert(0, 'lib'); import edge.device.cli, json; "
        "print(json.dumps([edge.device.cli.__file__, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras', 'sklearn'))]))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], cwd=device, capture_output=True, text=True, timeout=60)
    where, heavy = json.loads(completed.stdout.strip().splitlines()[-1])
    assert where == str(device / "lib" / "edge" / "device" / "cli.py") and heavy == []
    for relative in runtime_files():  # one source of truth: the project's own files, byte for byte
        assert (device / "lib" / relative).read_bytes() == (ROOT / relative).read_bytes()
    lines = [line for line in (device / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert [line.split("<")[0].split(">")[0] for line in lines] == ["ai-edge-litert", "numpy", "pillow"]
    assert all("," in line for line in lines)  # pinned to the project's tested ranges
    manifest = json.loads((device / "manifest.json").read_text())
    entry = manifest["files"]["lib/edge/device/model.py"]
    assert entry["sha256"] == hashlib.sha256((device / "lib/edge/device/model.py").read_bytes()).hexdigest()
    assert {"predict.py", "requirements.txt"} <= set(manifest["files"])


def test_predict_py_piped_into_a_reader_that_stops_early_ends_quietly(shared, tmp_path):
    """``predict.py ... | head -1``: the reader closes the pipe after one line; the command ends without a
    BrokenPipeError traceback."""
    device = shutil.copytree(shared.edge_dir, tmp_path / "device")
    np.save(tmp_path / "x.npy", np.repeat(shared.x_test, 30, axis=0))  # ten thousand lines: more than a pipe holds
    process = subprocess.Popen(
        [sys.executable, "predict.py", "model_int8.tflite", "--input", str(tmp_path / "x.npy")],
        cwd=device,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_predict_py_ends_as_the_cli_does_on_a_full_disk_an_unreadable_file_and_sigterm(shared, tmp_path):
    """The bundle's command shares cli.py's ending policy: one line, status 2 (a full disk, a file it may not read)
    or 143 (SIGTERM), never a traceback."""
    import os
    import signal
    import time

    device = shutil.copytree(shared.edge_dir, tmp_path / "device")
    np.save(tmp_path / "x.npy", shared.x_test[:3])
    command = [sys.executable, "predict.py", "model_int8.tflite", "--input"]
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        ended = subprocess.run(
            [*command, str(tmp_path / "x.npy")], cwd=device, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120
        )
    assert ended.returncode == 2 and ended.stderr.startswith("error: the disk is full"), ended.stderr
    assert len(ended.stderr.splitlines()) == 1
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.npy"
        shutil.copy(tmp_path / "x.npy", locked)
        locked.chmod(0)
        ended = subprocess.run([*command, str(locked)], cwd=device, capture_output=True, text=True, timeout=120)
        assert ended.returncode == 2 and "Permission denied; let this user read" in ended.stderr, ended.stderr
    np.save(tmp_path / "many.npy", np.repeat(shared.x_test, 30, axis=0))  # far more text than a pipe holds
    running = subprocess.Popen(
        [*command, str(tmp_path / "many.npy")], cwd=device, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(5)  # it starts, predicts, and blocks writing to the pipe nobody reads: signalled in the middle
    running.send_signal(signal.SIGTERM)
    stderr = running.stderr.read().decode()
    assert running.wait(timeout=120) == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines() == ["terminated (SIGTERM): stopped"]
