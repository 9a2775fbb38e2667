"""Real-size data: rows read from disk on demand, the feature cache, streamed statistics, progress, and one line
when memory or disk runs out."""

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from recipes import checkpoints, feature_cache
from recipes.config import resolve_config
from recipes.data import load_dataset
from recipes.data.images import ImageFrontEnd
from recipes.feature_cache import CacheSettings
from recipes.normalization import normalization_statistics
from recipes.progress import Progress
from recipes.records import RecordArray, chunks, take
from tests.helpers import ROOT, error_line, start_cli


def image_folder(root, per_class: int = 5, size: tuple[int, int] = (6, 5), seed: int = 0):
    """Two classes of RGB PNGs: dark and bright noise."""
    generator = np.random.default_rng(seed)
    for name, low in (("dark", 0), ("bright", 120)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = generator.integers(low, low + 130, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index:03d}.png")
    return root


# --- rows on disk ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_record_array_reads_rows_as_numpy_would(tmp_path, dtype):
    values = (np.random.default_rng(0).random((30, 4, 5, 3)) * 200).astype(dtype)
    np.save(tmp_path / "rows.npy", values)
    rows = RecordArray(tmp_path / "rows.npy")
    expected = values.astype(np.float32)
    assert rows.shape == (30, 4, 5, 3) and len(rows) == 30 and rows.ndim == 4 and rows.nbytes == expected.nbytes
    np.testing.assert_array_equal(rows[7], expected[7])
    np.testing.assert_array_equal(rows[2:9], expected[2:9])
    np.testing.assert_array_equal(rows[[5, 1, 5, 29]], expected[[5, 1, 5, 29]])  # unsorted, repeated
    mask = expected[:, 0, 0, 0] > 100
    np.testing.assert_array_equal(rows[mask], expected[mask])
    view = rows.take(np.array([9, 3, 20])).take(np.array([2, 0]))  # a view of a view reads nothing until indexed
    np.testing.assert_array_equal(np.asarray(view), expected[[20, 9]])
    np.testing.assert_array_equal(np.concatenate(list(chunks(rows, 7))), expected)
    np.testing.assert_array_equal(np.asarray(pickle.loads(pickle.dumps(view))), expected[[20, 9]])
    assert rows[2:9].dtype == np.float32
    np.testing.assert_array_equal(take(values, np.array([4, 2])), values[[4, 2]])  # in memory: a plain copy


def test_a_truncated_cache_file_is_refused_when_read(tmp_path):
    np.save(tmp_path / "rows.npy", np.zeros((10, 8), np.float32))
    with open(tmp_path / "rows.npy", "r+b") as handle:
        handle.truncate(os.path.getsize(tmp_path / "rows.npy") - 16)
    with pytest.raises(OSError, match="shorter than its header"):
        RecordArray(tmp_path / "rows.npy")[9]


def test_streamed_statistics_equal_the_in_memory_ones_on_mixed_units(tmp_path):
    """Features in units six orders of magnitude apart, around offsets up to 1e6: the chunks' merged mean and
    variance equal numpy's float64 figures over the whole array."""
    generator = np.random.default_rng(1)
    scales = np.array([1e-3, 1.0, 1e3, 1e6])
    values = (generator.normal(size=(2_300, 4)) * scales + np.array([0.0, 5.0, -40.0, 1e6])).astype(np.float32)
    np.save(tmp_path / "x.npy", values)
    rows = RecordArray(tmp_path / "x.npy")
    train = np.sort(generator.choice(len(values), 1_700, replace=False))
    mean, variance = normalization_statistics(take(rows, train))
    reference = values[train].astype(np.float64)
    np.testing.assert_allclose(mean, reference.mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(variance, reference.var(axis=0), rtol=1e-5)
    in_memory = normalization_statistics(values[train])
    np.testing.assert_allclose(mean, in_memory[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(variance, in_memory[1], rtol=1e-5)


# --- the feature cache ---------------------------------------------------------------------------------


def counting(monkeypatch) -> list[int]:
    """Count the files ImageFrontEnd decodes."""
    decoded: list[int] = []
    original = ImageFrontEnd.compute

    def compute(self, files):
        decoded.append(len(files))
        return original(self, files)

    monkeypatch.setattr(ImageFrontEnd, "compute", compute)
    return decoded


def test_features_are_cached_reused_and_only_changed_files_recomputed(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "shots")
    cache = CacheSettings(tmp_path / "cache")
    decoded = counting(monkeypatch)
    plain = load_dataset(str(folder))  # no cache: computed in memory
    first = load_dataset(str(folder), cache=cache)
    second = load_dataset(str(folder), cache=cache)
    assert sum(decoded) == 20  # 10 without the cache, 10 filling it, none reusing it
    np.testing.assert_array_equal(first.x, plain.x)
    np.testing.assert_array_equal(second.x, plain.x)
    cached = sorted(path.suffix for path in (tmp_path / "cache").iterdir())
    assert cached == [".files", ".json", ".npy"]
    assert np.load(next((tmp_path / "cache").glob("*.npy"))).dtype == np.uint8  # 8-bit RGB kept as bytes

    changed = folder / "dark" / "002.png"
    Image.fromarray(np.full((5, 6, 3), 7, np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))  # another modification time, whatever the clock's resolution
    third = load_dataset(str(folder), cache=cache)
    assert decoded[2:] == [1]  # the changed image only; the other nine rows copied from the old array
    changed_row = 5 + 2  # classes sort: bright (0-4), dark (5-9)
    assert third.x[changed_row].max() == 7
    assert np.array_equal(np.delete(third.x, changed_row, 0), np.delete(plain.x, changed_row, 0))
    assert len(list((tmp_path / "cache").iterdir())) == 3  # replaced, not added

    (folder / "bright" / "000.png").unlink()  # one file gone, two new: rows move, the kept ones are copied
    for name in ("dark/new-a.png", "bright/new-b.png"):
        Image.fromarray(np.full((5, 6, 3), 99, np.uint8)).save(folder / name)
    fourth = load_dataset(str(folder), cache=cache)
    assert decoded[3:] == [2] and len(fourth.x) == 11
    np.testing.assert_array_equal(fourth.x, load_dataset(str(folder)).x)

    resized = load_dataset(str(folder), image_size=[3, 3], cache=cache)  # another parameter: another key
    assert resized.x.shape == (11, 3, 3, 3) and decoded[-1] == 11
    assert len(list((tmp_path / "cache").iterdir())) == 6


def test_a_clip_recorded_again_at_the_same_length_is_not_served_from_the_cache(tmp_path):
    """A WAV file replaced by another recording of the same length has the same size: the cache must see the new
    modification time and compute its MFCCs again (the other clips' rows are reused)."""
    import wave

    def write(path, seed):
        samples = np.random.default_rng(seed).normal(0, 3000, 16000).clip(-32768, 32767).astype("<i2")
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes(samples.tobytes())

    folder = tmp_path / "clips"
    for index in range(3):
        write(folder / "yes" / f"{index}.wav", index)
        write(folder / "no" / f"{index}.wav", 10 + index)
    cache = CacheSettings(tmp_path / "cache")
    first = load_dataset(str(folder), cache=cache)
    clip = folder / "yes" / "1.wav"
    size = clip.stat().st_size
    write(clip, 99)
    os.utime(clip, ns=(1, 1))  # another modification time, whatever the clock's resolution
    assert clip.stat().st_size == size
    second = load_dataset(str(folder), cache=cache)
    row = 3 + 1  # classes sort: no (0-2), yes (3-5)
    np.testing.assert_array_equal(second.x, load_dataset(str(folder)).x)
    assert not np.array_equal(second.x[row], first.x[row])


def test_features_above_the_memory_limit_are_read_from_disk(tmp_path):
    folder = image_folder(tmp_path / "shots")
    in_memory = load_dataset(str(folder), cache=CacheSettings(tmp_path / "cache"))
    on_disk = load_dataset(str(folder), cache=CacheSettings(tmp_path / "cache", in_memory_bytes=0))
    assert isinstance(in_memory.x, np.ndarray) and isinstance(on_disk.x, RecordArray)
    np.testing.assert_array_equal(np.asarray(on_disk.x), in_memory.x)
    assert on_disk.input_shape == in_memory.input_shape == (5, 6, 3)


def test_a_damaged_cache_is_computed_again(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "shots")
    cache = CacheSettings(tmp_path / "cache")
    expected = load_dataset(str(folder), cache=cache).x
    array = next((tmp_path / "cache").glob("*.npy"))
    array.write_bytes(array.read_bytes()[:-50])  # a cache cut short (a disk that filled up, a copy interrupted)
    decoded = counting(monkeypatch)
    np.testing.assert_array_equal(load_dataset(str(folder), cache=cache).x, expected)
    assert sum(decoded) == 10


def test_a_full_disk_is_one_line_and_leaves_no_partial_cache(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "shots")
    cache = CacheSettings(tmp_path / "cache")
    monkeypatch.setattr(
        feature_cache.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000, "total": 1000})()
    )
    with pytest.raises(UserError, match=r"feature cache needs .* GiB in .*cache.*--cache-dir"):
        load_dataset(str(folder), cache=cache)
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.undo()

    def full(self, files):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ImageFrontEnd, "compute", full)  # the disk fills while the cache is written
    with pytest.raises(UserError, match="disk is \\(nearly\\) full"):
        load_dataset(str(folder), cache=cache)
    assert list((tmp_path / "cache").iterdir()) == []  # the temporary file is gone


def test_a_bad_image_is_refused_before_anything_is_decoded(tmp_path, monkeypatch):
    folder = image_folder(tmp_path / "shots")
    (folder / "bright" / "broken.png").write_bytes(b"not a png")
    decoded = counting(monkeypatch)
    with pytest.raises(UserError, match="broken.png cannot be read"):
        load_dataset(str(folder), cache=CacheSettings(tmp_path / "cache"))
    assert decoded == [] and not list((tmp_path / "cache").glob("*.npy"))


# --- progress ---------------------------------------------------------------------------------------------


def test_progress_says_counts_rate_and_time_left_of_a_long_step_only():
    now = [0.0]
    lines: list[str] = []
    progress = Progress(lines.append, "decoding", "images", 1000, clock=lambda: now[0])
    for moment, count in ((1.0, 100), (2.5, 100), (5.0, 100), (13.0, 300)):
        now[0] = moment
        progress.advance(count)
    now[0] = 20.0
    progress.advance(400)
    progress.finish("cached")
    assert lines == [
        "decoding images: 200/1,000 (80/s, 10 s left)",
        "decoding images: 600/1,000 (46/s, 9 s left)",
        "decoding images: 1,000 in 20 s (50/s); cached",
    ]
    quick: list[str] = []
    short = Progress(quick.append, "decoding", "images", 10, clock=lambda: 0.0)
    short.advance(10)
    short.finish()
    assert quick == []


# --- running out ------------------------------------------------------------------------------------


class ResourceExhaustedError(Exception):
    """Stands in for TensorFlow's error of the same name (the CLI recognises it by name)."""


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MemoryError("Unable to allocate 48.2 GiB"), "out of memory (Unable to allocate 48.2 GiB); lower --batch-size"),
        (ResourceExhaustedError("OOM when allocating tensor"), "out of memory (OOM when allocating tensor)"),
        (OSError(errno.ENOSPC, "No space left on device", "runs/x.tmp"), "the disk is full writing runs/x.tmp"),
    ],
)
def test_running_out_of_memory_or_disk_is_one_line(tmp_path, monkeypatch, error, expected):
    import recipes.training

    def train(config, report=print, resume=False):
        raise error

    monkeypatch.setattr(recipes.training, "train", train)
    result = CliRunner().invoke(cli.app, ["train", "--out", str(tmp_path / "runs")])
    assert expected in error_line(result)


def test_other_errors_keep_their_traceback(tmp_path, monkeypatch):
    import recipes.training

    def train(config, report=print, resume=False):
        raise OSError(errno.EIO, "Input/output error")  # not memory, disk space or permission: a traceback

    monkeypatch.setattr(recipes.training, "train", train)
    result = CliRunner().invoke(cli.app, ["train", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1 and isinstance(result.exception, OSError) and result.exception.errno == errno.EIO


# --- training from disk --------------------------------------------------------------------------------


@pytest.mark.slow
def test_training_from_disk_equals_training_in_memory_and_exports(tmp_path):
    """The same seeded run with its features in memory and read from the cache a batch at a time: the same split,
    statistics, history and metrics; the cache is filled once; export reads the test split from disk too."""
    from edge.export import export_run
    from recipes.training import train

    folder = image_folder(tmp_path / "shots", per_class=40, size=(8, 8))
    runs = {}
    for name, limit in (("memory", 1024.0), ("disk", 0.0)):
        config = resolve_config(
            None,
            # batch 64: three epochs of one step each leave a model whose int8 file passes its tolerance
            {
                "data": str(folder),
                "recipe": "cnn",
                "epochs": 3,
                "batch_size": "64",
                "out": str(tmp_path / "runs"),
                "name": name,
            },
            ["conv_filters=4", "hidden_units=8", "flip=horizontal", f"in_memory_mb={limit}"],
        )
        runs[name] = train(config, report=None)
    memory, disk = (runs[name].run_dir for name in ("memory", "disk"))
    assert (memory / "history.csv").read_text() == (disk / "history.csv").read_text()
    memory_metrics, disk_metrics = (json.loads((run / "metrics.json").read_text()) for run in (memory, disk))
    assert memory_metrics == disk_metrics
    for key in ("train", "dev", "test"):
        assert np.array_equal(np.load(memory / "split.npz")[key], np.load(disk / "split.npz")[key])
    assert len(list((tmp_path / "runs" / "cache").glob("*.npy"))) == 1  # one cache, filled by the first run

    report = export_run(disk, variants=("float32", "int8"))
    assert not report.failing and [result.name for result in report.variants] == ["float32", "int8"]
    assert report.test_examples == report.variants[0].parity.examples == memory_metrics["split"]["test"]


# --- resuming a killed run -------------------------------------------------------------------------------


def test_resume_refusals_are_one_line(tmp_path):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli.app, ["train", "--out", str(runs), "--resume"])
    line = error_line(result)  # true also of a run killed before its first checkpoint, which leaves nothing to resume
    assert "no checkpoint of a run named digits-mlp" in line and "stopped before its first checkpoint" in line
    root = checkpoints.folder_for(runs, "digits-mlp")
    config = resolve_config(None, {"out": str(runs), "epochs": 20}, [])
    checkpoint_folder = root / "epoch-3-x"
    checkpoint_folder.mkdir(parents=True)
    state = {
        "epochs_done": 3,
        "history": {},
        "early_stopping": None,
        "config": json.loads(json.dumps(config.to_dict())),
    }
    (checkpoint_folder / "state.json").write_text(json.dumps(state))
    (root / checkpoints.CURRENT).write_text(json.dumps({"folder": checkpoint_folder.name}))
    fresh = error_line(CliRunner().invoke(cli.app, ["train", "--out", str(runs), "--epochs", "20"]))
    assert "can be resumed (after epoch 3 of 20" in fresh and "--resume" in fresh
    other = CliRunner().invoke(cli.app, ["train", "--out", str(runs), "--epochs", "20", "--resume", "--seed", "4"])
    assert "was trained with seed=0, not 4" in error_line(other)
    done = CliRunner().invoke(cli.app, ["train", "--out", str(runs), "--epochs", "3", "--resume"])
    assert "already trained 3 epochs; pass --epochs above 3" in error_line(done)
    assert sorted(path.name for path in (runs / "train").iterdir()) == [".digits-mlp.resume"]


@pytest.mark.slow
def test_a_run_killed_after_epoch_k_resumes_the_remaining_epochs_exactly(tmp_path):
    """SIGKILL after the checkpoint of epoch 4, then --resume: epochs 5-10 only, one complete run, and (without
    dropout, whose random stream restarts) the same history and metrics as an uninterrupted run to the last bit. The
    learning rate decays per epoch, so a schedule that restarted at epoch 0 on resuming would show in the history."""
    args = ["train", "--epochs", "10", "--set", "checkpoint_seconds=0", "--set", "dropout=0"]
    args += ["--set", "schedule=exponential", "--set", "exponential_rate=0.8", "-q"]
    whole = subprocess.run(
        [sys.executable, "cli.py", *args, "--out", str(tmp_path / "whole")], cwd=ROOT, capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr
    runs = tmp_path / "killed"
    process = start_cli([*args, "--out", str(runs)], tmp_path / "killed.log")
    root = checkpoints.folder_for(runs, "digits-mlp")
    deadline = time.monotonic() + 300
    while (checkpoints.read(root) is None or checkpoints.read(root).epochs_done < 4) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_after = checkpoints.read(root).epochs_done
    assert 4 <= stopped_after < 10 and not (runs / "train" / "digits-mlp-1").exists()
    resumed = subprocess.run(
        [sys.executable, "cli.py", *args[:-1], "--out", str(runs), "--resume"], cwd=ROOT, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    epochs = [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs == [f"{number}/10" for number in range(stopped_after + 1, 11)]
    assert not root.exists()  # the checkpoint goes with the complete run
    assert [path.name for path in (runs / "train").iterdir() if not path.name.startswith(".")] == ["digits-mlp-1"]
    for name in ("history.csv", "metrics.json"):
        expected = (tmp_path / "whole" / "train" / "digits-mlp-1" / name).read_text()
        assert (runs / "train" / "digits-mlp-1" / name).read_text() == expected
