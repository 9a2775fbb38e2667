"""Hostile or careless input ends in one clear line (exit 2) or a correct result, never a traceback or a
surprise: files that lie about their size, labels that carry control characters, models dropped beside a
manifest that does not list them."""

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import wave

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.device import process
from edge.device.errors import UserError, printable
from tests.helpers import copy_run, error_line, start_cli

runner = CliRunner()


def test_a_model_beside_a_manifest_that_does_not_list_it_is_refused(shared, tmp_path):
    folder = shutil.copytree(shared.edge_dir, tmp_path / "edge")
    shutil.copy(folder / "model_int8.tflite", folder / "evil.tflite")
    rows = tmp_path / "rows.npy"
    np.save(rows, shared.x_test[:2])
    line = error_line(runner.invoke(cli.app, ["predict", str(folder / "evil.tflite"), "--input", str(rows)]))
    assert "is not listed in the manifest.json beside it" in line
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(folder / "evil.tflite", alone / "evil.tflite")  # without a manifest it runs, unlabelled
    assert runner.invoke(cli.app, ["predict", str(alone / "evil.tflite"), "--input", str(rows)]).exit_code == 0


def test_an_npy_whose_header_claims_terabytes_is_refused_before_reading(shared, tmp_path):
    path = tmp_path / "huge.npy"
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (1_000_000, 1_000_000)}
        )
    line = error_line(
        runner.invoke(cli.app, ["predict", str(shared.edge_dir / "model_int8.tflite"), "--input", str(path)])
    )
    assert "declares a 4,000,000,000,000-byte array" in line and "limit" in line


def test_control_characters_in_labels_are_escaped_when_printed():
    from edge.device.predictions import Prediction

    line = Prediction(0, ["ok\x1b[2J", "fake\n   1: forged"], [0.9, 0.1]).to_line()
    assert "\x1b" not in line and "\n" not in line
    assert "ok\\x1b[2J" in line and "fake\\n   1: forged" in line
    assert printable("Temperatur °C") == "Temperatur °C"  # printable text stays as it is


def test_a_run_name_with_a_newline_cannot_end_the_c_comment():
    from edge.micro import c_array_sources

    header, _ = c_array_sources(b"TFL3" * 4, "model", "model.h", ["Source run: a\n#error injected"])
    assert "\n#error" not in header and "a\\n#error injected" in header


def write_wav(path, rate):
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(16_000)
        clip.writeframes(np.zeros(1600, np.int16).tobytes())
    content = bytearray(path.read_bytes())
    content[24:28] = int(rate).to_bytes(4, "little")  # the header's sample rate field
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("rate", [0, 4_294_967_291])
def test_a_wav_header_with_an_impossible_rate_is_one_line(tmp_path, rate):
    from edge.device.audio import read_wav

    path = tmp_path / "clip.wav"
    write_wav(path, rate)
    with pytest.raises(UserError, match=f"declares a sample rate of {rate:,} Hz"):
        read_wav(path)


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_outside_32_bits_is_one_line(tmp_path, seed):
    line = error_line(runner.invoke(cli.app, ["train", "--seed", seed, "--out", str(tmp_path)]))
    assert "seed must be in [0, 4294967295]" in line
    assert not (tmp_path / "train").exists()


def test_yaml_aliases_and_python_tags_are_refused_in_one_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(8)]
    bomb.write_text("\n".join(lines) + "\n")
    line = error_line(runner.invoke(cli.app, ["train", "--config", str(bomb), "--out", str(tmp_path)]))
    assert "uses YAML aliases" in line and len(line) < 300
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("epochs: !!python/object/apply:os.system ['echo hi']\n")
    line = error_line(runner.invoke(cli.app, ["train", "--config", str(tagged), "--out", str(tmp_path)]))
    assert "holds a tag plain YAML does not take" in line
    huge = tmp_path / "huge.yaml"
    huge.write_text("epochs: 3\n" + "# padding\n" * 200_000)
    assert "bytes (limit 1,048,576)" in error_line(runner.invoke(cli.app, ["train", "--config", str(huge)]))
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: &r {min: 0.001, max: 0.1}\nl2: *r\n")
    line = error_line(runner.invoke(cli.app, ["tune", "--space", str(space), "--out", str(tmp_path)]))
    assert "space file" in line and "aliases" in line


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory):
    """A 9500 x 9500 PNG of a few kilobytes: decoded, 90 million pixels (9.2 GB as the float32 RGB a model reads)."""
    from PIL import Image

    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (9500, 9500)).save(path)
    assert path.stat().st_size < 200_000
    return path


def test_an_image_declaring_too_many_pixels_is_refused_by_predict(shared, bomb_png):
    line = error_line(
        runner.invoke(cli.app, ["predict", str(shared.edge_dir / "model_int8.tflite"), "--input", str(bomb_png)])
    )
    assert "declares 9500 x 9500 pixels (limit 25,000,000)" in line


def test_an_image_declaring_too_many_pixels_is_refused_in_a_training_folder(tmp_path, bomb_png):
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(tmp_path / "photos" / name / "small.png")
    shutil.copy(bomb_png, tmp_path / "photos" / "dogs" / "huge.png")
    line = error_line(runner.invoke(cli.app, ["train", "--data", str(tmp_path / "photos"), "--out", str(tmp_path)]))
    assert "huge.png declares 9500 x 9500 pixels" in line
    assert not (tmp_path / "train").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "hidden_units=100000000"], "hidden_units values must be in 1..65,536, got 100000000"),
        (["--recipe", "resnet8", "--set", "blocks=100"], "blocks must be in 1..64, got 100"),
        (["--set", "image_size=100000,100000"], "image_size values must be in 1..4,096, got 100000"),
        (["--set", "conv_filters=1000000", "--recipe", "cnn"], "conv_filters values must be in 1..4,096"),
        (["--set", "zoom=5"], "zoom is a fraction in [0, 1), got 5.0"),
        (["--set", "translation=5"], "translation is a fraction of height/width in [0, 1], got 5.0"),
        (["--set", "rotation=1e9"], "rotation is a fraction of a full turn in [0, 1], got 1000000000.0"),
    ],
)
def test_sizes_and_augmentation_beyond_their_limits_are_one_line_before_anything_is_built(tmp_path, flags, message):
    line = error_line(runner.invoke(cli.app, ["train", "--out", str(tmp_path), *flags]))
    assert message in line
    assert list(tmp_path.iterdir()) == []


def test_an_out_that_is_a_file_is_one_line_before_any_work(tmp_path):
    target = tmp_path / "runs"
    target.write_text("not a folder")
    line = error_line(runner.invoke(cli.app, ["train", "--out", str(target)]))
    assert line == f"error: --out {target} is a file, not a folder; give a folder for the runs, e.g. --out runs"
    assert target.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_an_out_inside_a_read_only_folder_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    line = error_line(runner.invoke(cli.app, ["train", "--out", str(locked / "runs")]))
    assert "cannot be written" in line and str(locked) in line


def test_check_writable_follows_the_nearest_existing_parent(tmp_path, monkeypatch):
    from recipes.rundir import check_writable

    asked = []
    monkeypatch.setattr("os.access", lambda path, mode: asked.append(str(path)) or False)
    with pytest.raises(UserError, match=f"{tmp_path} is read-only for this user"):
        check_writable(tmp_path / "a" / "b")
    assert asked == [str(tmp_path)]


def test_an_npz_whose_x_header_claims_terabytes_is_refused_before_reading(shared, tmp_path):
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 8, 8, 1), np.float32))
    header["shape"] = (10**7, 8, 8, 1000)
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
    model = str(shared.edge_dir / "model_float32.tflite")
    line = error_line(runner.invoke(cli.app, ["predict", model, "--input", str(tmp_path / "big.npz")]))
    assert "declares a 2,560,000,000,000-byte array" in line


def extensible_wav(path, data: bytes, bits: int, channels: int = 1, valid_bits: int = 0, subformat: int = 1):
    """A WAVE_FORMAT_EXTENSIBLE file written byte by byte (as sox and ffmpeg write above 16 bits), with an odd-sized
    LIST chunk before the data (chunks are padded to an even size)."""
    rate, block = 16_000, channels * bits // 8
    guid = struct.pack("<H", subformat) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI16s", 0xFFFE, channels, rate, rate * block, block, bits, 22, valid_bits or bits,
                      (1 << channels) - 1, guid)  # fmt: skip
    info = b"INFOISFT\x05\x00\x00\x00sox\x00\x00"
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", len(info)) + info + b"\x00"
    chunks += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return path


def test_wave_format_extensible_pcm_is_read_on_every_python(tmp_path):
    from edge.device.audio import read_wav

    values = [0, 1, -1, 4660, 8_388_607, -8_388_608]
    data = b"".join(value.to_bytes(3, "little", signed=True) for value in values)
    samples, rate = read_wav(extensible_wav(tmp_path / "24.wav", data, 24))
    assert rate == 16_000 and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, np.array(values, np.float32) / 2**23)
    values = [0, 256, -256, 123_456_768, 2_147_483_392, -2_147_483_648]  # 24 valid bits, left-justified in 32
    data = np.array(values, "<i4").tobytes()
    samples, _ = read_wav(extensible_wav(tmp_path / "32.wav", data, 32, valid_bits=24))
    np.testing.assert_array_equal(samples, np.array(values, np.float64) / 2**31)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: extensible_wav(p, bytes(12), 24, channels=2), r"has 2 channels; the front end takes mono clips"),
        (lambda p: p.write_bytes(extensible_wav(p, bytes(12), 24).read_bytes()[:40]), r"cannot be read \(.*cut short"),
        (lambda p: extensible_wav(p, bytes(0), 24), r"is empty \(no samples\)"),
        (lambda p: extensible_wav(p, bytes(8), 32, subformat=3), r"cannot be read \(32-bit IEEE float samples\)"),
        (  # cut inside its samples: the wave module would give the 34 bytes left, a clip of silence
            lambda p: p.write_bytes(extensible_wav(p, bytes(3000), 24).read_bytes()[:128]),
            r"is cut short: its data chunk declares 3,000 bytes but the file holds 34; copy or record it again",
        ),
    ],
    ids=["stereo", "truncated", "empty", "float", "samples cut short"],
)
def test_a_bad_wave_format_extensible_file_is_one_line(tmp_path, make, message):
    from edge.device.audio import read_wav

    path = tmp_path / "clip.wav"
    make(path)
    with pytest.raises(UserError, match=message) as caught:
        read_wav(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def _modes(folder):
    """The permission bits of every file and every folder below ``folder`` (itself included)."""
    paths = [folder, *folder.rglob("*")]
    files = {oct(path.stat().st_mode & 0o777) for path in paths if path.is_file()}
    folders = {oct(path.stat().st_mode & 0o777) for path in paths if path.is_dir()}
    return files, folders


def test_runs_and_exports_get_the_modes_the_umask_gives(tmp_path):
    from edge.export import export_run
    from recipes.config import resolve_config
    from recipes.rundir import staged_run, write_atomic
    from recipes.training import train

    previous = os.umask(0o022)
    try:
        result = train(resolve_config(None, {"epochs": 1, "out": str(tmp_path / "runs")}, []), report=None)
        assert _modes(result.run_dir) == ({"0o644"}, {"0o755"})
        export_run(result.run_dir, ["float32"])
        assert _modes(result.run_dir / "edge") == ({"0o644"}, {"0o755"})
        os.umask(0o077)
        export_run(result.run_dir, ["float32"])  # replaces edge/ whole
        assert _modes(result.run_dir / "edge") == ({"0o600"}, {"0o700"})
        with staged_run(tmp_path / "runs", "private", "p") as run:
            write_atomic(run.path / "a.txt", "a")
        assert _modes(run.final_path) == ({"0o600"}, {"0o700"})
    finally:
        os.umask(previous)


def test_sigterm_ends_training_like_ctrl_c_and_leaves_nothing(tmp_path):
    out = tmp_path / "runs"
    args = ["train", "--epochs", "200", "--set", "checkpoint_seconds=100000", "--out", str(out)]
    process = start_cli(args, tmp_path / "log.txt")
    try:
        deadline = time.monotonic() + 240
        while not re.search(r"^epoch +1/200 ", (tmp_path / "log.txt").read_text(), re.M):  # its first epoch line
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "log.txt").read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 128 + signal.SIGTERM, (tmp_path / "log.txt").read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    lines = (tmp_path / "log.txt").read_text().strip().splitlines()
    assert lines[-1] == "terminated (SIGTERM): nothing was written"
    assert "Traceback" not in "\n".join(lines)
    assert list((out / "train").iterdir()) == []  # no run, no hidden staging folder, no checkpoint


def test_a_signal_turned_into_another_error_by_library_code_still_ends_the_command_so(monkeypatch, capsys):
    """TensorFlow's tracing catches the signal's KeyboardInterrupt and raises a TypeError instead (seen when SIGTERM
    arrived while a model was traced): the command still ends with 143 and the one line, not a traceback."""
    monkeypatch.setattr(process, "SIGNALLED", [process.Terminated()])
    with pytest.raises(SystemExit) as ended, cli.user_errors():
        raise TypeError("Failed to convert elements of (None, 64) to Tensor")
    assert ended.value.code == 128 + signal.SIGTERM
    assert capsys.readouterr().err == "terminated (SIGTERM): nothing was written\n"
    monkeypatch.setattr(process, "SIGNALLED", [])
    with pytest.raises(TypeError), cli.user_errors():  # without a signal it is a bug: the traceback stays
        raise TypeError("a bug")


def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    from recipes.rundir import exchange

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "which").write_text(name)
    if not exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("no renameat2(RENAME_EXCHANGE) on this system")
    assert (tmp_path / "a" / "which").read_text() == "b" and (tmp_path / "b" / "which").read_text() == "a"
    with pytest.raises(FileNotFoundError):
        exchange(tmp_path / "a", tmp_path / "missing")


@pytest.mark.parametrize("atomic", [True, False], ids=["exchange", "two-renames"])
def test_replace_folder_leaves_one_folder_with_the_new_content(tmp_path, monkeypatch, atomic):
    from recipes.rundir import replace_folder

    if not atomic:
        monkeypatch.setattr("recipes.rundir.exchange", lambda first, second: False)
    for name in ("edge", ".edge-staging-x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.tflite").write_text(name)
    assert replace_folder(tmp_path / ".edge-staging-x", tmp_path / "edge") == tmp_path / "edge"
    assert [path.name for path in tmp_path.iterdir()] == ["edge"]
    assert (tmp_path / "edge" / "model.tflite").read_text() == ".edge-staging-x"


def _dead_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(process.stdout)


def test_stale_staging_folders_are_removed_and_live_ones_kept(tmp_path):
    from recipes.rundir import owned_prefix, remove_stale

    host = owned_prefix("").split("-")[0]
    live = tmp_path / f".n.staging-{host}-{os.getpid()}-abcdefgh"
    dead = tmp_path / f".n.staging-{host}-{_dead_pid()}-abcdefgh"
    foreign = tmp_path / ".n.staging-elsewhere-1-abcdefgh"
    old_foreign = tmp_path / ".n.staging-elsewhere-2-abcdefgh"
    unowned = tmp_path / ".n.staging-k2x_9abc"
    other_run = tmp_path / ".n.staging-b.staging-elsewhere-3-abcdefgh"  # the staging of a run named n.staging-b
    for folder in (live, dead, foreign, old_foreign, unowned, other_run):
        folder.mkdir()
    os.utime(old_foreign, (time.time() - 2 * 24 * 3600,) * 2)
    assert sorted(remove_stale(tmp_path, ".n.staging-")) == sorted([dead, old_foreign, unowned])
    assert sorted(tmp_path.iterdir()) == sorted([live, foreign, other_run])


def test_export_removes_what_killed_exports_left_in_the_run(shared, tmp_path):
    from edge.export import export_run
    from recipes.rundir import owned_prefix

    run = copy_run(shared.run_dir, tmp_path / "run", with_edge=True)
    host = owned_prefix("").split("-")[0]
    stale = [run / ".edge-old-1a2b3c4d", run / f".edge-staging-{host}-{_dead_pid()}-abcdefgh"]
    for folder in stale:
        folder.mkdir()
        (folder / "model_int8.tflite").write_bytes(b"old")
    report = export_run(run, ["float32"])
    assert report.edge_dir == run / "edge" and (run / "edge" / "model_float32.tflite").is_file()
    assert not (run / "edge" / "model_int8.tflite").exists()  # the old edge/ was replaced whole
    assert [path.name for path in run.iterdir() if path.name.startswith(".")] == []
