"""`python cli.py tune` on bad input: one clear line, exit status 2, nothing written."""

import os

import pytest
from typer.testing import CliRunner

import cli

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

runner = CliRunner()
SPACES = {
    "empty": "dropout: {min: 0.2, max: 0.2}\n",
    "inverted": "learning_rate: {min: 0.1, max: 0.001, log: true}\n",
    "log_zero": "l2: {min: 0, max: 1, log: true}\n",
    "misspelt": "learning_rat: {min: 0.001, max: 0.1, log: true}\n",
    "other_recipe": "kernel_size: {values: [3, 5]}\n",
    "cnn_misspelt": "kernel_sise: {values: [3, 5]}\n",
}
CASES = {
    "unknown tuner": (["--tuner", "rnadom"], "unknown tuner 'rnadom'; did you mean 'random'?"),
    "empty range": (["--space", "empty"], "space key 'dropout' has an empty range [0.2, 0.2]"),
    "inverted range": (["--space", "inverted"], "space key 'learning_rate' has an inverted range"),
    "log range with 0": (["--space", "log_zero"], "log scale but its range [0, 1] includes 0"),
    "grid over a range": (["--tuner", "grid"], "grid search cannot enumerate the continuous range learning_rate"),
    "no workers": (["--workers", "0"], "--workers must be at least 1"),
    "unknown key": (
        ["--space", "misspelt"],
        "space key 'learning_rat' is not a setting of the mlp recipe; did you mean 'learning_rate'?",
    ),
    "key of another recipe": (
        ["--space", "other_recipe"],
        "space key 'kernel_size' is not a setting of the mlp recipe",
    ),
    "misspelt cnn key": (["--recipe", "cnn", "--space", "cnn_misspelt"], "did you mean 'kernel_size'?"),
    "missing space file": (["--space", "missing"], "does not exist"),
    "missing data": (["--data", "nowhere/data.csv"], "data file nowhere/data.csv does not exist"),
    "bad objective": (["--objective", "val_acc"], "unknown objective 'val_acc'; did you mean 'val_accuracy'?"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    args, expected = CASES[case]
    if "--space" in args:
        name = args[args.index("--space") + 1]
        path = tmp_path / f"{name}.yaml"
        if name in SPACES:
            path.write_text(SPACES[name])
        args = [str(path) if arg == name else arg for arg in args]
    out = tmp_path / "runs"
    result = runner.invoke(cli.app, ["tune", *args, "--out", str(out), "--max-trials", "1", "--max-epochs", "1"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not out.exists()  # nothing half-written


def test_tune_help_lists_the_options():
    result = runner.invoke(cli.app, ["tune", "--help"])
    assert result.exit_code == 0
    for option in (
        "--tuner",
        "--max-trials",
        "--max-epochs",
        "--factor",
        "--objective",
        "--rounds",
        "--workers",
        "--space",
        "--name",
        "--seed",
        "--set",
    ):
        assert option in result.output


def test_a_second_tune_of_the_same_name_is_refused_while_the_first_runs(tmp_path):
    """The running search holds <out>/tune/.<name>.lock (here this test holds it, as another process would): a second
    tune of that name is one line naming the process, and touches nothing; the lock goes with its holder."""
    from recipes.rundir import held_lock
    from tests.helpers import error_line, snapshot

    out = tmp_path / "runs"
    args = ["tune", "--name", "busy", "--out", str(out), "--max-trials", "1", "--max-epochs", "1"]
    lock = out / "tune" / ".busy.lock"
    with held_lock(lock, "held"):
        before = snapshot(out)
        line = error_line(runner.invoke(cli.app, args))
        assert line.startswith(f"error: another tune named busy is running (process {os.getpid()}) in ")
        assert snapshot(out) == before
    with held_lock(lock, "held"):  # released when the holder's block ended
        pass
