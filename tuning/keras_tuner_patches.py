"""Every change this project makes to keras-tuner, in one place, applied explicitly and only to the tested version.

keras-tuner 1.4.8 (the version pinned in ``pyproject.toml``) has these defects for a search that must survive a
kill and a hardware budget; each fix below names its defect, and ``tests/test_tuning_tuners.py`` holds a
canary per fix that fails once upstream changes the code it works around, so the fix can be dropped:

- **In-place JSON writes.** ``utils.save_json`` rewrites ``oracle.json`` and ``trial.json`` in place; a search
  killed during a write left a truncated file and the resumed search died on a JSONDecodeError. :func:`apply`
  routes it through a temp file and a rename.
- **Tracebacks on stderr.** With ``config.DEBUG`` on, every failed trial prints its traceback; the progress
  line names the error and the whole traceback stays in the trial's ``trial.json``. :func:`apply` turns it off.
- **Completed trials run again.** ``end_trial`` saves ``oracle.json`` before it drops the trial from the ongoing
  ones (and a distributed chief writes nothing after that), and ``reload`` queues every ongoing trial to run
  again. :class:`ResumeMixin` drops COMPLETED trials from that queue.
- **Orphan trials.** ``create_trial`` writes the trial's ``trial.json`` before ``oracle.json``; a search killed
  between the two leaves a trial that ``reload`` loads from its folder but the oracle never started, RUNNING
  for ever and listed with the results. :class:`ResumeMixin` removes such a trial (its folder holds nothing
  but that file); the search makes its trial again.
- **Grid search cannot resume** (issue #1055 upstream): ``GridSearchOracle`` keeps its walk order in memory only,
  so the first new trial after a restart looks up an id that is not there (``KeyError``).
  :class:`ResumableGridSearchOracle` rebuilds it from the reloaded trials.
- **Infeasible trials end the search.** A trial over the hardware budget fails (so it stays out of the best
  trials, the Bayesian model and Hyperband's promotions), and three failed trials in a row stop the search.
  :class:`InfeasibleIsNotFailureMixin` leaves infeasible trials out of that count; diverged trials still count.
- **The chief notices the end late.** keras-tuner's ``start_server`` checks for the end of the search every 20
  seconds; :func:`serve_oracle` serves the oracle with the same private servicer and checks every
  :data:`tuning.distributed.POLL_SECONDS`.
- **A search killed before its first trial ended starts over.** keras-tuner reloads a project only when the
  tuner's own state file exists, which it first writes after the first trial ends. :func:`reload_if_started`
  reloads the oracle's files then.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from importlib.metadata import version
from typing import Any

from edge.device.errors import UserError

TESTED_VERSIONS = ("1.4.8",)


def check_version() -> str:
    """The installed keras-tuner version, when it is one these patches were written for.

    Raises:
        UserError: another version (its private methods may differ): one line naming the fix.
    """
    installed = version("keras-tuner")
    if installed not in TESTED_VERSIONS:
        raise UserError(
            f"keras-tuner {installed} is installed, but tuning is tested with {', '.join(TESTED_VERSIONS)} only "
            "(tuning/keras_tuner_patches.py); install it with: pip install -e ."
        )
    return installed


# The version is checked before any private module of keras-tuner is imported: another version may not have them, and
# an ImportError would hide the one line that names the fix.
check_version()

import keras_tuner  # noqa: E402
from keras_tuner.src import config as keras_tuner_config  # noqa: E402
from keras_tuner.src import utils as keras_tuner_utils  # noqa: E402
from keras_tuner.src.tuners.gridsearch import LinkedList  # noqa: E402

from recipes.rundir import write_atomic  # noqa: E402
from tuning.distributed import POLL_SECONDS  # noqa: E402
from tuning.hardware import FEASIBLE_METRIC  # noqa: E402

ORIGINAL_SAVE_JSON = keras_tuner_utils.save_json


def save_json_atomically(path: str, obj: Any) -> str:
    """keras-tuner's ``save_json``, through a temp file and a rename."""
    text = json.dumps(obj)
    write_atomic(path, text)
    return text


def apply() -> None:
    """Check the version, then route keras-tuner's JSON writes through :func:`save_json_atomically` and turn
    off its per-trial tracebacks on stderr. Idempotent; called before a tuner is made."""
    check_version()
    keras_tuner_utils.save_json = save_json_atomically
    keras_tuner_config.DEBUG = False


class ResumeMixin:
    """Reload without queueing completed trials to run again, and without trials the oracle never started."""

    def reload(self) -> None:
        super().reload()  # type: ignore[misc]
        trials = self.trials  # type: ignore[attr-defined]
        started = set(self.start_order)  # type: ignore[attr-defined]
        for trial_id in [trial_id for trial_id in trials if trial_id not in started]:
            del trials[trial_id]
            shutil.rmtree(os.path.join(self._project_dir, f"trial_{trial_id}"), ignore_errors=True)  # type: ignore[attr-defined]
        self._retry_queue = [
            trial_id
            for trial_id in self._retry_queue
            if trials[trial_id].status != "COMPLETED"  # type: ignore[has-type]
        ]


def is_infeasible(trial: keras_tuner.engine.trial.Trial) -> bool:
    """Whether ``trial`` trained but broke the hardware budget (it reported ``feasible`` 0)."""
    return trial.metrics.exists(FEASIBLE_METRIC) and trial.metrics.get_last_value(FEASIBLE_METRIC) == 0.0


class InfeasibleIsNotFailureMixin:
    """keras-tuner 1.4.8's check for consecutive failed trials, with infeasible trials not counted."""

    def _check_consecutive_failures(self) -> None:
        consecutive = 0
        for trial_id in self.end_order:  # type: ignore[attr-defined]
            trial = self.trials[trial_id]  # type: ignore[attr-defined]
            failed = trial.status == keras_tuner.engine.trial.TrialStatus.FAILED and not is_infeasible(trial)
            consecutive = consecutive + 1 if failed else 0
            if consecutive == self.max_consecutive_failed_trials:  # type: ignore[attr-defined]
                raise RuntimeError(
                    f"Number of consecutive failures exceeded the limit of {consecutive}.\n" + (trial.message or "")
                )


class ResumableRandomSearchOracle(ResumeMixin, InfeasibleIsNotFailureMixin, keras_tuner.oracles.RandomSearchOracle):
    """keras-tuner's random search oracle that never reruns a completed trial."""


class ResumableBayesianOracle(ResumeMixin, InfeasibleIsNotFailureMixin, keras_tuner.oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian optimization oracle (Gaussian process) that never reruns a completed trial."""


class ResumableHyperbandOracle(ResumeMixin, InfeasibleIsNotFailureMixin, keras_tuner.oracles.HyperbandOracle):
    """keras-tuner's Hyperband oracle that never reruns a completed trial."""


class ResumableGridSearchOracle(ResumeMixin, InfeasibleIsNotFailureMixin, keras_tuner.oracles.GridSearchOracle):
    """keras-tuner's grid oracle whose walk order survives a restart: on reload, every known trial sorted in grid
    order, and every trial queued again (one whose successor was already tried is skipped by the oracle)."""

    def set_state(self, state: dict[str, Any]) -> None:
        """Reload the saved state, then rebuild the walk order from the reloaded trials."""
        super().set_state(state)
        known = [trial_id for trial_id in self.start_order if trial_id in self.trials]
        in_grid_order = sorted(
            known,
            key=functools.cmp_to_key(
                lambda first, second: self._compare(
                    self.trials[first].hyperparameters.values, self.trials[second].hyperparameters.values
                )
            ),
        )
        self._ordered_ids = LinkedList()
        for trial_id in in_grid_order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(known)


def reload_if_started(tuner: keras_tuner.Tuner, started: bool) -> None:
    """Reload the oracle of a project whose ``oracle.json`` existed before the tuner was made (``started``) but
    whose tuner state file does not: the search was killed before its first trial ended."""
    if started and not os.path.exists(tuner._get_tuner_fname()) and not tuner._is_worker():
        tuner.oracle.reload()


def serve_oracle(oracle: Any, bind: str, port: int) -> None:
    """Serve ``oracle`` over gRPC until the search is over and no worker holds a trial.

    keras-tuner's own ``start_server`` checks for the end only every 20 seconds; this loop
    checks every :data:`POLL_SECONDS`.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if server.add_insecure_port(f"{bind}:{port}") == 0:
        raise UserError(f"the tuning chief cannot listen on {bind}:{port}; pick another KERASTUNER_ORACLE_PORT")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(POLL_SECONDS)
    finally:
        server.stop(grace=1.0)
    oracle.save()  # the last end_trial saved before it dropped its trial from the ongoing ones
