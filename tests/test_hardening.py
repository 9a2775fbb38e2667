"""Hostile or careless input ends in one clear line (exit 2) or a correct result, never a traceback or a
surprise: files that lie about their size, labels that carry control characters, models dropped beside a
manifest that does not list them."""

import os
import shutil
import wave

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from recipes.errors import UserError, printable
from tests.helpers import error_line

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
    from edge.runtime import Prediction

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
    from recipes.audio import read_wav

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
