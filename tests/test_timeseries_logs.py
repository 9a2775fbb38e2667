"""Time series as real loggers write them: jittery timestamps, datetimes, gaps, an .npz of series and UCR/UEA .ts
files, from loading to training to predict (which scores a labelled file)."""

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from edge.device.predictions import predict_file
from edge.device.series_files import fit_length, read_ts
from edge.device.windows import read_stream, stream_windows
from edge.export import export_run
from recipes.config import TrainConfig
from recipes.data import load_config_data, load_dataset
from recipes.data.streams import WindowSettings
from recipes.training import train
from tests.helpers import error_line

runner = CliRunner()
RATE = 50.0


def _log(path, recordings, stamp=lambda seconds: f"{seconds:.4f}"):
    """Write a stream CSV: per recording (name, times in seconds, values (steps, 2), labels)."""
    lines = ["time,recording,ax,ay,activity"]
    for name, times, values, labels in recordings:
        for seconds, (ax, ay), label in zip(times, values, labels, strict=True):
            lines.append(f"{stamp(seconds)},{name},{ax:.6f},{ay:.6f},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _jittery(seed, count=8, seconds=6.0, jitter=0.004):
    """Recordings at a nominal 50 Hz whose timestamps jitter by up to ``jitter`` s (a step of 15 ms happens):
    channel ax is linear in time (so interpolation is exact), ay tells the activity apart."""
    generator = np.random.default_rng(seed)
    recordings = []
    for index in range(count):
        label = "walk" if index % 2 else "still"
        times = np.arange(int(seconds * RATE)) / RATE + generator.uniform(-jitter, jitter, int(seconds * RATE))
        times = np.round(times - times[0], 4)  # as the log holds them
        ay = (np.sin(2 * np.pi * 2.0 * times) if label == "walk" else 0.05 * generator.normal(size=len(times))) + 1
        values = np.stack([3.0 * times + 1.0, ay], axis=1)
        recordings.append((f"r{index}", times, values, [label] * len(times)))
    return recordings


# --- jitter, datetimes, gaps (no training) -------------------------------------------------------------------------


def test_jittery_timestamps_are_resampled_by_linear_interpolation_at_the_nominal_times(tmp_path):
    recordings = _jittery(0)
    path = _log(tmp_path / "phone.csv", recordings)
    steps = np.diff(recordings[0][1])
    assert steps.min() < 0.016 and steps.max() > 0.024  # 15 ms after the previous sample at 50 Hz: once refused
    stream = read_stream(path, None, "activity")
    assert stream.sample_rate == pytest.approx(RATE, rel=2e-3)  # the nominal rate, jitter averaged out
    assert stream.resampled == len(recordings) and stream.gaps == 0
    for (name, times, values, _), (read_name, samples), grid in zip(
        recordings, stream.recordings, stream.times, strict=True
    ):
        assert read_name == name
        assert grid == pytest.approx(np.arange(len(samples)) / stream.sample_rate)  # t0 + k / rate, t0 = 0
        assert grid[-1] <= times[-1] < grid[-1] + 1 / stream.sample_rate  # up to the last sample, no further
        interpolated = np.interp(grid, times, values[:, 1])
        np.testing.assert_allclose(samples[:, 1], interpolated, atol=1e-5)
        np.testing.assert_allclose(samples[:, 0], 3.0 * grid + 1.0, atol=1e-5)  # a linear signal exactly
    dataset = load_dataset(str(path), "activity", windows=WindowSettings(1.0, 0.5))
    assert dataset.changes == {"resampled_recordings": 8, "gaps": 0}
    assert dataset.notes == [
        f"stream: resampled 8 recording(s) with jittery timestamps to {stream.sample_rate:g} Hz (linear interpolation)"
    ]
    np.testing.assert_array_equal(dataset.x[0], stream.recordings[0][1][:50])


def test_a_datetime_stamped_log_gives_the_same_windows_as_the_log_in_seconds(tmp_path):
    recordings = _jittery(1, count=4)
    seconds = _log(tmp_path / "seconds.csv", recordings)
    base = np.datetime64("1970-01-01T00:04:40.015", "ms")

    def iso(value):  # "1970-01-01 00:04:40.015" as a logger writes it
        return str(base + np.timedelta64(int(round(value * 1000)), "ms")).replace("T", " ")

    dated = _log(tmp_path / "dated.csv", [(n, np.round(t, 3), v, lab) for n, t, v, lab in recordings], iso)
    assert "1970-01-01 00:04:40.015," in dated.read_text()
    plain = _log(tmp_path / "plain.csv", [(n, np.round(t, 3), v, lab) for n, t, v, lab in recordings])
    settings = WindowSettings(1.0, 0.5)
    from_dates, from_seconds = (load_dataset(str(p), "activity", windows=settings) for p in (dated, plain))
    np.testing.assert_allclose(from_dates.x, from_seconds.x, rtol=1e-6, atol=1e-6)
    assert (
        from_dates.y.tolist() == from_seconds.y.tolist() and from_dates.groups.tolist() == from_seconds.groups.tolist()
    )
    assert from_dates.front_end["sample_rate"] == pytest.approx(from_seconds.front_end["sample_rate"])
    # UTC offsets are applied: the same instants written in two zones are the same log
    zulu = _log(tmp_path / "z.csv", recordings[:1], lambda s: f"2024-03-01T12:00:{s:06.3f}Z")
    paris = _log(tmp_path / "p.csv", recordings[:1], lambda s: f"2024-03-01T13:00:{s:06.3f}+01:00")
    np.testing.assert_array_equal(*(read_stream(p, None, "activity").recordings[0][1] for p in (zulu, paris)))
    assert seconds.exists()


def test_a_jittery_datetime_log_with_a_gap_trains_and_says_what_was_changed(tmp_path):
    recordings = _jittery(2)
    name, times, values, labels = recordings[0]
    recordings[0] = (name, np.where(times >= 3.0, times + 4.0, times), values, labels)  # a 4 s gap at 3 s
    base = np.datetime64("2024-03-01T12:00:00.000", "ms")
    path = _log(tmp_path / "phone.csv", recordings, lambda s: f"{base + np.timedelta64(int(round(s * 1000)), 'ms')}Z")
    lines = []
    config = TrainConfig(
        data=str(path),
        label="activity",
        window_seconds=1.0,
        front_end="spectral",
        hidden_units=[16],
        epochs=10,
        learning_rate=0.01,
        out=str(tmp_path),
    )
    result = train(config, report=lines.append)
    data = json.loads((result.run_dir / "data.json").read_text())
    assert data["resampled_recordings"] == 8 and data["gaps"] == 1 and data["recordings"] == 8
    assert data["front_end"]["sample_rate"] == pytest.approx(RATE, rel=2e-3)
    assert lines[0].startswith("stream: resampled 8 recording(s) with jittery timestamps to ")
    assert lines[0].endswith("; split recordings at 1 gap(s) in their timestamps (no window crosses a gap)")
    assert result.metrics["train"]["accuracy"] >= 0.9  # still and walk differ in ay's energy


def test_mixed_or_unreadable_datetimes_are_one_line_naming_the_line(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(
        "time,ax,activity\n2024-03-01T12:00:00.000Z,1,a\n2024-03-01T12:00:00.020Z,1,a\n0.04,1,a\n"
        "2024-03-01T12:00:00.060Z,1,a\n"
    )
    line = error_line(
        runner.invoke(cli.app, ["train", "--data", str(path), "--label", "activity", "--set", "window_seconds=1"])
    )
    assert "line 4: 'time' holds '0.04', which is not an ISO 8601 datetime" in line
    path.write_text("time,ax,activity\n0.00,1,a\n0.02,1,a\n2024-03-01T12:00:00.060Z,1,a\n")
    line = error_line(
        runner.invoke(cli.app, ["train", "--data", str(path), "--label", "activity", "--set", "window_seconds=1"])
    )
    assert "line 4: column 'time' holds '2024-03-01T12:00:00.060Z', which is not a number" in line
    path.write_text("time,ax,activity\n0.00,1,a\n0.02,1,a\n0.02,1,a\n0.06,1,a\n")
    line = error_line(
        runner.invoke(cli.app, ["train", "--data", str(path), "--label", "activity", "--set", "window_seconds=1"])
    )
    assert "line 4: recording 'mixed' has a timestamp 0.02 s that does not come after the previous one" in line


def test_a_gap_splits_a_recording_and_no_window_straddles_it(tmp_path):
    times = np.concatenate([np.arange(150) / RATE, 3.0 + 2.0 + np.arange(200) / RATE, 12.0 + np.arange(30) / RATE])
    values = np.stack([np.arange(len(times), dtype=float), np.ones(len(times))], axis=1)
    labels = ["a"] * len(times)
    other = (np.arange(300) / RATE, np.zeros((300, 2)), ["b"] * 300)
    path = _log(tmp_path / "gaps.csv", [("r", times, values, labels), ("q", *other)])
    dataset = load_dataset(str(path), "activity", windows=WindowSettings(1.0, 0.5))
    assert dataset.changes == {"resampled_recordings": 0, "gaps": 2}
    assert dataset.group_names == ["r", "q"]
    # segments of 3 s and 4 s give 5 and 7 windows of 1 s every 0.5 s; the last segment (0.6 s) gives none
    assert dataset.groups.tolist() == [0] * (5 + 7) + [1] * 11  # both segments of r: one group for the split
    assert not any(np.isin(dataset.x[:12, :, 0], np.arange(350, 380)).ravel())  # nothing of the short segment
    front_end = {**dataset.front_end}
    windows = stream_windows(path, front_end)
    spans = [(s, e) for name, s, e in zip(windows.recordings, windows.start_times, windows.end_times, strict=True)]
    r_spans = spans[:12]
    for start, end in r_spans:  # the gaps: 3.0 .. 5.0 s and 9.0 .. 12.0 s
        assert end <= 3.0 + 1e-9 or start >= 5.0 - 1e-9
        assert end <= 9.0 + 1e-9
    assert r_spans[5] == pytest.approx((5.0, 6.0))  # the second segment starts at its own first sample
    assert windows.note == "stream: split recordings at 2 gap(s) in their timestamps (no window crosses a gap)"


def test_a_segment_shorter_than_a_window_gives_no_windows(tmp_path):
    times = np.concatenate([np.arange(30) / RATE, 5.0 + np.arange(30) / RATE])  # two segments of 0.6 s
    path = _log(tmp_path / "short.csv", [("r", times, np.zeros((60, 2)), ["a"] * 60)])
    with pytest.raises(UserError, match=r"holds no whole window of 50 samples \(1 s\) between gaps"):
        stream_windows(
            path,
            {
                "sample_rate": RATE,
                "window_steps": 50,
                "stride_steps": 25,
                "channels": ["ax", "ay"],
                "front_end": "raw",
                "kind": "windows",
                "bands": 8,
            },
        )
    with pytest.raises(UserError, match="gives 0 labelled window.*1 gap"):
        load_dataset(str(path), "activity", windows=WindowSettings(1.0))


# --- an .npz of series --------------------------------------------------------------------------------------------


def _series(seed, count=60, steps=32, lengths=None):
    """Two classes of two-channel series: a 3-cycle sine ("zig") or a slow ramp ("flat"), with noise."""
    generator = np.random.default_rng(seed)
    series, labels = [], []
    for index in range(count):
        length = steps if lengths is None else int(generator.integers(*lengths))
        t = np.linspace(0, 1, length)
        zig = index % 2 == 0
        first = 2.0 * np.sin(2 * np.pi * 3 * t) if zig else t
        series.append(np.stack([first, -first], axis=1) + 0.1 * generator.normal(size=(length, 2)))
        labels.append("zig" if zig else "flat")
    return series, labels


def test_the_npz_rule_series_tables_and_images(tmp_path):
    series, labels = _series(0, count=12)
    x = np.stack(series).astype(np.float32)
    np.savez(tmp_path / "table.npz", x=x[:, :, 0], y=np.array(labels))
    np.savez(tmp_path / "images.npz", x=x, y=np.array(labels))
    np.savez(tmp_path / "rated.npz", x=x[:, :, 0], y=np.array(labels), sample_rate=np.array(100.0))
    assert load_dataset(str(tmp_path / "table.npz")).kind == "tabular"  # 2-D x: a table, as always
    assert load_dataset(str(tmp_path / "images.npz")).x.shape == (12, 32, 2, 1)  # 3-D x: grayscale images
    rated = load_dataset(str(tmp_path / "rated.npz"))  # a sample_rate array: series of one channel
    assert rated.kind == "timeseries" and rated.x.shape == (12, 32, 1) and rated.front_end["sample_rate"] == 100.0
    asked = load_config_data(TrainConfig(recipe="cnn1d", data=str(tmp_path / "images.npz")))
    assert asked.kind == "timeseries" and asked.x.shape == (12, 32, 2) and asked.front_end["sample_rate"] is None
    spectral = load_config_data(TrainConfig(data=str(tmp_path / "rated.npz"), front_end="spectral"))
    assert spectral.x.shape == (12, 11) and spectral.front_end["window_steps"] == 32
    # Series of unknown rate: the spectral peak frequency is in cycles per sample, the same features otherwise.
    unrated = load_config_data(TrainConfig(data=str(tmp_path / "images.npz"), front_end="spectral"))
    assert unrated.x.shape == (12, 22) and unrated.front_end["sample_rate"] is None
    peak = 2  # mean, rms, peak_hz, bands
    np.testing.assert_allclose(unrated.x[:, peak] * 100.0, spectral.x[:, peak], rtol=1e-6)
    np.testing.assert_allclose(np.delete(unrated.x[:, :11], peak, 1), np.delete(spectral.x, peak, 1), rtol=1e-6)
    with pytest.raises(UserError, match=r"32 steps \(0.32 s at 100 Hz\), each one window.*drop --set window_seconds"):
        load_config_data(TrainConfig(data=str(tmp_path / "rated.npz"), window_seconds=2.0))


def test_an_npz_of_series_trains_and_predicts_without_window_seconds(tmp_path):
    series, labels = _series(0)
    np.savez(tmp_path / "series.npz", x=np.stack(series), y=np.array(labels))
    config = TrainConfig(
        recipe="cnn1d",
        data=str(tmp_path / "series.npz"),
        conv_filters=[8],
        hidden_units=[8],
        epochs=3,
        batch_size=16,
        learning_rate=0.01,
        out=str(tmp_path),
    )
    result = train(config, report=None)
    data = json.loads((result.run_dir / "data.json").read_text())
    assert data["kind"] == "timeseries" and data["input_shape"] == [32, 2] and data["front_end"]["window_steps"] == 32
    export_run(result.run_dir, ["float32"])
    test, truth = _series(7, count=10)
    np.savez(tmp_path / "test.npz", x=np.stack(test), y=np.array(truth))
    model = result.run_dir / "edge" / "model_float32.tflite"
    _, predictions = predict_file(model, tmp_path / "test.npz", k=1)
    keras = result.model.predict(np.stack(test).astype(np.float32), verbose=0).argmax(axis=1)
    assert [p.prediction.labels[0] for p in predictions] == [data["class_names"][i] for i in keras]
    assert [p.label for p in predictions] == truth
    answer = runner.invoke(cli.app, ["predict", str(model), "--input", str(tmp_path / "test.npz"), "--top-k", "1"])
    assert answer.exit_code == 0, answer.output
    right = sum(p.correct for p in predictions)
    assert _score_line(answer.stdout) == f"accuracy {right / 10:.4f} ({right} of 10 labelled examples, top-1)"


# --- UCR/UEA .ts files --------------------------------------------------------------------------------------------


def _ts(path, series, labels, classes="zig flat", missing=()):
    """Write a .ts file (unequal lengths allowed; ``missing``: (series, step) pairs written as '?')."""
    lengths = {len(values) for values in series}
    lines = [
        "# written by the test",
        "@problemName Zigs",
        "@timeStamps false",
        f"@missing {'true' if missing else 'false'}",
        "@univariate false",
        "@dimensions 2",
        f"@equalLength {'true' if len(lengths) == 1 else 'false'}",
        *([f"@seriesLength {lengths.pop()}"] if len(lengths) == 1 else []),
        f"@classLabel true {classes}",
        "@data",
    ]
    for row, (values, label) in enumerate(zip(series, labels, strict=True)):
        dimensions = []
        for dimension in range(values.shape[1]):
            cells = [f"{value:.5f}" for value in values[:, dimension]]
            for where, step in missing:
                if where == row and dimension == 0:
                    cells[step] = "?"
            dimensions.append(",".join(cells))
        lines.append(":".join(dimensions) + f":{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unequal_ts_with_a_missing_value_trains_and_predict_scores_the_test_file(tmp_path):
    series, labels = _series(0, lengths=(24, 41))
    path = _ts(tmp_path / "Zigs_TRAIN.ts", series, labels, missing=[(0, 5)])
    read = read_ts(path)
    assert read.missing == 1 and read.series[0][5, 0] == pytest.approx(np.mean(series[0][[4, 6], 0]), abs=1e-4)
    longest = max(len(values) for values in series)
    lines = []
    config = TrainConfig(
        recipe="cnn1d", data=str(path), conv_filters=[8], hidden_units=[8], epochs=3, batch_size=16, out=str(tmp_path)
    )
    result = train(config, report=lines.append)
    data = json.loads((result.run_dir / "data.json").read_text())
    assert data["class_names"] == ["zig", "flat"]  # @classLabel's order, not sorted
    assert data["front_end"]["lengths"] == "resampled" and data["front_end"]["window_steps"] == longest
    resampled = sum(len(values) != longest for values in series)
    assert data["resampled_series"] == resampled and data["missing_values"] == 1
    assert f"Zigs_TRAIN: resampled {resampled} of 60 series" in "\n".join(lines)
    assert "Zigs_TRAIN: filled 1 missing value(s) by linear interpolation within their series" in lines
    export_run(result.run_dir, ["float32"])
    test, truth = _series(5, count=12, lengths=(16, 60))  # some longer than any training series
    test_path = _ts(tmp_path / "Zigs_TEST.ts", test, truth)
    model = result.run_dir / "edge" / "model_float32.tflite"
    answer = runner.invoke(cli.app, ["predict", str(model), "--input", str(test_path), "--top-k", "1", "--json"])
    assert answer.exit_code == 0, answer.output
    rows = json.loads(answer.stdout)
    assert [row["true_label"] for row in rows] == truth
    # the device resampled each series to the model's length as training did: Keras on the same arrays agrees
    fitted, _ = fit_length(read_ts(test_path).series, longest)
    keras = result.model.predict(fitted, verbose=0).argmax(axis=1)
    assert [row["top"][0]["label"] for row in rows] == [data["class_names"][i] for i in keras]
    assert [row["correct"] for row in rows] == [row["top"][0]["label"] == row["true_label"] for row in rows]
    assert "note: Zigs_TEST.ts: resampled" in answer.stderr
    text = runner.invoke(cli.app, ["predict", str(model), "--input", str(test_path), "--top-k", "1"])
    right = sum(row["correct"] for row in rows)
    assert _score_line(text.stdout) == f"accuracy {right / 12:.4f} ({right} of 12 labelled examples, top-1)"
    assert re.search(r"\(true: (zig|flat)\)$", text.stdout.splitlines()[0])


def test_equal_ts_trains_and_takes_only_series_of_its_length(tmp_path):
    series, labels = _series(1, count=40)
    path = _ts(tmp_path / "Eq_TRAIN.ts", series, labels)
    config = TrainConfig(data=str(path), hidden_units=[16], epochs=3, out=str(tmp_path))  # mlp on raw series
    result = train(config, report=None)
    data = json.loads((result.run_dir / "data.json").read_text())
    assert data["front_end"]["lengths"] == "equal" and data["resampled_series"] == 0 and data["input_shape"] == [32, 2]
    export_run(result.run_dir, ["float32"])
    model = result.run_dir / "edge" / "model_float32.tflite"
    test, truth = _series(3, count=8)
    answer = runner.invoke(cli.app, ["predict", str(model), "--input", str(_ts(tmp_path / "t.ts", test, truth))])
    assert answer.exit_code == 0, answer.output
    assert _score_line(answer.stdout).startswith("accuracy ")
    longer, _ = _series(3, count=2, steps=40)
    line = error_line(
        runner.invoke(cli.app, ["predict", str(model), "--input", str(_ts(tmp_path / "l.ts", longer, truth[:2]))])
    )
    assert "line 11: a series of 40 steps" in line and "trained on series of 32 steps" in line


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("@classLabel true a b\n@data\n1,2,3,4:a\n1,2,x,4:b\n", "line 4: dimension 1 holds 'x', which is not a number"),
        ("@classLabel true a b\n@data\n1,2,3,4:a\n1,2,3,4:c\n", "line 4: label 'c' is not one of @classLabel's"),
        ("@dimensions 1\n@classLabel true a b\n@data\n1,2,3,4:a\n1,2:3,4:b\n", "line 5: 2 dimension\\(s\\) but"),
        ("@classLabel true a b\n1,2,3,4:a\n", "line 2: data before '@data'"),
        ("@classLabel maybe\n@data\n1,2,3,4:a\n", "line 1: '@classLabel' needs true or false"),
        ("@timeStamps true\n@data\n(0,1),(1,2):a\n", "line 1: '@timeStamps true' is not supported"),
        ("@classLabel true a b\n@colour red\n@data\n", "line 2: unknown header '@colour'"),
        ("@classLabel true a b\n@data\n1,2,3,4:a\n?,?,?,?:b\n", "line 4: dimension 1 has no value"),
        ("# only a comment\n@classLabel true a b\n@data\n", "holds no series"),
    ],
)
def test_a_malformed_ts_file_is_one_line_naming_the_line(tmp_path, body, message):
    path = tmp_path / "bad.ts"
    path.write_text(body)
    line = error_line(runner.invoke(cli.app, ["train", "--data", str(path), "--out", str(tmp_path)]))
    assert re.search(message, line), line
    assert not (tmp_path / "train").exists()


def test_a_labelled_regression_is_scored_by_its_errors():
    from edge.device.predictions import LabelledPrediction, ValuePrediction, score_line

    predictions = [
        LabelledPrediction(ValuePrediction(index, ["target"], [value], [False]), label)
        for index, (value, label) in enumerate([(1.0, "2"), (3.0, "3"), (5.0, "2")])
    ]
    assert score_line(predictions) == f"MAE {4 / 3:.6g}, RMSE {np.sqrt(10 / 3):.6g} (3 labelled examples)"
    assert predictions[0].to_dict() == {"index": 0, "value": 1.0, "true_label": "2"}


def _score_line(output: str) -> str:
    """The line of predict's output that scores a labelled input (the confusion table follows it)."""
    return next(line for line in output.splitlines() if line.startswith(("accuracy ", "MAE ")))
