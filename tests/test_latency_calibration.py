"""Latency calibration: per-kind MACs of the reference models, the fit on published MLPerf Tiny results, its
leave-one-out errors, and the calibrated estimate by hand."""

import pytest

from edge.targets import TARGETS, describe_estimate, estimate_energy_uj, estimate_latency_ms, target_named
from recipes.macs import MacCounts, count_macs, count_macs_by_kind
from tuning import latency_calibration as calibration

# The tolerance the calibrated targets are held to, and the points known to miss it under leave-one-out.
TOLERANCE = 0.30
LOO_MISSES = {("cortex-m4-120mhz", "ic"), ("cortex-m4-120mhz", "ad")}
# "Median throughput" (inf./sec.) of kws, vww, ic, ad in performance/results.txt of the boards that share a runtime
# with another published board: HALE 1.0.175 int8 (v1.2, closed/bosch/results/<board>_int8) and microTVM with
# CMSIS-NN (v1.0, closed/OctoML/results/microtvm_cmsis_nn/<board>).
SHARED_RUNTIME_THROUGHPUTS = {
    "cortex-m0plus-64mhz-hale": (2.107, 0.707, 0.657, 24.454),
    "cortex-m4-120mhz-hale": (16.623, 5.540, 5.539, 171.375),
    "cortex-m4-150mhz-hale": (18.466, 6.465, 6.165, 167.543),
    "cortex-m33-160mhz-hale": (25.918, 8.345, 8.296, 262.860),
    "cortex-m7-216mhz-hale": (52.746, 17.468, 15.986, 584.380),
    "cortex-m7-280mhz-hale": (68.083, 22.850, 21.811, 735.615),
    "cortex-m4-120mhz-microtvm-cmsis-nn": (10.019, 3.320, 2.567, 116.212),
    "cortex-m33-128mhz-microtvm-cmsis-nn": (13.143, 4.310, 3.163, 159.579),
}


def test_reference_macs_by_kind_match_the_built_models():
    from recipes.backend import import_keras
    from recipes.config import TrainConfig
    from recipes.models import build_model
    from recipes.reference_models import REFERENCE_SPECS

    import_keras(0)
    for benchmark, recipe in calibration.BENCHMARK_RECIPES.items():
        model = build_model(TrainConfig(recipe=recipe), REFERENCE_SPECS[recipe])
        counts = count_macs_by_kind(model)
        assert counts == calibration.REFERENCE_MACS[benchmark]
        assert counts.total == count_macs(model)


def test_hand_made_model_estimate_is_the_hand_formula():
    import keras

    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8*4*3*3*2 = 4,608
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 8*8*4*3*3 = 2,304
    x = keras.layers.MaxPooling2D()(x)  # an operator without MACs
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3)(x)  # 4*4*4*3 = 192
    counts = count_macs_by_kind(keras.Model(inputs, outputs))
    assert counts == MacCounts(conv=4608, depthwise=2304, dense=192, ops=5)
    target = TARGETS["cortex-m4-120mhz"]
    conv, depthwise, dense = target.cycles_per_kind
    by_hand = (conv * 4608 + depthwise * 2304 + dense * 192) / 120e6 * 1000
    assert estimate_latency_ms(counts, target) == pytest.approx(by_hand)
    assert estimate_energy_uj(counts, target) == pytest.approx(by_hand * target.power_mw)
    assert estimate_latency_ms(counts.total, target) == pytest.approx(7104 * target.cycles_per_mac / 120e6 * 1000)
    legacy = TARGETS["cortex-m7-480mhz"]  # uncalibrated: the total MACs x one figure
    assert estimate_latency_ms(counts, legacy) == pytest.approx(7104 / 480e6 * 1000)
    assert (
        estimate_energy_uj(counts, legacy) is None
        and estimate_energy_uj(counts, TARGETS["cortex-m0plus-64mhz-hale"]) is None
    )


def test_stored_targets_are_the_fit():
    fitted = calibration.fit()
    systems = {system.target: system for system in calibration.PUBLISHED}
    assert {name for name, target in TARGETS.items() if target.calibrated} == set(fitted)
    for name, coefficients in fitted.items():
        target = TARGETS[name]
        assert target.clock_hz == systems[name].clock_hz
        stored = (*target.cycles_per_kind, target.cycles_per_mac)
        computed = (coefficients.conv, coefficients.depthwise, coefficients.dense, coefficients.blended)
        assert stored == pytest.approx(computed, rel=2e-3)
        if coefficients.power_mw is None:
            assert target.power_mw is None
        else:
            assert target.power_mw == pytest.approx(coefficients.power_mw, rel=2e-3)
        assert target.runtime in describe_estimate(target)


def test_fit_and_leave_one_out_errors():
    rows = calibration.leave_one_out()
    assert len(rows) == 4 * len(calibration.PUBLISHED)
    misses = set()
    for row in rows:
        assert abs(row.error) <= 0.20, (row.system.target, row.benchmark, row.error)  # the fit on all points
        if abs(row.loo_error) > TOLERANCE:
            misses.add((row.system.target, row.benchmark))
        if row.published_uj is not None:
            assert row.estimated_uj == pytest.approx(row.published_uj, rel=TOLERANCE)
    assert misses == LOO_MISSES
    # Leaving a point out changes its estimate: the leave-one-out figures are refitted, not copied.
    assert all(row.loo_ms != pytest.approx(row.estimated_ms, rel=1e-6) for row in rows if row.benchmark == "kws")


def test_published_sources_are_recorded():
    for system in calibration.PUBLISHED:
        assert system.round in calibration.RESULTS_COMMITS
        assert system.system_path.endswith(".json") and system.results_path.startswith("closed/")
        assert set(system.latency_ms) == set(calibration.BENCHMARKS)
        assert f"{system.clock_hz / 1e6:g}mhz" in system.target
    assert target_named("cortex-m4-120mhz").runtime.startswith("TFLite Micro")


def test_runtimes_shared_by_several_boards():
    systems = {system.target: system for system in calibration.PUBLISHED}
    for target, throughputs in SHARED_RUNTIME_THROUGHPUTS.items():
        published = [1000 / throughput for throughput in throughputs]
        assert [systems[target].latency_ms[benchmark] for benchmark in calibration.BENCHMARKS] == pytest.approx(
            published
        )
        assert TARGETS[target].calibrated
        assert (TARGETS[target].power_mw is None) == (not systems[target].energy_uj)  # energy only where published
    boards = {}
    for system in calibration.PUBLISHED:
        boards.setdefault(system.runtime, []).append(system)
    assert len(boards["hale"]) == 6 and len(boards["microtvm-cmsis-nn"]) == 2
    # One engine version and one round per runtime's boards, and no board twice under one runtime (a re-run
    # would hand leave-one-out the dropped figure).
    for runtime, members in boards.items():
        assert len({system.board for system in members}) == len(members), runtime
        if runtime in ("hale", "microtvm-cmsis-nn"):
            assert len({(system.round, system.runtime_detail) for system in members}) == 1, runtime
    # Their boards share the runtime's ratios between kinds; only the scale differs.
    fitted = calibration.fit()
    for runtime in ("hale", "microtvm-cmsis-nn"):
        ratios = {
            (
                round(fitted[s.target].depthwise / fitted[s.target].conv, 9),
                round(fitted[s.target].dense / fitted[s.target].conv, 9),
            )
            for s in boards[runtime]
        }
        assert len(ratios) == 1, runtime
    rows = [row for row in calibration.leave_one_out() if row.system.target in SHARED_RUNTIME_THROUGHPUTS]
    assert len(rows) == 4 * len(SHARED_RUNTIME_THROUGHPUTS)
    assert all(abs(row.error) <= TOLERANCE and abs(row.loo_error) <= TOLERANCE for row in rows)
