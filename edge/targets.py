"""Device targets and what a model costs on them: cycles per convolution, depthwise and dense MAC, clock and power.

Each target names the runtime it assumes (``cortex-m4-120mhz`` is TFLite Micro, the runtime this toolkit packages
for; other runtimes add a suffix, e.g. ``cortex-m4-120mhz-x-cube-ai``). A calibrated target's cycles per MAC of each
kind are fitted to the published MLPerf Tiny results of the four reference models on its board
(:mod:`tuning.latency_calibration`, BENCHMARKS.md), with the energy per inference where that was published; an
uncalibrated one uses one cycles-per-MAC figure from the core's instruction throughput, which is optimistic. The
latency is an estimate, not a measurement. Export, ``analyze``, ``benchmark --target`` and hardware-aware tuning all
read this table. No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.device.errors import UserError, unknown_choice
from recipes.macs import MacCounts

LATENCY_TARGET = "cortex-m4-120mhz"  # export's latency estimate and analyze's default target


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


def cycle_costs(name: str):
    """The cycles per MAC of target ``name`` as :class:`edge.analyze.CycleCosts`, and the target itself.

    Raises:
        UserError: an unknown target (the closest name is suggested).
    """
    from edge.analyze import CycleCosts

    target = target_named(name)
    costs = CycleCosts(target.name, target.clock_hz, *(target.cycles_per_kind or (target.cycles_per_mac,) * 3))
    return costs, target


def targets_help() -> str:
    """The targets for a ``--target`` help text: the calibrated ones first, then the others."""
    calibrated = ", ".join(name for name, target in TARGETS.items() if target.calibrated)
    others = ", ".join(name for name, target in TARGETS.items() if not target.calibrated)
    return f"Calibrated on MLPerf Tiny results (no runtime suffix: TFLite Micro): {calibrated}; uncalibrated: {others}."
