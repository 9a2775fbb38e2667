"""`python cli.py export` and `benchmark`: bad input ends in one line and exit 2, and touches nothing."""

import json

import pytest
from typer.testing import CliRunner

import cli
from tests.helpers import copy_run, error_line, snapshot

runner = CliRunner()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--quantization", "float32,int9"], "unknown variant 'int9'; did you mean 'int8'?"),
        (["--quantization", "all", "--calibration-samples", "0"], "int8 needs representative data"),
        (["--quantization", "float16", "--float-io"], "--float-io applies to int8 only"),
    ],
)
def test_bad_export_options_leave_the_export_untouched(shared, tmp_path, options, message):
    run = copy_run(shared.run_dir, tmp_path / "run", with_edge=True)
    before = snapshot(run)
    assert message in error_line(runner.invoke(cli.app, ["export", str(run), *options]))
    assert snapshot(run) == before


def test_a_run_without_a_model_is_refused(shared, tmp_path):
    run = copy_run(shared.run_dir, tmp_path / "run")
    (run / "model.keras").unlink()
    line = error_line(runner.invoke(cli.app, ["export", str(run)]))
    assert (
        line == f"error: {run} has no model.keras: it is not a finished train run; train again with "
        "'python cli.py train'"
    )
    assert sorted(path.name for path in run.iterdir() if "edge" in path.name) == []
    assert "does not exist" in error_line(runner.invoke(cli.app, ["export", str(tmp_path / "missing")]))


def test_a_damaged_model_is_refused_without_leftovers(shared, tmp_path):
    run = copy_run(shared.run_dir, tmp_path / "run")
    (run / "model.keras").write_bytes(b"")
    assert "cannot be loaded" in error_line(runner.invoke(cli.app, ["export", str(run)]))
    assert sorted(path.name for path in run.iterdir() if "edge" in path.name) == []


@pytest.mark.parametrize("content", [b"", b"TFL3" * 10])
def test_empty_or_corrupt_tflite_in_benchmark_and_predict(tmp_path, content):
    model = tmp_path / "model.tflite"
    model.write_bytes(content)
    (tmp_path / "x.csv").write_text("1,2\n")
    for command in (["benchmark", str(model)], ["predict", str(model), "--input", str(tmp_path / "x.csv")]):
        line = error_line(runner.invoke(cli.app, command))
        assert ("is empty (0 bytes)" if not content else "is not a valid .tflite model") in line


def test_benchmark_settings_and_missing_export(shared, tmp_path):
    assert "--runs (0)" in error_line(
        runner.invoke(cli.app, ["benchmark", str(shared.edge_dir / "model_int8.tflite"), "--runs", "0"])
    )
    run = copy_run(shared.run_dir, tmp_path / "run")
    assert "no exported models in edge/" in error_line(runner.invoke(cli.app, ["benchmark", str(run)]))


def test_benchmark_a_tflite_file(shared):
    result = runner.invoke(
        cli.app,
        [
            "benchmark",
            str(shared.edge_dir / "model_int8.tflite"),
            "--runs",
            "50",
            "--warmup",
            "5",
            "--threads",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (row,) = report["models"]
    assert row["name"] == "model_int8" and row["bytes"] == (shared.edge_dir / "model_int8.tflite").stat().st_size
    assert 0 < row["single"]["median_us"] <= row["single"]["p90_us"] and row["single"]["runs"] == 50
    assert row["throughput_per_s"] > 0 and row["threads"] == 1
    assert report["keras_eager"] is None


def test_benchmark_a_run_directory_side_by_side(shared, tmp_path):
    run = copy_run(shared.run_dir, tmp_path / "run", with_edge=True)
    result = runner.invoke(cli.app, ["benchmark", str(run), "--runs", "40", "--warmup", "5"])
    assert result.exit_code == 0, result.output
    for name in ("float32", "float16", "dynamic", "int8", "keras (eager call)"):
        assert name in result.output
    written = json.loads((run / "edge" / "benchmark.json").read_text())
    assert [row["name"] for row in written["models"]] == ["float32", "float16", "dynamic", "int8"]
    assert written["keras_parameters"] == shared.parameters
    int8 = written["models"][3]["single"]["median_us"]
    assert written["keras_eager"]["median_us"] > 10 * int8  # an eager Keras call costs far more than an invoke
    page = (run / "report.html").read_text()  # rewritten with the measured latencies
    assert "µs here" in page and f'<td class="n">{int8:,.1f}</td>' in page


def test_tables_piped_to_a_file_are_not_wrapped_at_80_columns(shared):
    """Output to a pipe or a file: rich would wrap titles and cells at 80 columns; the commands' tables take 160.
    The analyze table of the int8 model is wider than 80: each of its lines arrives whole."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    probe = subprocess.run(
        [sys.executable, "-c", "from recipes.console import console; print(console().width)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "160", probe.stderr
    completed = subprocess.run(
        [sys.executable, "cli.py", "analyze", str(shared.edge_dir / "model_int8.tflite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    title = next(line for line in completed.stdout.splitlines() if "operators (bytes; ms estimated on" in line)
    assert title.rstrip().endswith(")")  # the whole title on one line
