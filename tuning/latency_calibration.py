"""Latency calibration: published MLPerf Tiny results and the per-kind cycles-per-MAC fit behind
:data:`edge.targets.TARGETS`.

The data are the median latencies (and, where measured, the median energy per inference) that MLPerf Tiny
submitters published for the four reference models (``kws`` ds_cnn, ``vww`` mobilenet_v1 0.25, ``ic``
resnet8, ``ad`` the dense autoencoder) in the closed division, read from the results repositories
``github.com/mlcommons/tiny_results_v0.5`` ... ``v1.3`` (each system's ``results/<system>/<benchmark>/
performance/results.txt``: "Median throughput is N inf./sec.", latency = 1000 / N ms; ``energy/results.txt``:
"Median energy cost is E uJ/inf."; the board, core, clock and runtime from ``systems/<system>.json``).

The model, per target (a board's core and clock under one runtime)::

    cycles = c_conv × conv MACs + c_depthwise × depthwise MACs + c_dense × dense MACs
    latency = cycles / clock

With four models per board, three free coefficients per board would leave one degree of freedom, so the
fit has fewer: the ratios between the kinds (``c_depthwise / c_conv`` and ``c_dense / c_conv``) belong to the
runtime and are shared by every board calibrated under it; each board has one scale (``c_conv``). The fit
minimises the squared relative error (each published latency weighs the same whatever its size) by
alternating least squares: the scales with the ratios fixed, then the ratios with the scales fixed, until
neither moves. A per-operator overhead (cycles per operator, for the interpreter's dispatch and the
requantisation) was tried and left out: with operator counts of 12 to 30 per model, the data cannot tell it
from the dense cost (the autoencoder is the only dense-heavy model), and leave-one-out errors grew with it.

Leave-one-out (:func:`leave_one_out`): each published point in turn is dropped, everything is refitted on
the rest (the other boards keep their figure for that model, so the runtime's ratios still see it), and the
dropped point is predicted. This checks a board's three other figures plus the runtime's shared ratios; a
runtime published on one board only shares its ratios with nobody, so its leave-one-out error is an
extrapolation from three points.

A runtime's boards are the same engine version in the same submission: HALE 1.0.175 int8 (Bosch, v1.2) on
six Cortex-M boards, the M0+ among them (HALE lowers differently without the DSP extension, but each board's
own four-point fit gives depthwise / conv 4.5 to 5.4 and dense / conv 1.2 to 1.7, the M0+ 4.7 and 1.2);
microTVM with CMSIS-NN (OctoML, v1.0, the same TVM and CMSIS-NN commits) on two. Re-runs of one board and
engine by other submitters (Krai, cTuning: microTVM in v1.1) are left out: they repeat a board's figures, so
leave-one-out would read the dropped point off its copy. The MLPerf Tiny reference submission's TFLite Micro
2.3.1 (v0.5) ran on one board only; no other round has a TFLite Micro submission of that version on an Arm
core (BENCHMARKS.md lists what was searched).

Energy per inference is estimated as the latency × the board's mean published power (energy / latency over
its four models: a board's power barely changes between the models).

This module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from recipes.macs import MacCounts

BENCHMARKS = ("kws", "vww", "ic", "ad")
# The project's recipe that builds each benchmark's reference model, at REFERENCE_SPECS's input.
BENCHMARK_RECIPES = {"kws": "ds_cnn", "vww": "mobilenet_v1", "ic": "resnet8", "ad": "autoencoder"}
# count_macs_by_kind of each reference model as the project builds it (tests rebuild the models and compare).
# The ops differ slightly from the reference .tflite files (e.g. our autoencoder's score head adds four); the
# fit uses MACs only.
REFERENCE_MACS: dict[str, MacCounts] = {
    "kws": MacCounts(conv=2_368_000, depthwise=288_000, dense=768, ops=12),
    "vww": MacCounts(conv=6_690_816, depthwise=798_336, dense=512, ops=30),
    "ic": MacCounts(conv=12_500_992, depthwise=0, dense=640, ops=15),
    "ad": MacCounts(conv=0, depthwise=0, dense=264_192, ops=14),
}
# The stored commit of each results repository the figures were read from.
# The tolerance the issue set for each estimate under leave-one-out, as the benchmark prints it.
TOLERANCE_NOTE = "+-30%"
# Weight of the prior ratio 1 in the ratio fit, against rows of order 1 (a kind's share of a model's cycles).
RATIO_PRIOR_WEIGHT = 1e-3
RESULTS_COMMITS = {
    "v0.5": "d75aef63526dcbb30632f0529411f0219ed1003e",
    "v0.7": "64623f41b6721bdff6d0133a524c63a003123b3b",
    "v1.0": "c7761cf84076d601c4a0ed2ecc51e77d40696ed2",
    "v1.2": "cadb362343f559d459e7cdb8748685ba76b9eb23",
    "v1.3": "cd605ea0981306693c9e19765a15801c776988dc",
}


@dataclass(frozen=True)
class PublishedSystem:
    """One MLPerf Tiny submission of the four reference models on one board.

    Attributes:
        target: the ``--target`` name it calibrates (core, clock and runtime).
        runtime: the runtime's short name; boards of one runtime share its ratios between kinds.
        runtime_detail: the inference engine as its system description names it.
        board: the board.
        core: the CPU core.
        clock_hz: the core clock the results were measured at.
        round: the MLPerf Tiny round (the repository ``mlcommons/tiny_results_<round>``).
        system_path: the system description in that repository.
        results_path: the results folder, holding ``<benchmark>/performance/results.txt`` (and ``energy/``).
        latency_ms: median latency per benchmark.
        energy_uj: median energy per inference per benchmark; empty when not measured.
    """

    target: str
    runtime: str
    runtime_detail: str
    board: str
    core: str
    clock_hz: float
    round: str
    system_path: str
    results_path: str
    latency_ms: Mapping[str, float]
    energy_uj: Mapping[str, float]

    @property
    def repository(self) -> str:
        """The results repository, e.g. ``mlcommons/tiny_results_v0.5``."""
        return f"mlcommons/tiny_results_{self.round}"


def _per_benchmark(kws: float, vww: float, ic: float, ad: float) -> dict[str, float]:
    return {"kws": kws, "vww": vww, "ic": ic, "ad": ad}


# Latency = 1000 / the median throughput printed in performance/results.txt; energy from energy/results.txt.
PUBLISHED: tuple[PublishedSystem, ...] = (
    PublishedSystem(
        "cortex-m4-120mhz",
        "tflm",
        "TensorFlow Lite Micro v2.3.1 (reference submission: mbed-os, GCC 6, built with TAGS=cmsis-nn "
        "in code/reference_submissions/*/setup_example.sh)",
        "NUCLEO-L4R5ZI",
        "Cortex-M4",
        120e6,
        "v0.5",
        "closed/reference/systems/Nucleo_L4R5ZI_System_Description.json",
        "closed/reference/results/Nucleo-L4R5ZI",
        _per_benchmark(1000 / 5.497, 1000 / 1.665, 1000 / 1.420, 1000 / 99.487),
        _per_benchmark(7373.704, 24312.648, 29207.010, 416.312),
    ),
    PublishedSystem(
        "cortex-m33-200mhz-tflm-cmsis-nn",
        "tflm-cmsis-nn",
        "tflite-micro with CMSIS (Renesas, GCC-ARM 8.3.1)",
        "EK-RA6M4",
        "Cortex-M33",
        200e6,
        "v0.7",
        "closed/renesas/systems/EK-RA6M4_System_Description.json",
        "closed/renesas/results/EK-RA6M4",
        _per_benchmark(1000 / 19.774, 1000 / 6.159, 1000 / 4.062, 1000 / 216.772),
        _per_benchmark(3796.957, 11851.829, 17723.829, 324.088),
    ),
    PublishedSystem(
        "cortex-m4-120mhz-microtvm-cmsis-nn",
        "microtvm-cmsis-nn",
        "microTVM with CMSIS-NN kernels (OctoML; TVM e3a6cb6, CMSIS-NN 5126318, Zephyr 2.7.3)",
        "NUCLEO-L4R5ZI",
        "Cortex-M4",
        120e6,
        "v1.0",
        "closed/OctoML/systems/system_description_NUCLEO_L4R5ZI_microtvm_cmsis_nn.json",
        "closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI",
        _per_benchmark(1000 / 10.019, 1000 / 3.320, 1000 / 2.567, 1000 / 116.212),
        _per_benchmark(5230.273, 15531.354, 20236.298, 443.184),
    ),
    # The same submission (OctoML, v1.0) on a second board: the same TVM and CMSIS-NN commits, Zephyr 2.7.3.
    PublishedSystem(
        "cortex-m33-128mhz-microtvm-cmsis-nn",
        "microtvm-cmsis-nn",
        "microTVM with CMSIS-NN kernels (OctoML; TVM e3a6cb6, CMSIS-NN 5126318, Zephyr 2.7.3)",
        "nRF5340 DK",
        "Cortex-M33",
        128e6,
        "v1.0",
        "closed/OctoML/systems/system_description_NRF5340DK_microtvm_cmsis_nn.json",
        "closed/OctoML/results/microtvm_cmsis_nn/NRF5340-DK",
        _per_benchmark(1000 / 13.143, 1000 / 4.310, 1000 / 3.163, 1000 / 159.579),
        {},
    ),
    PublishedSystem(
        "cortex-m4-120mhz-x-cube-ai",
        "x-cube-ai",
        "X-CUBE-AI v10.2 (STMicroelectronics, IAR 8.50)",
        "NUCLEO-L4R5ZI-P",
        "Cortex-M4",
        120e6,
        "v1.3",
        "closed/STMicroelectronics/systems/NUCLEO_L4R5ZI-P.json",
        "closed/STMicroelectronics/results/NUCLEO_L4R5ZI-P",
        _per_benchmark(1000 / 23.032, 1000 / 11.181, 1000 / 6.036, 1000 / 208.608),
        _per_benchmark(1430.6681, 3029.7521, 5495.9150, 160.4232),
    ),
    PublishedSystem(
        "cortex-m33-160mhz-x-cube-ai",
        "x-cube-ai",
        "X-CUBE-AI v10.2 (STMicroelectronics)",
        "NUCLEO-U575ZI-Q",
        "Cortex-M33",
        160e6,
        "v1.3",
        "closed/STMicroelectronics/systems/NUCLEO_U575ZI_Q.json",
        "closed/STMicroelectronics/results/NUCLEO_U575ZI_Q",
        _per_benchmark(1000 / 34.489, 1000 / 16.873, 1000 / 9.133, 1000 / 311.579),
        _per_benchmark(664.4239, 1372.1684, 2565.2442, 77.2364),
    ),
    PublishedSystem(
        "cortex-m7-280mhz-x-cube-ai",
        "x-cube-ai",
        "X-CUBE-AI v9.0.0 (STMicroelectronics, GCC-ARM 10.3)",
        "NUCLEO-H7A3ZI-Q",
        "Cortex-M7",
        280e6,
        "v1.2",
        "closed/STMicroelectronics/systems/NUCLEO_H7A3ZI_Q.json",
        "closed/STMicroelectronics/results/NUCLEO_H7A3ZI_Q",
        _per_benchmark(1000 / 88.356, 1000 / 42.009, 1000 / 24.483, 1000 / 816.004),
        _per_benchmark(1375.599, 2965.461, 5090.283, 165.728),
    ),
    PublishedSystem(
        "cortex-m0plus-64mhz-hale",
        "hale",
        "Bosch Hardware-Aware Lowering Engine (HALE) 1.0.175, int8",
        "NUCLEO-G0B1RE",
        "Cortex-M0+",
        64e6,
        "v1.2",
        "closed/bosch/systems/NUCLEO_G0B1RE_int8.json",
        "closed/bosch/results/NUCLEO_G0B1RE_int8",
        _per_benchmark(1000 / 2.107, 1000 / 0.707, 1000 / 0.657, 1000 / 24.454),
        {},
    ),
    # The same HALE submission (v1.2, HALE 1.0.175 int8, arm-none-eabi-gcc 12.2.1, bare metal) on the boards with
    # the DSP extension; no energy was published. (The CY8CPROTO's system description names Plumerai as the
    # submitter, a copy slip: it is in closed/bosch and names HALE 1.0.175.)
    PublishedSystem(
        "cortex-m4-120mhz-hale",
        "hale",
        "Bosch Hardware-Aware Lowering Engine (HALE) 1.0.175, int8",
        "NUCLEO-L4R5ZI",
        "Cortex-M4",
        120e6,
        "v1.2",
        "closed/bosch/systems/NUCLEO_L4R5ZI_int8.json",
        "closed/bosch/results/NUCLEO_L4R5ZI_int8",
        _per_benchmark(1000 / 16.623, 1000 / 5.540, 1000 / 5.539, 1000 / 171.375),
        {},
    ),
    PublishedSystem(
        "cortex-m4-150mhz-hale",
        "hale",
        "Bosch Hardware-Aware Lowering Engine (HALE) 1.0.175, int8",
        "CY8CPROTO-062-4343W",
        "Cortex-M4",
        150e6,
        "v1.2",
        "closed/bosch/systems/CY8CPROTO_062_4343W_int8.json",
        "closed/bosch/results/CY8CPROTO_062_4343W_int8",
        _per_benchmark(1000 / 18.466, 1000 / 6.465, 1000 / 6.165, 1000 / 167.543),
        {},
    ),
    PublishedSystem(
        "cortex-m33-160mhz-hale",
        "hale",
        "Bosch Hardware-Aware Lowering Engine (HALE) 1.0.175, int8",
        "NUCLEO-U575ZI-Q",
        "Cortex-M33",
        160e6,
        "v1.2",
        "closed/bosch/systems/NUCLEO_U575ZI_int8.json",
        "closed/bosch/results/NUCLEO_U575ZI_int8",
        _per_benchmark(1000 / 25.918, 1000 / 8.345, 1000 / 8.296, 1000 / 262.860),
        {},
    ),
    PublishedSystem(
        "cortex-m7-216mhz-hale",
        "hale",
        "Bosch Hardware-Aware Lowering Engine (HALE) 1.0.175, int8",
        "DISCO-F746NG",
        "Cortex-M7",
        216e6,
        "v1.2",
        "closed/bosch/systems/DISCO_F746NG_int8.json",
        "closed/bosch/results/DISCO_F746NG_int8",
        _per_benchmark(1000 / 52.746, 1000 / 17.468, 1000 / 15.986, 1000 / 584.380),
        {},
    ),
    PublishedSystem(
        "cortex-m7-280mhz-hale",
        "hale",
        "Bosch Hardware-Aware Lowering Engine (HALE) 1.0.175, int8",
        "NUCLEO-H7A3ZI",
        "Cortex-M7",
        280e6,
        "v1.2",
        "closed/bosch/systems/NUCLEO_H7A3ZI_int8.json",
        "closed/bosch/results/NUCLEO_H7A3ZI_int8",
        _per_benchmark(1000 / 68.083, 1000 / 22.850, 1000 / 21.811, 1000 / 735.615),
        {},
    ),
)


@dataclass(frozen=True)
class Coefficients:
    """A target's fitted cycles per MAC of each kind, its blended figure and its mean power.

    Attributes:
        conv: cycles per convolution MAC.
        depthwise: cycles per depthwise MAC.
        dense: cycles per dense MAC.
        blended: cycles per MAC of one figure fitted to the total MACs alone (for a bare MAC count).
        power_mw: mean published energy / latency (µJ per ms), None when no energy was published.
    """

    conv: float
    depthwise: float
    dense: float
    blended: float
    power_mw: float | None

    def cycles(self, counts: MacCounts) -> float:
        """Estimated cycles of one inference of a model with ``counts``."""
        return self.conv * counts.conv + self.depthwise * counts.depthwise + self.dense * counts.dense


def _kinds(counts: MacCounts) -> np.ndarray:
    return np.array([counts.conv, counts.depthwise, counts.dense], dtype=float)


def _cycles(system: PublishedSystem, benchmark: str) -> float:
    return system.latency_ms[benchmark] * system.clock_hz / 1000.0


def _fit_runtime(points: list[tuple[int, np.ndarray, float]], boards: int) -> tuple[np.ndarray, np.ndarray]:
    """Scales (one per board) and kind ratios (conv = 1) of one runtime minimising squared relative error.

    Args:
        points: (board index, MACs per kind, published cycles) of each point used.
        boards: how many boards the runtime has.
    """
    ratios = np.ones(3)
    scales = np.ones(boards)
    for _ in range(2000):
        previous = np.concatenate([scales, ratios])
        for board in range(boards):
            work = np.array([kinds @ ratios / cycles for index, kinds, cycles in points if index == board])
            scales[board] = work.sum() / (work @ work)  # least squares of scale × work ≈ 1
        rows = np.array([scales[index] * kinds[1:] / cycles for index, kinds, cycles in points])
        rest = np.array([1.0 - scales[index] * kinds[0] / cycles for index, kinds, cycles in points])
        # A weak prior that a kind costs what a convolution MAC costs: it decides only a ratio the remaining
        # points leave open (the dense ratio once the autoencoder is dropped: the others have < 800 dense MACs).
        ridge = RATIO_PRIOR_WEIGHT
        solved = np.linalg.solve(rows.T @ rows + ridge * np.eye(2), rows.T @ rest + ridge)
        ratios = np.concatenate([[1.0], np.maximum(solved, 1e-3)])
        if np.allclose(previous, np.concatenate([scales, ratios]), rtol=1e-12, atol=0):
            break
    return scales, ratios


def fit(
    systems: Iterable[PublishedSystem] = PUBLISHED,
    reference_macs: Mapping[str, MacCounts] = REFERENCE_MACS,
    leave_out: tuple[str, str] | None = None,
) -> dict[str, Coefficients]:
    """Fit every system's per-kind cycles per MAC (see the module docstring).

    Args:
        systems: the published systems.
        reference_macs: each benchmark's per-kind MACs.
        leave_out: a (target, benchmark) point to leave out of the fit, or None.

    Returns:
        The coefficients of each system's target.
    """
    systems = list(systems)
    coefficients: dict[str, Coefficients] = {}
    for runtime in dict.fromkeys(system.runtime for system in systems):
        members = [system for system in systems if system.runtime == runtime]
        points = [
            (index, _kinds(reference_macs[benchmark]), _cycles(system, benchmark))
            for index, system in enumerate(members)
            for benchmark in BENCHMARKS
            if (system.target, benchmark) != leave_out
        ]
        scales, ratios = _fit_runtime(points, len(members))
        for index, system in enumerate(members):
            used = [benchmark for benchmark in BENCHMARKS if (system.target, benchmark) != leave_out]
            totals = np.array([reference_macs[benchmark].total / _cycles(system, benchmark) for benchmark in used])
            power = [system.energy_uj[benchmark] / system.latency_ms[benchmark] for benchmark in system.energy_uj]
            conv, depthwise, dense = scales[index] * ratios
            coefficients[system.target] = Coefficients(
                float(conv),
                float(depthwise),
                float(dense),
                float(totals.sum() / (totals @ totals)),
                float(np.mean(power)) if power else None,
            )
    return coefficients


def estimate_ms(coefficients: Coefficients, counts: MacCounts, clock_hz: float) -> float:
    """Estimated latency in ms of a model with ``counts`` under ``coefficients`` at ``clock_hz``."""
    return coefficients.cycles(counts) / clock_hz * 1000.0


@dataclass(frozen=True)
class CalibrationRow:
    """One published figure beside its estimate.

    Attributes:
        system: the published system.
        benchmark: ``kws``, ``vww``, ``ic`` or ``ad``.
        published_ms: the published median latency.
        estimated_ms: the estimate of the fit on all points.
        loo_ms: the estimate of the fit without this point (leave-one-out).
        published_uj: the published energy per inference, None when not measured.
        estimated_uj: the estimated energy, None without a published power.
    """

    system: PublishedSystem
    benchmark: str
    published_ms: float
    estimated_ms: float
    loo_ms: float
    published_uj: float | None
    estimated_uj: float | None

    @property
    def error(self) -> float:
        """Relative error of the estimate (+0.1 is 10% slower than published)."""
        return self.estimated_ms / self.published_ms - 1.0

    @property
    def loo_error(self) -> float:
        """Relative error of the leave-one-out estimate."""
        return self.loo_ms / self.published_ms - 1.0


def leave_one_out(
    systems: Iterable[PublishedSystem] = PUBLISHED, reference_macs: Mapping[str, MacCounts] = REFERENCE_MACS
) -> list[CalibrationRow]:
    """Every published figure with the full fit's estimate and the leave-one-out estimate (refitted)."""
    systems = list(systems)
    full = fit(systems, reference_macs)
    rows = []
    for system in systems:
        for benchmark in BENCHMARKS:
            counts = reference_macs[benchmark]
            held_out = fit(systems, reference_macs, leave_out=(system.target, benchmark))[system.target]
            estimated = estimate_ms(full[system.target], counts, system.clock_hz)
            power = full[system.target].power_mw
            rows.append(
                CalibrationRow(
                    system,
                    benchmark,
                    system.latency_ms[benchmark],
                    estimated,
                    estimate_ms(held_out, counts, system.clock_hz),
                    system.energy_uj.get(benchmark),
                    None if power is None else power * estimated,
                )
            )
    return rows
