"""Building a firmware package for a Cortex-M4 and running it on QEMU: measured flash, RAM and instructions.

:func:`build` runs the package's Makefile (``arm-none-eabi-gcc``, CMSIS-NN kernels) against a TFLite Micro tree,
with TFLite Micro's objects kept in one folder per machine (:func:`objects_folder`) so that it is compiled once.
:func:`run_on_qemu` runs the example on QEMU's Cortex-M4 board (``mps2-an386``) with ``-icount shift=0``: QEMU's
virtual clock advances one nanosecond per instruction and SysTick counts the 25 MHz processor clock, so one tick is
40 instructions; the count is deterministic, of instructions, not cycles (a Cortex-M4 takes more cycles than
instructions: loads, multiplies and taken branches cost two or more). :func:`image_sizes` reads the ELF's
sections with ``arm-none-eabi-size``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, unknown_choice

ARM_PROGRAMS = (
    "make",
    "arm-none-eabi-gcc",
    "arm-none-eabi-g++",
    "arm-none-eabi-size",
    "arm-none-eabi-nm",
    "qemu-system-arm",
)
INSTRUCTIONS_PER_TICK = 40  # QEMU mps2-an386 with -icount shift=0: 1 ns per instruction, SysTick at 25 MHz
FLASH_SECTIONS = (".vectors", ".init", ".text", ".fini", ".rodata", ".ARM.exidx", ".eh_frame", ".init_array",
                  ".fini_array", ".data")  # fmt: skip
RAM_SECTIONS = (".data", ".bss")
BUILD_SECONDS = 1800  # a first build compiles TFLite Micro: minutes on two cores
RUN_SECONDS = 600
_LINE = re.compile(
    r"example (\d+): top=(\d+) \(.*\) ticks=(\d+) values=(\S+)(?: anomaly=(\d))? input=([0-9a-f]+) output=([0-9a-f]+)"
)
_ARENA = re.compile(r"arena (\d+) bytes used of (\d+)")


@dataclass
class QemuRun:
    """What the example firmware printed on QEMU, one row per example.

    Args:
        top: the index of the largest output.
        instructions: instructions each ``model_predict`` executed (front end, model, output mapping).
        values: what ``model_predict`` returned.
        anomaly: ``model_is_anomaly`` of each example (an anomaly detector), else None.
        inputs: the int8 input tensor after the C front end, z-score and quantization.
        outputs: the int8 output tensor.
        arena_used: the tensor arena TFLite Micro used on the 32-bit target.
        arena_reserved: the arena ``model_config.h`` reserves.
        text: the whole output.
    """

    top: np.ndarray
    instructions: np.ndarray
    values: np.ndarray
    anomaly: list[int] | None
    inputs: np.ndarray
    outputs: np.ndarray
    arena_used: int
    arena_reserved: int
    text: str


def missing_programs() -> list[str]:
    """The programs a firmware build and run need that are not on the PATH."""
    return [program for program in ARM_PROGRAMS if shutil.which(program) is None]


def check_tree(tflm_root: Path | str | None) -> Path:
    """The TFLite Micro tree, checked.

    Raises:
        UserError: none given, or not a tree written by ``create_tflm_tree.py``.
    """
    if not tflm_root:
        raise UserError("no TFLite Micro tree: give --tflm-root PATH or set TFLM_ROOT (a create_tflm_tree.py output)")
    root = Path(tflm_root).expanduser().resolve()
    if not (root / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
        raise UserError(f"{root} is not a TFLite Micro tree (no tensorflow/lite/micro/micro_interpreter.h)")
    return root


def objects_folder(tflm_root: Path, makefile: Path, cache: Path | None = None) -> Path:
    """Where TFLite Micro's objects for this tree, compiled by this Makefile (its flags), are kept between builds:
    ``<cache>/edge-recipes/tflm-<hash>``, the cache being ``$XDG_CACHE_HOME`` or ``~/.cache`` by default."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(f"{tflm_root}\n".encode() + makefile.read_bytes()).hexdigest()[:16]
    return cache / "edge-recipes" / f"tflm-{key}"


def build(folder: Path, tflm_root: Path, build_dir: Path, objects: Path | None = None, jobs: int = 2) -> Path:
    """``make`` the package's example firmware; returns the ELF.

    Args:
        folder: the firmware package (``edge/firmware``).
        tflm_root: the TFLite Micro tree.
        build_dir: where the package's own objects and the ELF go.
        objects: where TFLite Micro's objects go (default :func:`objects_folder`).
        jobs: parallel compilations.

    Raises:
        UserError: a program missing, or the build failing (its last lines quoted).
    """
    missing = missing_programs()
    if missing:
        raise UserError(
            f"{', '.join(missing)} not found: install Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi, "
            "libstdc++-arm-none-eabi-newlib and qemu-system-arm"
        )
    objects = objects or objects_folder(tflm_root, folder / "Makefile")
    command = ["make", "-C", str(folder), f"-j{jobs}", "-s", f"TFLM_ROOT={tflm_root}", f"TFLM_BUILD={objects}"]
    command.append(f"BUILD={build_dir}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_SECONDS)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise UserError(f"the firmware build failed: {' | '.join(tail)}")
    return build_dir / "firmware.elf"


def run_on_qemu(elf: Path) -> QemuRun:
    """Run the example firmware on QEMU's Cortex-M4 board and parse what it printed.

    Raises:
        UserError: QEMU failed or the firmware reported an error.
    """
    command = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting", "-icount", "shift=0"]
    done = subprocess.run([*command, "-kernel", str(elf)], capture_output=True, text=True, timeout=RUN_SECONDS)
    arena = _ARENA.search(done.stdout)
    if done.returncode != 0 or arena is None:
        tail = (done.stdout + done.stderr).strip().splitlines()[-2:]
        raise UserError(f"the firmware failed on QEMU (exit {done.returncode}): {' | '.join(tail)}")
    rows = [match.groups() for match in _LINE.finditer(done.stdout)]
    if not rows:
        raise UserError(f"the firmware printed no example on QEMU: {done.stdout.strip()[-200:]}")
    return QemuRun(
        top=np.array([int(row[1]) for row in rows]),
        instructions=np.array([int(row[2]) * INSTRUCTIONS_PER_TICK for row in rows]),
        values=np.array([[float(value) for value in row[3].split(",")] for row in rows], np.float32),
        anomaly=[int(row[4]) for row in rows] if rows and rows[0][4] is not None else None,
        inputs=np.array([np.frombuffer(bytes.fromhex(row[5]), np.int8) for row in rows]),
        outputs=np.array([np.frombuffer(bytes.fromhex(row[6]), np.int8) for row in rows]),
        arena_used=int(arena.group(1)),
        arena_reserved=int(arena.group(2)),
        text=done.stdout,
    )


def image_sizes(elf: Path) -> dict[str, int]:
    """Flash (code, constants and the initial values of data) and static RAM (data and bss, the arena in it) of an
    ELF, in bytes, with each section's size; ``examples`` is the example firmware's test examples (in flash) and
    ``flash_without_examples`` what a device's image of the library holds."""
    listing = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sections = {name: int(size) for name, size in re.findall(r"^(\.[\w.]+)\s+(\d+)", listing, re.MULTILINE)}
    symbols = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    examples = re.search(r"^[0-9a-f]+ ([0-9a-f]+) \w (?:_ZL)?\d*model_examples\w*$", symbols, re.MULTILINE)
    flash = sum(sections.get(name, 0) for name in FLASH_SECTIONS)
    examples_bytes = int(examples.group(1), 16) if examples else 0
    return {
        "flash": flash,
        "ram": sum(sections.get(name, 0) for name in RAM_SECTIONS),
        "examples": examples_bytes,
        "flash_without_examples": flash - examples_bytes,
        **{f"section{name}": size for name, size in sections.items()},
    }


@dataclass
class TargetMeasurement:
    """A firmware package measured on the emulated Cortex-M4, beside the estimate from MACs.

    Args:
        name: the run (or package) measured.
        flash_bytes: code, constants (the model) and initial data of the linked example image, without its test
            examples.
        ram_bytes: static RAM (data and bss, the tensor arena included).
        arena_used: the arena TFLite Micro used on the 32-bit target.
        arena_reserved: the arena the package reserves.
        model_bytes: the model array.
        instructions: median instructions per ``model_predict`` (front end, model, output mapping).
        instructions_range: the fewest and most over the examples.
        estimated_cycles: cycles the calibrated per-MAC model estimates for the model alone.
        estimate_target: the target of that estimate.
        examples: examples run.
    """

    name: str
    flash_bytes: int
    ram_bytes: int
    arena_used: int
    arena_reserved: int
    model_bytes: int
    instructions: int
    instructions_range: tuple[int, int]
    estimated_cycles: float
    estimate_target: str
    examples: int

    def to_dict(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return dict(vars(self), instructions_range=list(self.instructions_range))


def firmware_folder(path: Path) -> Path:
    """The firmware package of a run directory, an ``edge/`` folder, or the package folder itself.

    Raises:
        UserError: none there (export with --firmware first).
    """
    for candidate in (path / "edge" / "firmware", path / "firmware", path):
        if (candidate / "model_config.h").is_file() and (candidate / "Makefile").is_file():
            return candidate
    raise UserError(f"{path} has no firmware package; run 'python cli.py export {path} --firmware' first")


MEASURED_TARGETS = ("cortex-m4",)  # the boards ``benchmark --target`` builds for and runs on QEMU


def measure_target(path: Path, target: str, tflm_root: Path | str | None) -> tuple[TargetMeasurement, Any]:
    """Build the firmware package of ``path`` for a Cortex-M4 (CMSIS-NN), run its examples on QEMU and measure.

    Args:
        path: a run directory exported with ``--firmware``, or a firmware package.
        target: one of :data:`MEASURED_TARGETS`.
        tflm_root: the TFLite Micro tree (None: the ``TFLM_ROOT`` environment variable).

    Returns:
        The measurement, and the :class:`edge.targets.Target` whose estimate it holds beside it
        (:data:`edge.targets.LATENCY_TARGET`).

    Raises:
        UserError: an unknown target, no TFLite Micro tree, or a package that does not build or run.
    """
    from edge.analyze import analyze_model
    from edge.targets import LATENCY_TARGET, cycle_costs

    if target not in MEASURED_TARGETS:
        raise unknown_choice("target", target, MEASURED_TARGETS)
    costs, device = cycle_costs(LATENCY_TARGET)
    folder = firmware_folder(Path(path))
    root = check_tree(tflm_root or os.environ.get("TFLM_ROOT"))
    with tempfile.TemporaryDirectory(prefix="edge-recipes-firmware-") as work:
        elf = build(folder, root, Path(work))
        run = run_on_qemu(elf)
        sizes = image_sizes(elf)
        content = model_array_bytes(folder / "model_data.cc")
        estimate = analyze_model(content, costs, "model_data.cc")
    measurement = TargetMeasurement(
        name=folder.parent.parent.name if folder.parent.name == "edge" else folder.name,
        flash_bytes=sizes["flash_without_examples"],
        ram_bytes=sizes["ram"],
        arena_used=run.arena_used,
        arena_reserved=run.arena_reserved,
        model_bytes=len(content),
        instructions=int(np.median(run.instructions)) if len(run.instructions) else 0,
        instructions_range=(int(run.instructions.min()), int(run.instructions.max()))
        if len(run.instructions)
        else (0, 0),
        estimated_cycles=float(estimate.cycles),
        estimate_target=costs.target,
        examples=len(run.top),
    )
    return measurement, device


def model_array_bytes(path: Path) -> bytes:
    """The bytes of the C array in ``model_data.cc``."""
    body = path.read_text().split("{", 1)[1].split("}", 1)[0]
    return bytes(int(value, 16) for value in re.findall(r"0x([0-9a-fA-F]{2})", body))
