"""`python cli.py tune --workers 2`: a chief, two workers, one worker SIGKILLed mid-trial.

The supervisor must restart the dead worker under its own tuner id (keras-tuner hands its
unfinished trial back only to that id), and the search must end with every trial completed.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import start_cli
from tuning.distributed import describe_exit, free_port, oracle_address

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240
TRIALS = 6


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not there yet, or being written


def test_killed_worker_is_restarted_and_every_trial_completes(tmp_path):
    out, name = tmp_path / "runs", "distributed"
    tune_dir = out / "tune" / name
    project = tune_dir / "keras_tuner" / "round-1"
    args = ["tune", "--tuner", "random", "--max-trials", str(TRIALS), "--max-epochs", "3", "--workers", "2"]
    args += ["--name", name, "--out", str(out), "--set", "patience=2"]
    log = tmp_path / "supervisor.log"
    process = start_cli(args, log)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # wait until worker tuner0 is training a trial, then kill it
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"tuner0 never got a trial:\n{log.read_text()}"
            oracle, supervisor = read_json(project / "oracle.json"), read_json(tune_dir / "supervisor.json")
            killed_trial = (oracle or {}).get("ongoing_trials", {}).get("tuner0")
            trial = read_json(project / f"trial_{killed_trial}" / "trial.json") if killed_trial else None
            if supervisor and trial and trial["status"] == "RUNNING":
                os.kill(supervisor["processes"]["tuner0"]["pid"], signal.SIGKILL)
                break
            time.sleep(0.05)
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log.read_text()
    assert process.returncode == 0, output
    assert "worker tuner0 died (signal SIGKILL); restarting it as tuner0" in output

    # Every trial accounted for: all completed, the killed one included, none left ongoing.
    states = {path.parent.name: read_json(path) for path in project.glob("trial_*/trial.json")}
    assert len(states) == TRIALS
    assert all(state["status"] == "COMPLETED" for state in states.values())
    assert states[f"trial_{killed_trial}"]["score"] is not None
    oracle = read_json(project / "oracle.json")
    assert oracle["ongoing_trials"] == {} and len(oracle["end_order"]) == TRIALS
    supervisor = read_json(tune_dir / "supervisor.json")
    restarts = {tuner_id: entry["restarts"] for tuner_id, entry in supervisor["processes"].items()}
    assert restarts == {"chief": 0, "tuner0": 1, "tuner1": 0}
    for entry in supervisor["processes"].values():  # no process outlives the search
        with pytest.raises(ProcessLookupError):
            os.kill(entry["pid"], 0)
    rows = list(csv.DictReader((tune_dir / "trials.csv").open()))
    assert len(rows) == TRIALS and len({row["trial"] for row in rows}) == TRIALS
    summary = read_json(tune_dir / "summary.json")
    assert (Path(summary["run_dir"]) / "model.keras").is_file()
    assert "next: python cli.py export" in output


def test_oracle_address_defaults_to_loopback(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    bind, dial, port = oracle_address()
    assert (bind, dial) == ("127.0.0.1", "127.0.0.1") and 0 < port < 65536
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "0.0.0.0")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8765")
    assert oracle_address() == ("0.0.0.0", "127.0.0.1", 8765)
    assert free_port() != 0
    assert describe_exit(-9) == "signal SIGKILL" and describe_exit(2) == "exit status 2"


def test_worker_entry_point_needs_the_keras_tuner_variables(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("KERASTUNER_")}
    result = subprocess.run(
        [sys.executable, "-m", "tuning.worker", "--tune-dir", str(tmp_path)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "set KERASTUNER_TUNER_ID" in result.stderr
