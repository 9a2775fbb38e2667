"""Sensor streams: windows, the split by recording, the front ends, cnn1d with int8, and predict on a new stream."""

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from edge.device.model import EdgeModel
from edge.device.predictions import predict_file
from edge.device.windows import LOG_FLOOR, band_edges, spectral_features, stream_windows
from edge.export import export_run
from recipes.config import TrainConfig
from recipes.data import load_config_data, load_dataset
from recipes.data.motion import ACTIVITIES, SAMPLE_RATE, motion_recordings, write_stream_csv
from recipes.data.streams import WindowSettings
from recipes.input_pipeline import prepare_data
from recipes.splitting import group_split, split_indices
from recipes.training import train
from tests.helpers import error_line

runner = CliRunner()


def _stream(path, rows, header="time,recording,x,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


# --- reading and windowing (no training) ----------------------------------------------------------------------


def test_a_window_takes_its_majority_label_and_a_mixed_window_is_dropped_and_counted(tmp_path):
    rows = [f"{i / 10:.1f},r1,{i},{'a' if i < 100 else 'b'}" for i in range(200)]
    rows += [f"{i / 10:.1f},r2,{-i},c" for i in range(100)] + [f"{i / 10:.1f},r3,{i % 7},c" for i in range(100)]
    data = _stream(tmp_path / "s.csv", rows)
    dataset = load_dataset(str(data), "label", windows=WindowSettings(5.0, 2.5))
    # r1: 200 samples at 10 Hz, windows of 50 every 25: starts 0..150; the one at 75 is half a, half b.
    assert dataset.windows_dropped == 1 and dataset.kind == "timeseries"
    labels = [dataset.class_names[i] for i in dataset.y]
    assert labels == ["a", "a", "a", "b", "b", "b"] + ["c"] * 6
    assert dataset.groups.tolist() == [0] * 6 + [1] * 3 + [2] * 3 and dataset.group_names == ["r1", "r2", "r3"]
    assert dataset.x.shape == (12, 50, 1) and dataset.x[1, 0, 0] == 25.0  # the second window starts at sample 25
    assert dataset.front_end["sample_rate"] == pytest.approx(10.0) and dataset.front_end["window_steps"] == 50


@pytest.mark.parametrize(
    ("rows", "settings", "message"),
    [
        (
            ["0.0,r,1,a", "0.1,r,2,a", "0.2,r,3,a", "0.3,r,3,a", "0.32,r,3,a"],
            WindowSettings(1.0),
            "line 6: recording 'r' steps 0.02 s after the previous sample, not more than half its period of 0.1 s",
        ),
        (["0.0,r,1,a", "0.1,r,x,a"], WindowSettings(1.0), "column 'x' holds 'x', which is not a number"),
        (["0.0,r,1,a", "0.1,r,2,a"], WindowSettings(1.0, group="person"), "has no column 'person'"),
        (["0.0,r,1,a", "0.1,r,2,a"], WindowSettings(1.0, front_end="fft"), "unknown front_end 'fft'"),
    ],
)
def test_stream_mistakes_are_one_clear_line(tmp_path, rows, settings, message):
    with pytest.raises(UserError, match=message):
        load_dataset(str(_stream(tmp_path / "s.csv", rows)), "label", windows=settings)


def test_a_stream_without_time_needs_a_sample_rate(tmp_path):
    rows = [f"r,{i},{'a' if i < 20 else 'b'}" for i in range(40)]
    data = _stream(tmp_path / "s.csv", rows, header="recording,x,label")
    with pytest.raises(UserError, match="no 'time' column; give the sample rate, e.g. --set sample_rate=50"):
        load_dataset(str(data), "label", windows=WindowSettings(1.0))
    assert load_dataset(str(data), "label", windows=WindowSettings(1.0, sample_rate=10)).x.shape == (6, 10, 1)


def test_time_series_mode_is_explicit_and_refused_where_it_does_not_apply():
    line = error_line(runner.invoke(cli.app, ["train", "--data", "digits", "--set", "window_seconds=2"]))
    assert "window_seconds cuts a CSV stream" in line
    line = error_line(runner.invoke(cli.app, ["train", "--recipe", "cnn1d", "--data", "iris"]))
    assert "cnn1d recipe needs windows of a stream" in line


def test_the_split_keeps_every_recording_in_one_part_where_a_plain_split_leaks():
    dataset = load_config_data(TrainConfig(data="motion"))
    assert len(dataset.group_names) == 8 * len(ACTIVITIES) * 2 and dataset.x.shape[1:] == (100, 6)
    plain = split_indices(dataset.y, (0.6, 0.2, 0.2), 0)
    shared = set(dataset.groups[plain.train]) & set(dataset.groups[plain.test])
    assert len(shared) > 10  # overlapping windows of one recording on both sides: the test set leaks
    grouped = group_split(dataset.y, dataset.groups, (0.6, 0.2, 0.2), 0)
    parts = [set(dataset.groups[part]) for part in (grouped.train, grouped.dev, grouped.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert grouped.stratified and sum(map(len, parts)) == len(dataset.group_names)
    assert abs(len(grouped.test) - 0.2 * len(dataset.y)) < 0.05 * len(dataset.y)  # the seed's sizes, by windows


def test_too_few_recordings_of_a_label_is_said():
    labels = np.array([0] * 6 + [1] * 6 + [2] * 2)
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6])
    split = group_split(labels, groups, (0.6, 0.2, 0.2), 0)
    assert split.notes == (
        "1 label(s) have fewer than 3 recordings ('2'): not every split holds each of them (add recordings)",
    )
    with pytest.raises(UserError, match="holds 2 recording"):
        group_split(np.zeros(4), np.array([0, 0, 1, 1]), (0.6, 0.2, 0.2), 0)


def test_spectral_features_measure_a_known_sine():
    t = np.arange(100) / 50.0
    window = np.stack([3.0 + 2.0 * np.sin(2 * np.pi * 5.0 * t), np.zeros(100)], axis=1)[np.newaxis]
    features = spectral_features(window, 50.0, 8).reshape(2, -1)  # channel by channel: mean, rms, peak, bands
    assert features[0, 0] == pytest.approx(3.0, abs=1e-6) and features[0, 1] == pytest.approx(2 / np.sqrt(2), rel=1e-3)
    assert features[0, 2] == pytest.approx(5.0)
    # 100 samples at 50 Hz: bins of 0.5 Hz; band edges (bins) rounded from the geometric spacing 1, 1.63, 2.67, 4.36,
    # 7.14, 11.7, 19.1, 31.2, 51 (each band at least one bin wide): 5 Hz (bin 10) is band 4
    assert band_edges(51, 8).tolist() == [1, 2, 3, 4, 7, 12, 19, 31, 51]
    assert np.argmax(features[0, 3:]) == 4
    assert np.all(features[1, 3:] == np.float32(np.log10(LOG_FLOOR)))  # a silent channel: the log floor, finite


# --- training, export and predict -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def motion_run(tmp_path_factory):
    """cnn1d trained on a CSV stream the test writes (the motion recordings, several per class), and its int8
    export."""
    folder = tmp_path_factory.mktemp("motion")
    write_stream_csv(folder / "imu.csv", motion_recordings(seed=0))
    config = TrainConfig(
        recipe="cnn1d",
        data=str(folder / "imu.csv"),
        label="activity",
        window_seconds=2.0,
        window_stride_seconds=1.0,
        conv_filters=[16, 32],
        hidden_units=[32],
        epochs=25,
        time_shift=0.1,
        amplitude_scale=0.2,
        out=str(folder),
    )
    result = train(config, report=None)
    return folder, result, export_run(result.run_dir, ["float32", "int8"])


def test_cnn1d_learns_the_activities_on_the_split_by_recording(motion_run):
    _, result, _ = motion_run
    assert result.metrics["test"]["accuracy"] >= 0.9, result.metrics["test"]
    data = json.loads((result.run_dir / "data.json").read_text())
    assert data["kind"] == "timeseries" and data["recordings"] == 64 and data["front_end"]["kind"] == "windows"
    assert data["front_end"]["channels"] == ["ax", "ay", "az", "gx", "gy", "gz"]


def test_int8_is_within_one_point_and_runs_on_tflite_micro_kernels(motion_run):
    _, _, report = motion_run
    int8 = next(variant for variant in report.variants if variant.name == "int8")
    assert not report.failing and int8.parity.accuracy_drop_points <= 1.0
    assert "CONV_2D" in int8.operators.counts and not int8.operators.micro_int8_unsupported


def test_predict_labels_each_window_of_an_unseen_recording_with_its_times(motion_run):
    folder, result, _ = motion_run
    someone_new = [recording for recording in motion_recordings(seed=11, people=1) if recording[0].endswith("-0")]
    write_stream_csv(folder / "new.csv", someone_new)
    model_path = result.run_dir / "edge" / "model_int8.tflite"
    answer = runner.invoke(cli.app, ["predict", str(model_path), "--input", str(folder / "new.csv"), "--json"])
    assert answer.exit_code == 0, answer.output
    rows = json.loads(answer.stdout)
    per_recording = int((24.0 - 2.0) / 1.0) + 1  # 24 s recordings, 2 s windows every second
    assert len(rows) == len(someone_new) * per_recording
    assert rows[1]["start_time"] == pytest.approx(1.0) and rows[1]["end_time"] == pytest.approx(3.0)
    truth = [activity for _, activity, _ in someone_new for _ in range(per_recording)]
    correct = np.mean([row["top"][0]["label"] == label for row, label in zip(rows, truth, strict=True)])
    assert correct >= 0.9, correct
    _, predictions = predict_file(model_path, folder / "new.csv", k=1)
    assert predictions[0].to_line().endswith("[p0-still-0 0.00-2.00 s]")


def test_the_device_front_end_equals_trainings(motion_run, tmp_path):
    folder, result, _ = motion_run
    model = EdgeModel.load(result.run_dir / "edge" / "model_float32.tflite")
    one = [recording for recording in motion_recordings(seed=0) if recording[0] in ("p0-walk-0", "p0-run-0")]
    write_stream_csv(tmp_path / "one.csv", one)
    for front_end in ("raw", "spectral"):
        trained = load_dataset(
            str(tmp_path / "one.csv"), "activity", windows=WindowSettings(2.0, 1.0, front_end=front_end)
        )
        device = stream_windows(tmp_path / "one.csv", {**model.front_end, "front_end": front_end})
        np.testing.assert_array_equal(device.x, trained.x)  # the same code on both sides: tolerance 0


def test_spectral_front_end_and_an_npz_of_windows(tmp_path):
    recordings = motion_recordings(seed=3, people=4)
    windows = np.stack([samples[start : start + 100] for _, _, samples in recordings for start in (0, 400, 800)])
    labels = np.array([activity for _, activity, _ in recordings for _ in range(3)])
    np.savez(tmp_path / "windows.npz", x=windows, y=labels)
    config = TrainConfig(
        data=str(tmp_path / "windows.npz"), sample_rate=SAMPLE_RATE, front_end="spectral", window_seconds=2.0
    )
    data = prepare_data(config)
    assert data.dataset.x.shape == (len(windows), 6 * 11)
    assert data.dataset.feature_names[:4] == ["c0_mean", "c0_rms", "c0_peak_hz", "c0_band0"]
    result = train(replace(config, out=str(tmp_path), hidden_units=[32], epochs=30, learning_rate=0.01), report=None)
    assert result.metrics["train"]["accuracy"] > 0.9
    export_run(result.run_dir, ["float32"])
    np.savez(tmp_path / "some.npz", x=windows[:5])  # raw windows: predict applies the spectral front end
    _, predictions = predict_file(result.run_dir / "edge" / "model_float32.tflite", tmp_path / "some.npz", k=1)
    keras = result.model.predict(spectral_features(windows[:5], SAMPLE_RATE, 8), verbose=0)
    names = json.loads((result.run_dir / "data.json").read_text())["class_names"]
    assert [p.labels[0] for p in predictions] == [names[i] for i in keras.argmax(axis=1)]
    with pytest.raises(UserError, match="carries no sample rate"):
        prepare_data(TrainConfig(data=str(tmp_path / "windows.npz"), window_seconds=2.0))


def test_a_continuous_label_gives_each_window_its_mean_for_a_regression(tmp_path):
    rows = [f"{i / 10:.1f},r{i // 100},{np.sin(i / 5):.4f},{20 + i * 0.01:.4f}" for i in range(600)]
    data = _stream(tmp_path / "s.csv", rows, header="time,recording,x,temperature")
    dataset = load_dataset(str(data), "temperature", windows=WindowSettings(2.0, 1.0))
    assert dataset.windows_dropped == 0 and dataset.x.shape == (6 * 9, 20, 1)
    assert dataset.targets[0, 0] == pytest.approx(20 + 0.01 * 9.5)  # the mean of samples 0..19
    assert prepare_data(TrainConfig(data=str(data), label="temperature", window_seconds=2.0)).task.name == "regression"


def test_window_augmentation_shifts_and_scales_each_window_within_its_limits(tmp_path):
    from recipes.input_pipeline import augmenter

    write_stream_csv(tmp_path / "imu.csv", motion_recordings(seed=0, people=1))
    config = TrainConfig(
        data=str(tmp_path / "imu.csv"), label="activity", window_seconds=2.0, time_shift=0.1, amplitude_scale=0.3
    )
    data = prepare_data(config)
    x = data.part("train")[0][:16]
    shifted = np.asarray(augmenter(replace(config, amplitude_scale=0.0), data)(x))
    for before, after in zip(x, shifted, strict=True):
        matches = [k for k in range(-10, 11) if np.allclose(after, before[np.clip(np.arange(100) + k, 0, 99)])]
        assert matches, "each window is its own samples shifted by at most 10 of 100 steps"
    scaled = np.asarray(augmenter(replace(config, time_shift=0.0), data)(x))
    factor = (scaled - data.spec.mean) / (x - data.spec.mean)
    per_window = factor.reshape(16, -1)
    assert np.allclose(per_window, per_window[:, :1], rtol=1e-3, atol=1e-3)  # one factor per window
    assert ((per_window[:, 0] >= 0.7 - 1e-4) & (per_window[:, 0] <= 1.3 + 1e-4)).all()
    assert len(set(np.round(per_window[:, 0], 4))) > 1


def test_the_activities_per_class_results_confusion_figures_and_page(motion_run, tmp_path):
    from tests.helpers import assert_run_page

    _, result, _ = motion_run
    report = assert_run_page(result.run_dir, tmp_path)
    assert report["keras_classes"]["names"] == sorted(ACTIVITIES)  # the class names of data.json
    assert [variant["name"] for variant in report["variants"]] == ["float32", "int8"]
