"""Damaged inputs end in one line, never in a crash: LiteRT's native crashes are caught by the pre-flight, and a seeded
fuzz of every file ``predict`` and ``train --config`` read.

The fuzz mutates valid small files (the shared run's int8 model and its manifest, an ``.npy``, an ``.npz``, a PNG, a
WAV clip with a small audio model, a config YAML) with a fixed seed: bit flips, truncation, inserted bytes, header
fields overwritten with extreme values, and for JSON and YAML values replaced inside the structure. Each mutant runs
``predict`` (the runtime's ``main``, what ``cli.py predict`` and the bundle's ``predict.py`` call) in its own process
under a 4 GiB address-space limit and a timeout; it must exit 0 or 2, and with 2 write exactly one ``error:`` line.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import wave
import zlib
from pathlib import Path

import numpy as np
import pytest

from edge.device.errors import UserError
from tests.helpers import ROOT

LIMIT = 4 << 30  # address space of every child, as the pre-flight gives LiteRT
SEED = 20240601
SCALE = 1  # mutants per kind are FUZZ's counts times this: raise it to fuzz longer
EXTREMES = (0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
BIG_NUMBERS = (0, 3 << 28, 1 << 31, (1 << 32) - 1, 1 << 40, 1 << 62, 10**30)  # 3 << 28 float32s: 3 GiB
# predict in a child limited to LIMIT bytes of address space (set before numpy or LiteRT is imported): the runtime's
# main (what the bundle's predict.py runs), or cli.py's.
LIMITED = f"import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, ({LIMIT}, {LIMIT}))\n"
RUNTIME_CHILD = LIMITED + "from edge.device.cli import main\nsys.exit(main(sys.argv[1:]))\n"
CLI_CHILD = LIMITED + "sys.argv[1:1] = ['predict']\nfrom cli import main\nsys.exit(main())\n"


# ----------------------------------------------------------------------------------------------- models, by hand

# LiteRT alone, outside the runtime: load, allocate, invoke once on zeros.
BARE_LITERT = (
    "import sys, numpy as np\n"
    "from ai_edge_litert.interpreter import Interpreter\n"
    "interpreter = Interpreter(model_path=sys.argv[1])\n"
    "interpreter.allocate_tensors()\n"
    "tensor = interpreter.get_input_details()[0]\n"
    "interpreter.set_tensor(tensor['index'], np.zeros(tensor['shape'], tensor['dtype']))\n"
    "interpreter.invoke()\n"
)


def flatbuffer_model(operator: str, input_shape: list[int], weight_shape: list[int], output_shape: list[int]) -> bytes:
    """A float32 ``.tflite`` of one operator (``"fully_connected"``, ``"depthwise_conv"`` without its optional bias,
    or ``"add"``, x + x, which ignores ``weight_shape``), its weights all 0.01, written with LiteRT's flatbuffer schema
    (no TensorFlow)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(shape: list[int], buffer: int, name: str) -> schema.TensorT:
        made = schema.TensorT()
        made.shape, made.type, made.buffer, made.name = shape, schema.TensorType.FLOAT32, buffer, name
        return made

    code = schema.OperatorCodeT()
    operation = schema.OperatorT()
    operation.opcodeIndex, operation.outputs = 0, [2]
    if operator == "add":
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
        operation.inputs, weight_shape = [0, 0], [1]
        operation.builtinOptionsType, operation.builtinOptions = schema.BuiltinOptions.AddOptions, schema.AddOptionsT()
    elif operator == "fully_connected":
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
        operation.inputs = [0, 1, -1]
        operation.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        operation.builtinOptions = schema.FullyConnectedOptionsT()
    else:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEPTHWISE_CONV_2D
        operation.inputs = [0, 1]  # no bias: LiteRT's checks allow it, its kernel then reads a bias that is not there
        options = schema.DepthwiseConv2DOptionsT()
        options.padding, options.strideW, options.strideH, options.depthMultiplier = schema.Padding.SAME, 1, 1, 1
        options.dilationWFactor = options.dilationHFactor = 1
        operation.builtinOptionsType, operation.builtinOptions = schema.BuiltinOptions.DepthwiseConv2DOptions, options
    code.version = 1
    graph = schema.SubGraphT()
    graph.tensors = [tensor(input_shape, 0, "x"), tensor(weight_shape, 1, "w"), tensor(output_shape, 0, "y")]
    graph.inputs, graph.outputs, graph.operators, graph.name = [0], [2], [operation], "main"
    weights = schema.BufferT()
    weights.data = list(np.full(int(np.prod(weight_shape)), 0.01, np.float32).tobytes())
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT(), weights]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def without_subgraphs(content: bytes) -> bytes:
    """``content`` rewritten without its subgraph table, as a damaged file may be."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    model.subgraphs = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_predict(model: Path, input_file: Path, cli: bool = False) -> subprocess.CompletedProcess:
    """``predict MODEL --input FILE`` in a child process limited to :data:`LIMIT` bytes of address space: the
    runtime's ``main``, or with ``cli`` ``python cli.py predict``."""
    code = CLI_CHILD if cli else RUNTIME_CHILD
    return subprocess.run(
        [sys.executable, "-c", code, str(model), "--input", str(input_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(completed: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line of a child that exited with status 2 (and nothing else on stderr)."""
    assert completed.returncode == 2, (completed.returncode, completed.stderr[-2000:])
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in completed.stderr, lines
    return lines[0]


# -------------------------------------------------------------------------------------------- the pre-flight


@pytest.mark.parametrize("damage", ["depthwise without bias", "no subgraph table"])
def test_a_model_that_crashes_litert_ends_in_one_line(tmp_path, damage):
    """A depthwise convolution without its bias passes LiteRT's checks and then crashes it (SIGSEGV) when invoked; a
    file without its subgraph table crashes it while loading. Either way predict names the model in one line."""
    content = flatbuffer_model("depthwise_conv", [1, 4, 4, 1], [1, 3, 3, 1], [1, 4, 4, 1])
    if damage == "no subgraph table":
        content = without_subgraphs(flatbuffer_model("fully_connected", [1, 4], [3, 4], [1, 3]))
    model = tmp_path / "elsewhere.tflite"
    model.write_bytes(content)
    np.save(tmp_path / "x.npy", np.zeros((2, 4, 4, 1) if damage != "no subgraph table" else (2, 4), np.float32))
    bare = subprocess.run([sys.executable, "-c", BARE_LITERT, str(model)], capture_output=True, timeout=60, check=False)
    assert bare.returncode < 0  # killed by a signal: the crash is real, not simulated
    line = one_error_line(run_predict(model, tmp_path / "x.npy", cli=True))
    assert line.startswith(f"error: {model}: LiteRT crashed (signal SIG") and "not opened here" in line, line


def test_the_pre_flight_refuses_a_memory_bomb_and_a_hang(tmp_path, monkeypatch):
    """A model whose tensors need more than the child's address space is refused, not opened in the runtime's own
    process; a child that does not finish in time is refused too. A verdict is kept per model."""
    import edge.device.preflight as preflight

    monkeypatch.setattr(preflight, "_verdicts", {})
    bomb = flatbuffer_model("add", [1, 1 << 29], [], [1, 1 << 29])  # 2 GiB of input, 2 of output
    with pytest.raises(UserError, match="could not load and run it within 4 GiB of memory"):
        preflight.preflight(bomb, "bomb.tflite")
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(preflight.subprocess, "run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    fine = flatbuffer_model("fully_connected", [1, 4], [3, 4], [1, 3])
    for _ in range(3):
        preflight.preflight(fine, "fine.tflite")
    assert len(calls) == 1  # checked once per process
    monkeypatch.setattr(preflight, "TIMEOUT_S", 0.001)
    other = flatbuffer_model("fully_connected", [1, 5], [3, 5], [1, 3])
    with pytest.raises(UserError, match=r"other.tflite: LiteRT did not finish .* within 0.001 s"):
        preflight.preflight(other, "other.tflite")


def test_an_exported_model_skips_the_pre_flight(shared, monkeypatch):
    """A model its manifest lists with the same sha256 was run when it was exported: no child process."""
    import edge.device.model

    def refuse(*args, **kwargs):
        raise AssertionError("the pre-flight ran for an exported model")

    monkeypatch.setattr(edge.device.model, "preflight", refuse)
    assert edge.device.model.EdgeModel.load(shared.edge_dir / "model_int8.tflite").num_classes == 10


# ------------------------------------------------------------------------------------------------------ the fuzz


def mutate(data: bytes, rng: random.Random, fields: tuple[int, ...] = ()) -> bytes:
    """One seeded mutation of ``data``: bit flips, a cut, inserted bytes, a header field (at one of ``fields``, else
    anywhere 4-aligned) overwritten with an extreme value, or a decimal number in its first 512 bytes replaced by a
    huge one."""
    mutant = bytearray(data)
    numbers = list(re.finditer(rb"\d+", data[:512]))
    kind = rng.choice(("flip", "cut", "insert", "field", "field", "number" if numbers else "field"))
    if kind == "number":  # a decimal in a text header (an .npy shape, a JSON or YAML value)
        found = rng.choice(numbers)
        mutant[found.start() : found.end()] = str(rng.choice(BIG_NUMBERS)).encode()
    elif kind == "flip":
        for _ in range(rng.randint(1, 8)):
            mutant[rng.randrange(len(mutant))] ^= 1 << rng.randrange(8)
    elif kind == "cut":
        del mutant[rng.randrange(len(mutant)) :]
    elif kind == "insert":
        at = rng.randrange(len(mutant))
        mutant[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        at = rng.choice(fields) if fields and rng.random() < 0.7 else rng.randrange(0, len(mutant) - 4) & ~3
        width = rng.choice((1, 2, 4))
        value = rng.choice(EXTREMES) & ((1 << (8 * width)) - 1)
        mutant[at : at + width] = value.to_bytes(width, "little")
    return bytes(mutant)


STRANGE = (None, True, 0, -1, 2**63, -(2**31), 1e308, float("nan"), "", "x" * 2000, "\x1b[2J\n", [], [0] * 3, {})


def mutate_structure(value: object, rng: random.Random) -> object:
    """``value`` (parsed JSON or YAML) with one entry somewhere inside replaced by a strange value, or removed."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value, key=str))
        copy = dict(value)
        if rng.random() < 0.15:
            del copy[key]
        else:
            copy[key] = mutate_structure(value[key], rng)
        return copy
    if isinstance(value, list) and value and rng.random() < 0.8:
        copy = list(value)
        at = rng.randrange(len(copy))
        copy[at] = mutate_structure(copy[at], rng)
        return copy
    return rng.choice(STRANGE)


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    """A mono 16-bit PCM WAV file."""
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes((samples * 20000).astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def seeds(shared, tmp_path_factory) -> dict[str, Path]:
    """The valid files the fuzz starts from, each predict runs with exit status 0."""
    from PIL import Image

    from edge.device.audio import FRONT_END

    root = tmp_path_factory.mktemp("fuzz-seeds")
    digits = root / "digits"
    digits.mkdir()
    for name in ("model_int8.tflite", "manifest.json"):
        shutil.copy(shared.edge_dir / name, digits / name)
    elsewhere = root / "elsewhere"  # the same model without its manifest: every mutant goes through the pre-flight
    elsewhere.mkdir()
    shutil.copy(shared.edge_dir / "model_int8.tflite", elsewhere / "model_int8.tflite")
    audio = root / "audio"  # a small audio classifier (49x10 MFCCs -> 2 classes) with its front end in a manifest
    audio.mkdir()
    content = flatbuffer_model("fully_connected", [1, 49, 10, 1], [2, 490], [1, 2])
    (audio / "model.tflite").write_bytes(content)
    manifest = {
        "format": 3,
        "files": {"model.tflite": {"sha256": hashlib.sha256(content).hexdigest()}},
        "task": "classification",
        "class_names": ["yes", "no"],
        "front_end": dict(FRONT_END),
    }
    (audio / "manifest.json").write_text(json.dumps(manifest, indent=2))
    x = shared.x_test[:3].astype(np.float32)
    np.save(root / "x.npy", x)
    np.savez(root / "x.npz", x=x)
    Image.fromarray((x[0, ..., 0] * 15).astype(np.uint8), "L").save(root / "digit.png")
    (root / "clip.wav").write_bytes(wav_bytes(np.sin(np.linspace(0, 400 * np.pi, 8000)).astype(np.float32)))
    (root / "config.yaml").write_text(
        "recipe: mlp\ndata: iris\nepochs: 3\nhidden_units: [32, 16]\ndropout: 0.2\nlearning_rate: 0.001\n"
        "seed: 1\nsplit: [0.6, 0.2, 0.2]\nschedule: constant\n"
    )
    return {
        "model": digits / "model_int8.tflite",
        "elsewhere": elsewhere / "model_int8.tflite",
        "audio": audio / "model.tflite",
        "x.npy": root / "x.npy",
        "x.npz": root / "x.npz",
        "digit.png": root / "digit.png",
        "clip.wav": root / "clip.wav",
        "config.yaml": root / "config.yaml",
    }


# Per kind: the mutants made, the header fields worth overwriting (byte offsets), and what predict runs on them.
FUZZ = {
    "tflite": (12, (0, 4, 8, 12, 16, 20, 24, 28)),  # the flatbuffer's root offset, identifier and first vtable
    "npy": (10, (6, 7, 8, 9)),  # format version, header length
    "npz": (10, (8, 14, 18, 22, 26, 28)),  # zip local header: method, CRC, sizes, name and extra lengths
    "png": (10, (8, 12, 16, 20, 24, 25, 26, 28)),  # IHDR: length, type, width, height, depth, colour, compression
    "wav": (10, (4, 16, 20, 22, 24, 28, 32, 34, 40)),  # RIFF size, fmt size, tag, channels, rate, ..., data size
    "manifest": (16, ()),
}


def fuzz_cases(seeds: dict[str, Path], folder: Path) -> list[tuple[str, Path, Path]]:
    """Every mutant as (label, model, input), written below ``folder``; deterministic for :data:`SEED`."""
    cases = []
    for kind, (count, fields) in FUZZ.items():
        count *= SCALE
        rng = random.Random(SEED + zlib.crc32(kind.encode()))
        for number in range(count):
            where = folder / f"{kind}-{number}"
            where.mkdir(parents=True)
            model, input_file = seeds["model"], seeds["x.npy"]
            if kind == "tflite":
                model = where / "model.tflite"
                model.write_bytes(mutate(seeds["elsewhere"].read_bytes(), rng, fields))
            elif kind == "manifest":
                source = seeds["audio"] if number % 2 else seeds["model"]
                input_file = seeds["clip.wav"] if number % 2 else seeds["x.npy"]
                model = Path(shutil.copy(source, where / source.name))
                text = (source.parent / "manifest.json").read_text()
                if rng.random() < 0.3:
                    mutant = mutate(text.encode(), rng)
                else:
                    mutant = json.dumps(mutate_structure(json.loads(text), rng)).encode()
                (where / "manifest.json").write_bytes(mutant)
            else:
                name = {"npy": "x.npy", "npz": "x.npz", "png": "digit.png", "wav": "clip.wav"}[kind]
                model = seeds["audio"] if kind == "wav" else seeds["model"]
                input_file = where / name
                input_file.write_bytes(mutate(seeds[name].read_bytes(), rng, fields))
            cases.append((f"{kind}-{number}", model, input_file))
    return cases


def test_the_seed_files_predict(seeds):
    """The fuzz starts from files predict reads without a mistake."""
    for model, input_file in (
        (seeds["model"], seeds["x.npy"]),
        (seeds["model"], seeds["x.npz"]),
        (seeds["model"], seeds["digit.png"]),
        (seeds["audio"], seeds["clip.wav"]),
        (seeds["elsewhere"], seeds["x.npy"]),
    ):
        completed = run_predict(model, input_file)
        assert completed.returncode == 0, (model, input_file, completed.stderr[-2000:])


def test_predict_on_damaged_files_exits_0_or_2_with_one_line(seeds, tmp_path):
    """Every mutant of a model, manifest or input file ends with exit status 0, or 2 and one ``error:`` line: never a
    signal, a traceback (status 1) or a second line, within the address-space limit and the timeout."""
    failures = []
    for label, model, input_file in fuzz_cases(seeds, tmp_path):
        try:
            completed = run_predict(model, input_file)
        except subprocess.TimeoutExpired:
            failures.append(f"{label}: timed out")
            continue
        lines = completed.stderr.strip().splitlines()
        if completed.returncode == 2:
            if len(lines) != 1 or not lines[0].startswith("error: ") or "Traceback" in completed.stderr:
                failures.append(f"{label}: status 2 with stderr {completed.stderr[-800:]!r}")
        elif completed.returncode != 0 or "Traceback" in completed.stderr:
            failures.append(f"{label}: status {completed.returncode}, stderr {completed.stderr[-800:]!r}")
    assert failures == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("front_end.fft_length", []),  # found by the fuzz: a TypeError inside numpy's FFT
        ("front_end.mfcc_coefficients", "x" * 20),  # found by the fuzz: a TypeError slicing the coefficients
        ("front_end.lower_hz", -(2**31)),  # found by the fuzz: a RuntimeWarning on stderr, then NaN features
        ("front_end.stride_samples", 0),  # a division by zero framing the clip
        ("front_end.log_offset", True),
        ("class_names", -(2**31)),  # found by the fuzz: a TypeError listing the labels
        ("class_names", [["yes", "no"], "up"]),  # nested lists printed as labels "['yes', 'no']"
        ("class_names", [{"name": "yes"}]),
        ("task", ["classification"]),
        ("task", "clasification"),
        ("format", "3"),
        ("format", 0),
        ("format", None),
    ],
)
def test_a_manifest_with_a_damaged_value_is_refused_in_one_line(seeds, tmp_path, key, value):
    """A manifest that matches its model but holds a value of the wrong type or range is damaged, said before any
    feature is computed with it."""
    from edge.device.model import EdgeModel

    model = Path(shutil.copy(seeds["audio"], tmp_path / "model.tflite"))
    manifest = json.loads((seeds["audio"].parent / "manifest.json").read_text())
    *parents, last = key.split(".")
    target = manifest
    for name in parents:
        target = target[name]
    target[last] = value
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"manifest.json is damaged; export again or remove it"):
        EdgeModel.load(model)


def test_a_manifest_newer_than_the_runtime_is_refused_in_one_line(seeds, tmp_path):
    """A manifest of a later format may mean what this runtime cannot read: refused, naming the way out."""
    from edge.device.manifest import MANIFEST_FORMAT
    from edge.device.model import EdgeModel

    model = Path(shutil.copy(seeds["audio"], tmp_path / "model.tflite"))
    manifest = json.loads((seeds["audio"].parent / "manifest.json").read_text())
    assert manifest["format"] == MANIFEST_FORMAT
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format": MANIFEST_FORMAT + 1}))
    with pytest.raises(UserError, match=rf"has format {MANIFEST_FORMAT + 1}, newer than this runtime reads"):
        EdgeModel.load(model)
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format": 2}))  # an older export still runs
    assert EdgeModel.load(model).front_end is not None


def test_damaged_config_yaml_is_a_one_line_error(seeds):
    """Every mutant of a config YAML resolves to a config or raises one UserError of one line (in-process: reading a
    config imports no TensorFlow)."""
    import yaml

    from recipes.config import resolve_config

    text = seeds["config.yaml"].read_text()
    rng = random.Random(SEED + zlib.crc32(b"yaml"))
    failures = []
    for number in range(40):
        path = seeds["config.yaml"].with_name(f"config-{number}.yaml")
        if number % 2:
            path.write_bytes(mutate(text.encode(), rng))
        else:
            path.write_text(yaml.safe_dump(mutate_structure(yaml.safe_load(text), rng)))
        try:
            resolve_config(path)
        except UserError as error:
            if "\n" in str(error):
                failures.append(f"{path.name}: a message of several lines: {str(error)!r}")
        except Exception as error:  # every other error is a finding
            failures.append(f"{path.name}: {type(error).__name__}: {error}")
    assert failures == []


@pytest.mark.parametrize(
    "offset, value, message",
    [
        (16, b"\x10\xff\xff\xff", "a fmt chunk of 4,294,967,056 bytes"),  # fmt chunk size
        (40, b"\xff\xff\xff\xff", None),  # data chunk size beyond the file: the samples there are read
    ],
)
def test_a_wav_chunk_size_beyond_the_file_reserves_nothing(seeds, tmp_path, offset, value, message):
    """Under the 4 GiB limit a chunk size of ~4 GiB once made ``read`` reserve it: MemoryError."""
    damaged = bytearray(seeds["clip.wav"].read_bytes())
    damaged[offset : offset + 4] = value
    clip = tmp_path / "clip.wav"
    clip.write_bytes(bytes(damaged))
    completed = run_predict(seeds["audio"], clip)
    if message is None:
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert "yes" in completed.stdout or "no" in completed.stdout
    else:
        assert message in one_error_line(completed)
