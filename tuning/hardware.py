"""Hardware-aware tuning: device targets, the budget a trial must meet, and measuring a candidate.

A search given ``--max-int8-kb``, ``--max-arena-kb``, ``--max-latency-ms`` or ``--target`` converts
each trained trial to full-integer int8 (:func:`edge.convert.convert_model`, the export's converter)
and measures it (:func:`measure_candidate`): the ``.tflite`` size, the TFLite Micro tensor arena
(:mod:`edge.arena`, when the optional ``tflite-micro`` package is installed), the multiply-accumulates
per example by kind (:func:`recipes.macs.count_macs_by_kind`) and, for a named target, an estimated latency.

The latency is an estimate, not a measurement (:func:`estimate_latency_ms`). Each target names the runtime it
assumes (``cortex-m4-120mhz`` is TFLite Micro, the runtime this toolkit packages for; other runtimes add a
suffix, e.g. ``cortex-m4-120mhz-x-cube-ai``). A calibrated target estimates cycles per convolution, depthwise
and dense MAC, fitted to the published MLPerf Tiny results of the four reference models on its board
(:mod:`tuning.latency_calibration`, BENCHMARKS.md), and the energy per inference where that was published
(:func:`estimate_energy_uj`). The uncalibrated targets use one cycles-per-MAC figure from the core's
instruction throughput, which is optimistic: a real model also spends cycles in other operators,
requantization, memory wait states and the interpreter. Measure on the device before relying on either.

This module imports no TensorFlow (the settings check a budget before anything heavy is imported);
:func:`measure_candidate` imports ``edge``'s converter and runtime when it is called (only the light
variant registry at import). 1 KB is 1,024 bytes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.device.errors import UserError, unknown_choice
from edge.variants import DEFAULT_CALIBRATION_SAMPLES
from recipes.macs import MacCounts

KB = 1024
# Examples in the representative data set of a trial's int8 conversion: the size, arena and MACs do not
# depend on the calibrated ranges, but the int8 dev accuracy does, so the draw is as large as export's
# default (seeded, stratified by class), and the trial's int8 model is what export would write.
CALIBRATION_SAMPLES = DEFAULT_CALIBRATION_SAMPLES
# The metrics a measured trial reports (columns of trials.csv).
INT8_KB_METRIC = "int8_kb"
ARENA_KB_METRIC = "arena_kb"
MACS_METRIC = "macs"
LATENCY_METRIC = "est_latency_ms"
INT8_ACCURACY_METRIC = "int8_val_accuracy"  # a classifier's int8 model on the dev split
FEASIBLE_METRIC = "feasible"  # 1.0 within the budget, 0.0 over it
HARDWARE_METRICS = (INT8_KB_METRIC, ARENA_KB_METRIC, MACS_METRIC, LATENCY_METRIC, INT8_ACCURACY_METRIC)
# How each measurement is printed in a table cell.
METRIC_FORMATS = {
    INT8_KB_METRIC: "{:,.2f}",
    ARENA_KB_METRIC: "{:,.2f}",
    MACS_METRIC: "{:,.0f}",
    LATENCY_METRIC: "{:.3g}",
    INT8_ACCURACY_METRIC: "{:.4f}",
}
ARENA_NOT_MEASURED = "arena not measured (install the micro extra: pip install 'edge-recipes[micro]')"


@dataclass(frozen=True)
class Target:
    """A device and runtime the latency is estimated for.

    Attributes:
        name: the ``--target`` name, e.g. ``cortex-m4-120mhz`` (core, clock, and the runtime unless it is
            TFLite Micro, the runtime this toolkit packages for).
        clock_hz: the core clock.
        cycles_per_mac: cycles per int8 multiply-accumulate when only the total MACs are known.
        basis: where the figures come from, in one line.
        runtime: the runtime the figures assume.
        cycles_per_kind: cycles per convolution, depthwise and dense MAC, fitted to published results;
            None for a target that is not calibrated.
        power_mw: mean published power while inferring (µJ per ms); None where no energy was published.
    """

    name: str
    clock_hz: float
    cycles_per_mac: float
    basis: str
    runtime: str = "CMSIS-NN-style kernels (uncalibrated)"
    cycles_per_kind: tuple[float, float, float] | None = None
    power_mw: float | None = None

    @property
    def calibrated(self) -> bool:
        """Whether the figures were fitted to published measurements (:mod:`tuning.latency_calibration`)."""
        return self.cycles_per_kind is not None


def _calibrated(name: str, clock_hz: float, runtime: str, fitted: tuple[float, ...], board: str) -> Target:
    """A target fitted to MLPerf Tiny results: ``fitted`` is (conv, depthwise, dense, blended, power)."""
    conv, depthwise, dense, blended, power = fitted
    return Target(
        name,
        clock_hz,
        blended,
        f"fitted to the MLPerf Tiny results of {board} (see BENCHMARKS.md)",
        runtime,
        (conv, depthwise, dense),
        power,
    )


# Calibrated targets: tuning.latency_calibration.fit() on the published MLPerf Tiny results (a test refits
# them and compares), as (conv, depthwise, dense, blended cycles per MAC, mean power in mW or None).
# Estimates of the four reference models fall within +-30% of the published figures under leave-one-out
# except TFLite Micro's resnet8 and autoencoder on the M4, a runtime published on one board (BENCHMARKS.md).
# The uncalibrated targets keep the instruction-throughput assumptions, which are optimistic: a device is
# usually slower. Measure on the device before relying on any of them.
TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        _calibrated(
            "cortex-m4-120mhz",
            120e6,
            "TFLite Micro (MLPerf Tiny reference submission, v2.3.1)",
            (6.943, 23.1, 4.567, 6.207, 40.98),
            "NUCLEO-L4R5ZI",
        ),
        _calibrated(
            "cortex-m4-120mhz-microtvm-cmsis-nn",
            120e6,
            "microTVM with CMSIS-NN",
            (3.88, 10.82, 3.803, 4.156, 51.85),
            "NUCLEO-L4R5ZI",
        ),
        _calibrated(
            "cortex-m33-128mhz-microtvm-cmsis-nn",
            128e6,
            "microTVM with CMSIS-NN",
            (3.177, 8.857, 3.114, 3.402, None),
            "nRF5340 DK",
        ),
        _calibrated(
            "cortex-m4-120mhz-x-cube-ai", 120e6, "X-CUBE-AI", (1.562, 2.208, 2.177, 1.696, 33.37), "NUCLEO-L4R5ZI-P"
        ),
        _calibrated(
            "cortex-m33-200mhz-tflm-cmsis-nn",
            200e6,
            "TFLite Micro with CMSIS-NN",
            (3.949, 4.71, 3.493, 3.847, 72.58),
            "EK-RA6M4",
        ),
        _calibrated(
            "cortex-m33-160mhz-x-cube-ai", 160e6, "X-CUBE-AI", (1.384, 1.957, 1.929, 1.501, 23.39), "NUCLEO-U575ZI-Q"
        ),
        _calibrated(
            "cortex-m7-280mhz-x-cube-ai", 280e6, "X-CUBE-AI", (0.9388, 1.327, 1.308, 1.019, 126.5), "NUCLEO-H7A3ZI-Q"
        ),
        _calibrated(
            "cortex-m0plus-64mhz-hale", 64e6, "Bosch HALE", (7.506, 44.13, 10.68, 9.707, None), "NUCLEO-G0B1RE"
        ),
        _calibrated("cortex-m4-120mhz-hale", 120e6, "Bosch HALE", (1.814, 10.66, 2.581, 2.284, None), "NUCLEO-L4R5ZI"),
        _calibrated(
            "cortex-m4-150mhz-hale", 150e6, "Bosch HALE", (2.067, 12.15, 2.941, 2.594, None), "CY8CPROTO-062-4343W"
        ),
        _calibrated(
            "cortex-m33-160mhz-hale", 160e6, "Bosch HALE", (1.586, 9.325, 2.257, 2.011, None), "NUCLEO-U575ZI-Q"
        ),
        _calibrated("cortex-m7-216mhz-hale", 216e6, "Bosch HALE", (1.036, 6.088, 1.474, 1.343, None), "DISCO-F746NG"),
        _calibrated("cortex-m7-280mhz-hale", 280e6, "Bosch HALE", (1.031, 6.059, 1.467, 1.317, None), "NUCLEO-H7A3ZI"),
        # The M4's DSP instructions on a dual-issue pipeline with 64-bit loads: about half the M4's cycles.
        Target("cortex-m7-480mhz", 480e6, 1.0, "dual-issue M4 DSP instructions, 64-bit loads: about 1 cycle/MAC"),
        # Armv8-M Mainline with the (optional) DSP extension, as most M33 parts have: the M4's SMLAD path.
        Target("cortex-m33-64mhz", 64e6, 2.0, "DSP extension assumed present: as the M4, about 2 cycles/MAC"),
        # Xtensa LX7 with 128-bit SIMD (used by ESP-NN): several MACs per instruction, but loads and data
        # shuffles dominate the small layers of tiny models; 1 cycle per MAC assumed.
        Target("esp32-s3-240mhz", 240e6, 1.0, "128-bit SIMD with ESP-NN kernels: about 1 cycle/MAC assumed"),
        # Armv6-M: no DSP extension and no multiply-accumulate instruction; per MAC two LDRSB (2 cycles
        # each), MULS (1, single-cycle multiplier option), ADDS and loop overhead: about 10 cycles.
        Target("cortex-m0plus-48mhz", 48e6, 10.0, "no SIMD or MLA: LDRSB x2, MULS, ADDS, loop: about 10 cycles/MAC"),
    )
}


def target_named(name: str) -> Target:
    """The target called ``name``.

    Raises:
        UserError: an unknown name (the closest known one is suggested: the one target of that core
            when the clock is left out, e.g. ``cortex-m0plus``, else the most similar spelling).
    """
    if name in TARGETS:
        return TARGETS[name]
    # Of a core's targets, the shortest name is its TFLite Micro one (other runtimes add a suffix).
    of_core = sorted((known for known in TARGETS if known.startswith(f"{name.lower()}-")), key=len)
    if of_core and (len(of_core) == 1 or len(of_core[0]) < len(of_core[1])):
        choices = ", ".join(sorted(TARGETS))
        raise UserError(f"unknown target '{name}'; did you mean '{of_core[0]}'? (choose from: {choices})")
    raise unknown_choice("target", name, TARGETS)


def estimate_latency_ms(macs: int | MacCounts, target: Target) -> float:
    """Estimated milliseconds of one inference on ``target``.

    With per-kind counts (:func:`recipes.macs.count_macs_by_kind`) on a calibrated target:
    ``(c_conv × conv + c_depthwise × depthwise + c_dense × dense) ÷ clock_hz × 1000``; with a bare MAC
    count, or on an uncalibrated target: ``macs × cycles_per_mac ÷ clock_hz × 1000``. An estimate, not a
    measurement (see the module docstring).
    """
    if isinstance(macs, MacCounts):
        if target.cycles_per_kind is None:
            return estimate_latency_ms(macs.total, target)
        conv, depthwise, dense = target.cycles_per_kind
        cycles = conv * macs.conv + depthwise * macs.depthwise + dense * macs.dense
        return cycles / target.clock_hz * 1000.0
    return macs * target.cycles_per_mac / target.clock_hz * 1000.0


def estimate_energy_uj(macs: int | MacCounts, target: Target) -> float | None:
    """Estimated µJ of one inference: the estimated latency × the target's published power; None when
    no energy was published for it."""
    if target.power_mw is None:
        return None
    return estimate_latency_ms(macs, target) * target.power_mw


def describe_estimate(target: Target) -> str:
    """How the latency on ``target`` is estimated and which runtime it assumes, in one phrase."""
    clock = f"{target.clock_hz / 1e6:g} MHz"
    if target.cycles_per_kind is None:
        return f"assuming {target.runtime}: MACs x {target.cycles_per_mac:g} cycles/MAC / {clock}; {target.basis}"
    conv, depthwise, dense = target.cycles_per_kind
    energy = f"; about {target.power_mw:.3g} mW while inferring" if target.power_mw is not None else ""
    return (
        f"assuming {target.runtime}: ({conv:.3g} x conv + {depthwise:.3g} x depthwise + {dense:.3g} x dense MACs) "
        f"cycles / {clock}; {target.basis}{energy}"
    )


def format_metric(name: str, value: float | None) -> str:
    """A measurement for a table cell, e.g. ``16.45`` KB or ``8,832`` MACs; ``-`` when not measured."""
    return "-" if value is None else METRIC_FORMATS[name].format(value)


def micro_installed() -> bool:
    """Whether the optional ``tflite-micro`` package (which measures the arena) is installed."""
    return importlib.util.find_spec("tflite_micro") is not None


def _kb(value: float) -> str:
    return f"{value:,.2f} KB"


@dataclass(frozen=True)
class Budget:
    """What a trial's int8 model must fit: each limit None when not set.

    Attributes:
        max_int8_kb: largest ``.tflite`` size in KB.
        max_arena_kb: largest TFLite Micro tensor arena in KB.
        max_latency_ms: largest estimated latency on ``target`` in milliseconds.
        target: a key of :data:`TARGETS`, the device the latency is estimated for.
    """

    max_int8_kb: float | None = None
    max_arena_kb: float | None = None
    max_latency_ms: float | None = None
    target: str | None = None

    @classmethod
    def from_options(
        cls,
        max_int8_kb: float | None = None,
        max_arena_kb: float | None = None,
        max_latency_ms: float | None = None,
        target: str | None = None,
    ) -> Budget | None:
        """Check the budget options of ``python cli.py tune``.

        Returns:
            The budget, or None when no option is given (a search that measures nothing).

        Raises:
            UserError: a limit that is not a positive number, an unknown target, a latency limit
                without a target, or an arena limit without ``tflite-micro`` to measure it.
        """
        limits = {"--max-int8-kb": max_int8_kb, "--max-arena-kb": max_arena_kb, "--max-latency-ms": max_latency_ms}
        for option, value in limits.items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserError(f"{option} must be a positive number, got {value:g}; e.g. {option} 64")
        if target is not None:
            target_named(target)
        if max_latency_ms is not None and target is None:
            raise UserError(
                "--max-latency-ms needs --target to estimate the latency from MACs; add e.g. --target cortex-m4-120mhz"
            )
        if max_arena_kb is not None and not micro_installed():
            raise UserError(
                "--max-arena-kb needs the tflite-micro package to measure the arena; "
                "pip install 'edge-recipes[micro]', or drop --max-arena-kb"
            )
        if all(value is None for value in (*limits.values(), target)):
            return None
        return cls(max_int8_kb, max_arena_kb, max_latency_ms, target)

    @property
    def device(self) -> Target | None:
        """The target, or None when no ``--target`` was given."""
        return TARGETS[self.target] if self.target else None

    def describe(self) -> str:
        """The limits in one phrase, e.g. ``int8 ≤ 64 KB, estimated latency ≤ 5 ms on cortex-m4-120mhz``."""
        parts = []
        if self.max_int8_kb is not None:
            parts.append(f"int8 ≤ {self.max_int8_kb:g} KB")
        if self.max_arena_kb is not None:
            parts.append(f"arena ≤ {self.max_arena_kb:g} KB")
        if self.max_latency_ms is not None:
            parts.append(f"estimated latency ≤ {self.max_latency_ms:g} ms on {self.target}")
        return ", ".join(parts) or f"no limits (latency estimated for {self.target})"

    def plan_lines(self) -> list[str]:
        """What the search measures, printed before it starts."""
        lines = [
            f"hardware budget: {self.describe()}; each trial is converted to int8 and measured, "
            "and a trial over budget is recorded as infeasible"
        ]
        device = self.device
        if device is not None:
            lines.append(f"latency on {device.name} is an estimate, not a measurement, {describe_estimate(device)}")
        if not micro_installed():
            lines.append(ARENA_NOT_MEASURED)
        return lines

    def to_data(self) -> dict[str, Any]:
        """Plain data for ``search.json``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Budget:
        """Rebuild a budget written by :meth:`to_data`."""
        return cls(**data)


@dataclass(frozen=True)
class Measurement:
    """What one trial's int8 model costs.

    Attributes:
        int8_bytes: size of the int8 ``.tflite`` flatbuffer.
        arena_bytes: smallest TFLite Micro tensor arena it runs in; None when not measured.
        arena_note: how the arena was measured, or why it was not.
        macs: multiply-accumulates per example.
        latency_ms: estimated latency on the budget's target; None without a target.
        int8_accuracy: a classifier's int8 accuracy on the dev split; None when not measured.
        keras_accuracy: the Keras model's accuracy on the same examples; None when not measured.
    """

    int8_bytes: int
    arena_bytes: int | None
    arena_note: str
    macs: int
    latency_ms: float | None
    int8_accuracy: float | None = None
    keras_accuracy: float | None = None

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, float]) -> Measurement:
        """Rebuild a measurement from a trial's metrics (:meth:`metrics`; the arena note is not kept)."""
        arena_kb = metrics.get(ARENA_KB_METRIC)
        return cls(
            round(metrics[INT8_KB_METRIC] * KB),
            None if arena_kb is None else round(arena_kb * KB),
            "arena not measured",
            int(metrics[MACS_METRIC]),
            metrics.get(LATENCY_METRIC),
            metrics.get(INT8_ACCURACY_METRIC),
            metrics.get("val_accuracy") if INT8_ACCURACY_METRIC in metrics else None,
        )

    def metrics(self) -> dict[str, float]:
        """The trial metrics: int8 KB, arena KB and latency when known, MACs."""
        metrics = {INT8_KB_METRIC: self.int8_bytes / KB, MACS_METRIC: float(self.macs)}
        if self.arena_bytes is not None:
            metrics[ARENA_KB_METRIC] = self.arena_bytes / KB
        if self.latency_ms is not None:
            metrics[LATENCY_METRIC] = self.latency_ms
        if self.int8_accuracy is not None:
            metrics[INT8_ACCURACY_METRIC] = self.int8_accuracy
        return metrics


def representative_inputs(x_train: np.ndarray, seed: int, y_train: np.ndarray | None = None) -> np.ndarray:
    """The int8 conversion's representative data: :data:`CALIBRATION_SAMPLES` seeded training examples,
    stratified by class when ``y_train`` is given (as export draws them)."""
    from edge.convert import calibration_samples

    return calibration_samples(x_train, CALIBRATION_SAMPLES, seed, y_train)


def measure_candidate(
    model: Any, calibration_x: np.ndarray, budget: Budget, dev: tuple[np.ndarray, np.ndarray] | None = None
) -> Measurement:
    """Convert ``model`` to int8 as export does (the z-score in front of the model, weights per tensor where that
    holds) and measure its size, arena, MACs, estimated latency and, with ``dev``, its accuracy there next to the
    Keras model's.

    Args:
        model: a built Keras 3 model taking raw inputs (a trained trial).
        calibration_x: raw representative inputs (:func:`representative_inputs`).
        budget: the budget (its target decides the latency estimate).
        dev: a classifier's raw dev examples and class indices; None measures no accuracy.

    Returns:
        The measurement; the arena only when ``tflite-micro`` is installed and could run the model.

    Raises:
        UserError: the converter rejects the model.
    """
    from edge.convert import convert_for_device, split_standardization
    from edge.device.model import EdgeModel
    from edge.micro import micro_check
    from edge.per_tensor import narrow_against_keras
    from edge.variants import VARIANTS
    from recipes.macs import count_macs_by_kind
    from recipes.records import keras_inputs

    core, standardization, output = split_standardization(model) or (model, None, None)
    content, standardization, _ = convert_for_device(core, VARIANTS["int8"], calibration_x, False, standardization)
    content = narrow_against_keras(content, core, calibration_x, standardization).content
    int8 = EdgeModel(
        content, source="the trial's int8 model", standardization=standardization, output_standardization=output
    )
    if micro_installed():
        check = micro_check(int8, calibration_x[:1])
        arena_bytes, arena_note = check.arena_bytes, check.note
    else:
        arena_bytes, arena_note = None, ARENA_NOT_MEASURED
    int8_accuracy = keras_accuracy = None
    if dev is not None and int8.num_classes > 1:
        x_dev, y_dev = dev
        int8_accuracy = float(np.mean(int8.predict(x_dev).argmax(axis=1) == y_dev))
        keras_accuracy = float(
            np.mean(np.asarray(model.predict(**keras_inputs(x_dev), verbose=0)).argmax(axis=1) == y_dev)
        )
    counts = count_macs_by_kind(model)
    device = budget.device
    latency = estimate_latency_ms(counts, device) if device is not None else None
    return Measurement(len(content), arena_bytes, arena_note, counts.total, latency, int8_accuracy, keras_accuracy)


def violations(measurement: Measurement, budget: Budget) -> list[str]:
    """The limits ``measurement`` breaks, one reason each (empty when it fits the budget). Besides the budget,
    an int8 model whose dev accuracy falls further below Keras's than int8's export tolerance is refused: export
    would not write it."""
    from edge.variants import VARIANTS

    reasons = []
    tolerance = VARIANTS["int8"].max_accuracy_drop
    if measurement.int8_accuracy is not None and measurement.keras_accuracy is not None:
        drop = 100 * (measurement.keras_accuracy - measurement.int8_accuracy)
        if drop > tolerance + 1e-9:
            reasons.append(
                f"int8 dev accuracy {measurement.int8_accuracy:.2%} is {drop:.2f} points below Keras's "
                f"{measurement.keras_accuracy:.2%} (int8 tolerance {tolerance:g} point)"
            )
    int8_kb = measurement.int8_bytes / KB
    if budget.max_int8_kb is not None and int8_kb > budget.max_int8_kb:
        reasons.append(f"int8 model {_kb(int8_kb)} > {budget.max_int8_kb:g} KB (--max-int8-kb)")
    if budget.max_arena_kb is not None:
        if measurement.arena_bytes is None:
            reasons.append(f"{measurement.arena_note}, so --max-arena-kb cannot be checked")
        elif measurement.arena_bytes / KB > budget.max_arena_kb:
            reasons.append(f"arena {_kb(measurement.arena_bytes / KB)} > {budget.max_arena_kb:g} KB (--max-arena-kb)")
    latency = measurement.latency_ms
    if budget.max_latency_ms is not None and latency is not None and latency > budget.max_latency_ms:
        reasons.append(
            f"estimated latency {latency:.3g} ms > {budget.max_latency_ms:g} ms on {budget.target} (--max-latency-ms)"
        )
    return reasons


def no_feasible_error(budget: Budget, measured: Sequence[Mapping[str, float]]) -> UserError:
    """The error of a search none of whose trials met ``budget``.

    Args:
        budget: the budget.
        measured: the metrics of each measured trial (``int8_kb``, ``arena_kb``, ``est_latency_ms``).

    Returns:
        A one-line error naming the smallest values reached and the options to relax.
    """
    closest, relax = [], []
    for option, limit, metric, what, number in (
        ("--max-int8-kb", budget.max_int8_kb, INT8_KB_METRIC, "the smallest int8 model", "{:,.2f} KB"),
        ("--max-arena-kb", budget.max_arena_kb, ARENA_KB_METRIC, "the smallest arena", "{:,.2f} KB"),
        ("--max-latency-ms", budget.max_latency_ms, LATENCY_METRIC, "the lowest estimated latency", "{:.3g} ms"),
    ):
        values = [metrics[metric] for metrics in measured if metric in metrics]
        if limit is None or not values:
            continue
        closest.append(f"{what} was {number.format(min(values))}")
        if min(values) > limit:
            relax.append(option)
    reached = f": {', '.join(closest)}" if closest else ""
    fix = f"relax {' or '.join(relax)}" if relax else "no trial met every limit at once: relax a limit"
    return UserError(
        f"no trial met the budget ({budget.describe()}){reached}; {fix} (under a new --name) or shrink the space"
    )
