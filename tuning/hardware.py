"""Hardware-aware tuning: the budget a trial must meet, and measuring a candidate (the device targets and their
latency estimates are :mod:`edge.targets`).

A search given ``--max-int8-kb``, ``--max-arena-kb``, ``--max-latency-ms`` or ``--target`` converts
each trained trial to full-integer int8 (:func:`edge.convert.convert_model`, the export's converter)
and measures it (:func:`measure_candidate`): the ``.tflite`` size, the TFLite Micro tensor arena
(:mod:`edge.arena`, when the optional ``tflite-micro`` package is installed), the multiply-accumulates
per example by kind (:func:`recipes.macs.count_macs_by_kind`) and, for a named target, an estimated latency.

The latency is an estimate, not a measurement (:mod:`edge.targets` says how each target's is made); measure on
the device before relying on it.

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

from edge.device.errors import UserError
from edge.targets import TARGETS, Target, describe_estimate, estimate_latency_ms, target_named
from edge.variants import DEFAULT_CALIBRATION_SAMPLES

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
    tolerance = VARIANTS["int8"].tolerance("classification").max_accuracy_drop
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
