"""Audio models on the device: the front end in the manifest, numpy MFCCs equal to tf.signal's, ``.wav`` input.

Stated tolerances (edge/device/mfcc.py): the numpy MFCCs equal the same tf.signal steps run in float64 up to the
float32 rounding of the result, 2e-5 (measured 1e-13 before rounding), and the float32 features training
computes within 0.05 on clips inside the 20 Hz-4 kHz mel bands (measured up to 0.039; the features span
about -124 to 25).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import cli
from edge.device.audio import FRONT_END, prepare_clip, read_wav
from edge.device.mfcc import mfcc
from edge.export import export_run
from recipes.backend import import_keras
from recipes.config import resolve_config
from recipes.data.audio import mfcc_features
from recipes.training import train
from tests.helpers import assert_bundle_predicts_like_the_cli
from tests.test_audio import RATE, tone, write_wav

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization")
runner = CliRunner()


def _in_band_clips() -> np.ndarray:
    """Prepared clips inside the mel bands: tones, noise, a chirp, a tone padded with silence, silence."""
    time = np.arange(RATE) / RATE
    signals = [tone(frequency) for frequency in (100.0, 440.0, 1500.0, 3000.0)]
    signals += [
        np.random.default_rng(0).normal(0, 0.3, RATE),
        np.sin(2 * np.pi * (200 + 1800 * time) * time),
        tone(440.0, 0.4),
        np.zeros(RATE),
    ]
    return np.stack([prepare_clip(signal, RATE) for signal in signals]).astype(np.float32)


def test_numpy_mfccs_are_tf_signal_in_float64():
    import_keras()
    import tensorflow as tf

    clips = _in_band_clips()
    stft = tf.signal.stft(
        tf.constant(clips, tf.float64),
        FRONT_END["window_samples"],
        FRONT_END["stride_samples"],
        FRONT_END["fft_length"],
        window_fn=tf.signal.hann_window,
    )
    mel = tf.signal.linear_to_mel_weight_matrix(
        FRONT_END["mel_bins"],
        FRONT_END["fft_length"] // 2 + 1,
        FRONT_END["sample_rate"],
        FRONT_END["lower_hz"],
        FRONT_END["upper_hz"],
        dtype=tf.float64,
    )
    log_mel = tf.math.log(tf.tensordot(tf.abs(stft), mel, 1) + FRONT_END["log_offset"])
    expected = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : FRONT_END["mfcc_coefficients"]].numpy()
    features = mfcc(clips, FRONT_END)
    assert features.shape == (len(clips), 49, 10, 1) and features.dtype == np.float32
    assert np.abs(features[..., 0] - expected).max() <= 2e-5  # float32 rounding of values up to ~124


def test_numpy_mfccs_match_the_training_features():
    clips = _in_band_clips()
    assert np.abs(mfcc(clips, FRONT_END) - mfcc_features(clips)).max() <= 0.05


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory) -> Path:
    """A DS-CNN trained 20 epochs on 15 clips each of a 440 Hz and a 1.5 kHz tone (all test clips right),
    exported float32 and int8."""
    root = tmp_path_factory.mktemp("audio-export")
    generator = np.random.default_rng(1)
    for index in range(15):
        for name, frequency in (("low", 440.0), ("high", 1500.0)):
            seconds = generator.uniform(0.6, 1.2)
            samples = generator.uniform(0.2, 1.0) * tone(frequency, seconds, phase=generator.uniform(0, 2 * np.pi))
            write_wav(root / "tones" / name / f"{index}.wav", samples + generator.normal(0, 0.01, len(samples)))
    config = resolve_config(
        None,
        {
            "recipe": "ds_cnn",
            "data": str(root / "tones"),
            "epochs": 20,
            "batch_size": "4",
            "learning_rate": 0.003,
            "seed": 0,
            "out": str(root),
        },
        ["batch_norm_momentum=0.9"],
    )
    result = train(config, report=None)
    assert result.metrics["test"]["accuracy"] == 1.0  # so the labels below mean something
    run_dir = result.run_dir
    export_run(run_dir, ["float32", "int8"])
    return run_dir


def test_manifest_holds_the_front_end(audio_run):
    manifest = json.loads((audio_run / "edge" / "manifest.json").read_text())
    assert manifest["front_end"] == FRONT_END and manifest["task"] == "classification" and manifest["anomaly"] is None
    assert manifest["input_shape"] == [49, 10, 1] and manifest["class_names"] == ["high", "low"]


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_predict_a_wav_clip_like_keras_on_the_training_features(audio_run, tmp_path, variant):
    """float32 within 1e-4 of Keras's probability (the numpy features differ from training's by up to 0.04;
    measured 5e-6), int8 within its registry limit 0.25 (measured 0.014)."""
    from recipes.runs import load_model

    keras_model = load_model(audio_run)
    for frequency, label in ((1500.0, "high"), (440.0, "low")):
        clip = write_wav(tmp_path / f"{label}.wav", 0.7 * tone(frequency, 0.8))
        result = runner.invoke(
            cli.app, ["predict", str(audio_run / "edge" / f"model_{variant}.tflite"), "--input", str(clip), "--json"]
        )
        assert result.exit_code == 0, result.output
        (prediction,) = json.loads(result.output)
        keras = keras_model.predict(mfcc_features(prepare_clip(*read_wav(clip))[np.newaxis]), verbose=0)[0]
        assert prediction["top"][0]["label"] == label == ["high", "low"][int(keras.argmax())]
        assert prediction["top"][0]["score"] == pytest.approx(keras.max(), abs=1e-4 if variant == "float32" else 0.1)


def test_a_wav_for_a_model_without_front_end_is_one_line(audio_run, tmp_path):
    shutil.copy(audio_run / "edge" / "model_float32.tflite", tmp_path / "model.tflite")  # no manifest beside it
    clip = write_wav(tmp_path / "clip.wav", tone(440.0))
    result = runner.invoke(cli.app, ["predict", str(tmp_path / "model.tflite"), "--input", str(clip)])
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: {clip} is a WAV clip but {tmp_path / 'model.tflite'} has no audio front end (none in a "
        "manifest.json beside it); give its input features instead, a .npy file of shape (n, 49, 10, 1)"
    )


def test_wav_prediction_imports_no_tensorflow(audio_run, tmp_path):
    clip = write_wav(tmp_path / "clip.wav", tone(440.0, rate=8000), rate=8000)  # resampled with scipy
    code = f"""
import json, sys
from typer.testing import CliRunner
import cli

result = CliRunner().invoke(cli.app, ["predict", {str(audio_run / "edge" / "model_int8.tflite")!r},
                                      "--input", {str(clip)!r}, "--json"])
assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})))
"""
    finished = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(finished.stdout.strip().splitlines()[-1]) == []


def test_the_device_bundle_takes_a_wav_clip_as_the_cli_does(audio_run, device_env, tmp_path):
    clip = write_wav(tmp_path / "clip.wav", 0.7 * tone(1500.0, 0.8))
    output = assert_bundle_predicts_like_the_cli(
        device_env, audio_run / "edge", tmp_path, "model_int8.tflite", "--input", str(clip), "--json"
    )
    assert json.loads(output)[0]["top"][0]["label"] == "high"


def test_a_wav_folders_per_class_results_confusion_figures_and_page(audio_run, tmp_path):
    from tests.helpers import assert_run_page

    report = assert_run_page(audio_run, tmp_path)
    metrics = json.loads((audio_run / "metrics.json").read_text())
    # every test clip right (the fixture's bar): a diagonal matrix, recall 1 for both tones, Keras and int8 alike
    for classes in (metrics["test"]["classes"], *(variant["classes"] for variant in report["variants"])):
        matrix = np.asarray(classes["confusion_matrix"])
        assert classes["names"] == ["high", "low"] and (matrix == np.diag(np.diag(matrix))).all()


def test_predict_a_labelled_folder_scores_it_with_a_confusion_table(audio_run, tmp_path):
    """A folder labelled like training data (class subfolders) is read in one process: one line per clip with its
    file and true label, the accuracy and the confusion table; a subfolder naming no class counts wrong."""
    folder = tmp_path / "held_out"
    for index in range(3):
        write_wav(folder / "high" / f"h{index}.wav", (0.5 + 0.1 * index) * tone(1500.0, 0.9))
        write_wav(folder / "low" / f"l{index}.wav", (0.5 + 0.1 * index) * tone(440.0, 0.9))
    write_wav(folder / "hum" / "x.wav", 0.6 * tone(440.0, 0.9))  # no class of the model: predicted "low", wrong
    (folder / "notes.txt").write_text("not an input")
    result = runner.invoke(cli.app, ["predict", str(audio_run / "edge" / "model_int8.tflite"), "--input", str(folder)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("[high/h0.wav]  (true: high)") and lines[0].split(":")[1].split()[0] == "high"
    assert sum("[hum/x.wav]  (true: hum)" in line for line in lines) == 1
    assert "accuracy 0.8571 (6 of 7 labelled examples, top-1)" in lines
    table = lines[lines.index("confusion (rows: true label, columns: predicted class, counts; recall at the right):") :]
    assert table[2].split() == ["high", "3", ".", "1.000"] and table[3].split() == ["low", ".", "3", "1.000"]
    assert table[4].split() == ["hum", ".", "1", "0.000"] and table[5] == "most confused: hum as low ×1"
    assert "1 label(s) of" in result.stderr and "name no class" in result.stderr

    as_json = runner.invoke(
        cli.app, ["predict", str(audio_run / "edge" / "model_int8.tflite"), "--input", str(folder), "--json"]
    )
    entries = json.loads(as_json.stdout)
    last = entries[-1]
    assert (last["file"], last["true_label"], last["correct"]) == ("low/l2.wav", "low", True)

    png = tmp_path / "figures" / "held_out.png"
    drawn = runner.invoke(
        cli.app,
        ["predict", str(audio_run / "edge" / "model_int8.tflite"), "--input", str(folder), "--confusion-png", str(png)],
    )
    assert drawn.exit_code == 0, drawn.output
    with Image.open(png) as image:  # the classes' rows only: 2 x 2, drawn
        assert image.format == "PNG" and image.size[0] > 200 and image.size[1] > 200


def test_predict_a_flat_folder_and_a_listed_one(audio_run, tmp_path):
    flat = tmp_path / "flat"
    write_wav(flat / "b.wav", 0.7 * tone(440.0, 0.8))
    write_wav(flat / "a.wav", 0.7 * tone(1500.0, 0.8))
    model = str(audio_run / "edge" / "model_float32.tflite")
    result = runner.invoke(cli.app, ["predict", model, "--input", str(flat), "--top-k", "1"])
    assert result.exit_code == 0, result.output
    assert [line.split()[1] + " " + line.split()[-1] for line in result.stdout.splitlines()] == [
        "high [a.wav]",
        "low [b.wav]",
    ]  # unlabelled: no score line
    (flat / "labels.csv").write_text("file,label\na.wav,high\nb.wav,high\n")
    listed = runner.invoke(cli.app, ["predict", model, "--input", str(flat)])
    assert "accuracy 0.5000 (1 of 2 labelled examples, top-1)" in listed.stdout
    (flat / "labels.csv").write_text("file,label\n../a.wav,high\n")
    outside = runner.invoke(cli.app, ["predict", model, "--input", str(flat)])
    assert outside.exit_code == 2 and "outside the folder" in outside.stderr and "Traceback" not in outside.output
    (tmp_path / "empty").mkdir()
    unlabelled = runner.invoke(
        cli.app, ["predict", model, "--input", str(flat / "a.wav"), "--confusion-png", str(tmp_path / "c.png")]
    )
    assert unlabelled.exit_code == 2 and "--confusion-png needs labelled inputs" in unlabelled.stderr
    assert not (tmp_path / "c.png").exists()
    empty = runner.invoke(cli.app, ["predict", model, "--input", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and empty.stderr.startswith("error: folder ") and len(empty.stderr.splitlines()) == 1


def test_a_folder_is_read_a_chunk_of_files_at_a_time_with_the_same_answers(audio_run, tmp_path, monkeypatch):
    """Memory is bounded by the chunk, not the folder: read 2 files at a time, the predictions, their numbering and
    the score equal those of reading the folder at once."""
    import edge.device.predictions

    folder = tmp_path / "held_out"
    for index in range(3):
        write_wav(folder / "high" / f"h{index}.wav", (0.5 + 0.1 * index) * tone(1500.0, 0.9))
        write_wav(folder / "low" / f"l{index}.wav", (0.5 + 0.1 * index) * tone(440.0, 0.9))
    args = ["predict", str(audio_run / "edge" / "model_int8.tflite"), "--input", str(folder)]
    whole = runner.invoke(cli.app, args)
    monkeypatch.setattr(edge.device.predictions, "FOLDER_CHUNK_FILES", 2)
    chunked = runner.invoke(cli.app, args)
    assert chunked.exit_code == whole.exit_code == 0, chunked.output
    assert chunked.stdout == whole.stdout
    assert [int(line.split(":")[0]) for line in chunked.stdout.splitlines()[:6]] == list(range(6))
