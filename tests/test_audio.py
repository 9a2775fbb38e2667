"""The audio front end: WAV folders → 49×10 MFCCs, resampling, bad clips, and a DS-CNN that separates tones."""

import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.device.audio import FRONT_END, prepare_clip, read_wav
from edge.device.errors import UserError
from recipes.data import load_dataset
from recipes.data.audio import mfcc_features

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

RATE = 16000
CLIPS_PER_CLASS = 30


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, width: int = 2, channels: int = 1) -> Path:
    """Write float samples in [-1, 1] (shape (n,) or (n, channels)) as integer PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    full_scale = 2 ** (8 * width - 1) - 1
    values = np.round(np.clip(samples, -1, 1) * full_scale).astype(np.int64).reshape(-1)
    if width == 1:
        data = (values + 128).astype(np.uint8).tobytes()
    elif width == 3:
        data = b"".join(int(value).to_bytes(3, "little", signed=True) for value in values)
    else:
        data = values.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(channels)
        clip.setsampwidth(width)
        clip.setframerate(rate)
        clip.writeframes(data)
    return path


def tone(frequency: float, seconds: float = 1.0, rate: int = RATE, phase: float = 0.0) -> np.ndarray:
    time = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * frequency * time + phase)


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    """30 clips each of a 440 Hz tone, a 1.5 kHz tone and white noise: random phase, level and length."""
    folder = tmp_path_factory.mktemp("audio") / "tones"
    generator = np.random.default_rng(0)
    for index in range(CLIPS_PER_CLASS):
        seconds = generator.uniform(0.6, 1.2)
        level = generator.uniform(0.2, 1.0)
        noise = generator.normal(0, 0.01, int(seconds * RATE))
        for name, frequency in (("low", 440.0), ("high", 1500.0)):
            samples = level * tone(frequency, seconds, phase=generator.uniform(0, 2 * np.pi)) + noise
            write_wav(folder / name / f"{index}.wav", samples)
        write_wav(folder / "noise" / f"{index}.wav", level * generator.uniform(-0.5, 0.5, len(noise)))
    return folder


def test_folder_of_wavs_becomes_49_by_10_mfccs(tones):
    dataset = load_dataset(str(tones))
    assert dataset.kind == "audio" and dataset.name == "tones"
    assert dataset.class_names == ["high", "low", "noise"]
    assert dataset.x.shape == (3 * CLIPS_PER_CLASS, 49, 10, 1) and dataset.x.dtype == np.float32
    assert 1 + (FRONT_END["clip_samples"] - FRONT_END["window_samples"]) // FRONT_END["stride_samples"] == 49
    assert np.isfinite(dataset.x).all()
    assert dataset.front_end == FRONT_END


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_pcm_width_reads_the_same_signal(tmp_path, width):
    signal = tone(440.0, 0.05)
    samples, rate = read_wav(write_wav(tmp_path / "a.wav", signal, width=width))
    assert rate == RATE and samples.dtype == np.float32
    np.testing.assert_allclose(samples, signal, atol=1.5 / 2 ** (8 * width - 1))


def test_clips_are_padded_or_cropped_to_one_second():
    one_second = prepare_clip(tone(440.0, 1.0), RATE)
    two_seconds = prepare_clip(np.concatenate([tone(440.0, 1.0), tone(1500.0, 1.0)]), RATE)
    np.testing.assert_array_equal(one_second, two_seconds)  # the first second is kept
    half = prepare_clip(tone(440.0, 0.5), RATE)
    assert len(half) == RATE and not half[RATE // 2 :].any()  # padded with silence at the end
    assert np.abs(half).max() == pytest.approx(1.0)  # peak-normalized, as the reference
    assert not prepare_clip(np.zeros(100, np.float32), RATE).any()  # silence stays silent, no NaN


def _features(path: Path) -> np.ndarray:
    return mfcc_features(prepare_clip(*read_wav(path))[np.newaxis])[0]


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_sample_rates_are_resampled_to_16_khz(tmp_path, rate):
    reference = _features(write_wav(tmp_path / "reference.wav", tone(440.0)))
    other_tone = _features(write_wav(tmp_path / "other.wav", tone(1500.0)))
    path = write_wav(tmp_path / "a.wav", tone(440.0, rate=rate), rate=rate)
    assert read_wav(path)[1] == rate
    resampled = _features(path)
    assert resampled.shape == (49, 10, 1)
    # Within a tenth of the distance to another tone (measured: 2-4 %), and never far off.
    assert np.abs(resampled - reference).mean() < 0.1 * np.abs(other_tone - reference).mean()
    assert np.abs(resampled - reference).max() < 0.05 * np.abs(reference).max()


def _float_wav(path: Path) -> Path:
    """A 32-bit IEEE-float WAV (format 3), which the front end does not read."""
    data = np.zeros(160, "<f4").tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 3, 1, RATE,
                         RATE * 4, 4, 32, b"data", len(data))  # fmt: skip
    path.write_bytes(header + data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_wav(p, np.zeros((RATE, 2)), channels=2), r"has 2 channels; .*downmix"),
        (lambda p: write_wav(p, np.zeros(0)), r"is empty \(no samples\)"),
        (lambda p: p.write_text("not audio"), r"cannot be read .*integer PCM"),
        (_float_wav, r"cannot be read .*integer PCM"),
    ],
    ids=["stereo", "empty", "not-a-wav", "float"],
)
def test_bad_clips_name_the_file_in_one_line(tmp_path, make, message):
    (tmp_path / "data" / "yes").mkdir(parents=True)
    make(tmp_path / "data" / "yes" / "bad.wav")
    write_wav(tmp_path / "data" / "no" / "fine.wav", tone(440.0))
    with pytest.raises(UserError, match=message) as caught:
        load_dataset(str(tmp_path / "data"))
    assert "bad.wav" in str(caught.value) and "\n" not in str(caught.value)


def test_class_folder_without_clips(tmp_path):
    write_wav(tmp_path / "data" / "yes" / "a.wav", tone(440.0))
    (tmp_path / "data" / "no").mkdir()
    (tmp_path / "data" / "no" / "notes.txt").write_text("no clips")
    with pytest.raises(UserError, match=r"class folder .*no has no \.wav clips"):
        load_dataset(str(tmp_path / "data"))


def test_ds_cnn_trained_on_tones_separates_them(tones, tmp_path):
    # 54 training clips give ~7 steps per epoch: BatchNorm's running statistics need a faster
    # average than Keras's 0.99 to settle within 20 epochs.
    result = CliRunner().invoke(
        cli.app,
        ["train", "--recipe", "ds_cnn", "--data", str(tones), "--epochs", "20", "--batch-size", "8",
         "--set", "batch_norm_momentum=0.9", "--out", str(tmp_path), "--seed", "0", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "train").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9
    data = json.loads((run_dir / "data.json").read_text())
    assert data["kind"] == "audio" and data["input_shape"] == [49, 10, 1] and data["front_end"] == FRONT_END
