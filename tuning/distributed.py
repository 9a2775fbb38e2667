"""Distributed search: a keras-tuner chief and N workers under a supervisor that restarts dead workers.

keras-tuner's protocol: one process holds the oracle (``KERASTUNER_TUNER_ID=chief``) and serves it
over gRPC at ``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT``; every worker (``tuner0``, ``tuner1``...)
asks it for a trial, trains it and reports back. All of them share the tune directory (Hyperband
continues a model from another trial's checkpoint, so a worker must see every trial's files).

``python cli.py tune --workers N`` runs :func:`run_distributed_round` for each round: it picks a free
port on 127.0.0.1, starts ``python -m tuning.worker --tune-dir DIR --round R`` (:mod:`tuning.worker`) as the chief and
as N workers, prints each finished trial, and restarts a worker that died (non-zero exit or
signal) under its **own** tuner id: keras-tuner gives a worker's unfinished trial back only to the
same id, and without a restart the chief would wait for that trial forever. The round ends when
the chief does (after every trial is accounted for). ``supervisor.json`` in the tune directory
names each process, its pid and restarts; ``logs/`` holds each process's output.

Several machines: put ``--out`` on a filesystem every machine mounts at the same path. On the
chief's machine export ``KERASTUNER_ORACLE_IP`` (an address the others can reach, or ``0.0.0.0``)
and ``KERASTUNER_ORACLE_PORT`` before ``python cli.py tune ... --workers N``: the chief then serves
there instead of on loopback. On every other machine start more workers with the same tune
directory and round, each with a tuner id no other worker uses::

    KERASTUNER_TUNER_ID=tuner100 KERASTUNER_ORACLE_IP=<chief address> KERASTUNER_ORACLE_PORT=<port> \\
        python -m tuning.worker --tune-dir /shared/runs/tune/<name> --round 1

Restart a remote worker that dies with the same command (same tuner id). The chief speaks plain
(insecure) gRPC: keep it on a trusted network.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.device.errors import UserError
from recipes.rundir import write_json
from tuning.report import best_records, read_trials, trial_line
from tuning.settings import TuneSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# A worker that dies more often than this in one round is broken, not unlucky: stop the round.
MAX_RESTARTS = 5
POLL_SECONDS = 0.25
# How long workers may take to exit on their own once the chief has finished.
WORKER_EXIT_SECONDS = 10.0


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def oracle_address() -> tuple[str, str, int]:
    """(address the chief binds, address local workers dial, port).

    Loopback and a free port, unless ``KERASTUNER_ORACLE_IP``/``KERASTUNER_ORACLE_PORT`` are set
    (a search spanning several machines).
    """
    bind = os.environ.get("KERASTUNER_ORACLE_IP", LOOPBACK)
    dial = LOOPBACK if bind in ("0.0.0.0", "") else bind
    port = os.environ.get("KERASTUNER_ORACLE_PORT")
    return bind, dial, int(port) if port else free_port(LOOPBACK)


def describe_exit(code: int) -> str:
    """``"exit status 1"`` or ``"signal SIGKILL"``."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


@dataclass
class Process:
    """One chief or worker process of a round."""

    tuner_id: str
    popen: subprocess.Popen
    log: Path
    restarts: int = 0


@dataclass
class Supervisor:
    """Starts a round's chief and workers, restarts dead workers, reports finished trials.

    Args:
        settings: the search (its ``search.json`` and round space are already written).
        round_number: the round to run.
        report: called with one line of progress at a time.
    """

    settings: TuneSettings
    round_number: int
    report: Callable[[str], None]
    processes: dict[str, Process] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.bind, self.dial, self.port = oracle_address()
        self.threads = max(1, (os.cpu_count() or 1) // self.settings.workers)
        self.logs = self.settings.tune_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, tuner_id: str) -> Process:
        """Start (or restart) the process of ``tuner_id``; its output is appended to its log."""
        environment = dict(os.environ)
        environment.update(
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP=self.bind if tuner_id == "chief" else self.dial,
            KERASTUNER_ORACLE_PORT=str(self.port),
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), environment.get("PYTHONPATH")])),
        )
        command = [
            sys.executable,
            "-m",
            "tuning.worker",
            "--tune-dir",
            str(self.settings.tune_dir.resolve()),
            "--round",
            str(self.round_number),
            "--threads",
            str(self.threads),
            "--supervised",
        ]
        log = self.logs / f"round-{self.round_number}-{tuner_id}.log"
        with log.open("ab") as output:
            popen = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
        previous = self.processes.get(tuner_id)
        process = Process(tuner_id, popen, log, previous.restarts + 1 if previous else 0)
        self.processes[tuner_id] = process
        self.write_status()
        return process

    def write_status(self) -> None:
        """``supervisor.json``: the round, the oracle's port and each process's pid, restarts and log."""
        write_json(
            self.settings.tune_dir / "supervisor.json",
            {
                "round": self.round_number,
                "oracle": f"{self.bind}:{self.port}",
                "processes": {
                    tuner_id: {"pid": process.popen.pid, "restarts": process.restarts, "log": str(process.log)}
                    for tuner_id, process in self.processes.items()
                },
            },
        )

    def report_trials(self) -> None:
        """Print each trial that finished since the last call."""
        records = read_trials(self.settings.project_dir(self.round_number), self.round_number, self.settings.budget)
        finished = [record for record in records if record.status in ("COMPLETED", "FAILED", "INVALID")]
        for record in finished:
            if record.trial_id in self.reported:
                continue
            self.reported.add(record.trial_id)
            best = best_records([r for r in finished if r.trial_id in self.reported], self.settings.direction, 1)
            self.report(trial_line(record, self.settings.objective, best[0].score if best else None))

    def stop(self, grace: float = 0.0) -> None:
        """Wait up to ``grace`` seconds for every process to exit, then terminate the rest."""
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            remaining = deadline - time.monotonic()
            try:
                process.popen.wait(timeout=max(remaining, 0.01))
            except subprocess.TimeoutExpired:
                process.popen.terminate()
        for process in self.processes.values():
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()

    def run(self) -> None:
        """Run the round to its end.

        Raises:
            UserError: the chief failed, or a worker kept dying.
        """
        self.start("chief")
        for index in range(self.settings.workers):
            self.start(f"tuner{index}")
        try:
            self._supervise()
        finally:
            self.stop()
        self.report_trials()

    def _supervise(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            self.report_trials()
            chief = self.processes["chief"]
            code = chief.popen.poll()
            if code is not None:
                if code != 0:
                    raise UserError(
                        f"the tuning chief stopped with {describe_exit(code)} (see {chief.log}); "
                        "re-run the same command to resume"
                    )
                # Every trial is accounted for; a worker still starting up would wait for the chief forever.
                self.stop(grace=WORKER_EXIT_SECONDS)
                return
            for tuner_id, process in list(self.processes.items()):
                code = process.popen.poll()
                if tuner_id == "chief" or code is None or code == 0:
                    continue
                if process.restarts >= MAX_RESTARTS:
                    raise UserError(
                        f"worker {tuner_id} died {process.restarts + 1} times ({describe_exit(code)}, see "
                        f"{process.log}); fix the cause and re-run the same command to resume"
                    )
                self.report(f"worker {tuner_id} died ({describe_exit(code)}); restarting it as {tuner_id}")
                self.start(tuner_id)


def run_distributed_round(settings: TuneSettings, round_number: int, report: Callable[[str], None]) -> None:
    """Run one round with a chief and ``settings.workers`` workers on this machine (see the module docstring)."""
    Supervisor(settings, round_number, report).run()
