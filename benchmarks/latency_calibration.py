"""Latency calibration: published MLPerf Tiny latencies beside the calibrated estimates.

Usage::

    python benchmarks/latency_calibration.py

For each calibrated target (core, clock, runtime) and reference model: the published median latency, the
estimate of the fit on all published points, its error, the leave-one-out estimate's error (that point
dropped and everything refitted), and the published and estimated energy per inference where published.
Then each target's fitted cycles per MAC by kind and its source. Imports no TensorFlow; runs in about a second.
"""

from __future__ import annotations

import common  # noqa: F401  (puts the project on the import path)


def main() -> None:
    from tuning.latency_calibration import RESULTS_COMMITS, TOLERANCE_NOTE, fit, leave_one_out

    rows = leave_one_out()
    print(
        f"{'target':<35} {'model':<5} {'published ms':>12} {'estimate ms':>11} {'error':>6} {'LOO error':>9} "
        f"{'published µJ':>12} {'estimate µJ':>11}"
    )
    for row in rows:
        published_uj = "-" if row.published_uj is None else f"{row.published_uj:,.0f}"
        estimated_uj = "-" if row.estimated_uj is None else f"{row.estimated_uj:,.0f}"
        print(
            f"{row.system.target:<35} {row.benchmark:<5} {row.published_ms:>12.2f} {row.estimated_ms:>11.2f} "
            f"{row.error:>+6.0%} {row.loo_error:>+9.0%} {published_uj:>12} {estimated_uj:>11}"
        )
    print()
    for target in dict.fromkeys(row.system.target for row in rows):
        worst = max(abs(row.loo_error) for row in rows if row.system.target == target)
        verdict = "meets" if worst <= 0.30 else "misses"
        print(f"{target:<35} worst leave-one-out error {worst:.0%}: {verdict} {TOLERANCE_NOTE}")
    print()
    fitted = fit()
    for row in rows[::4]:
        system, coefficients = row.system, fitted[row.system.target]
        power = "-" if coefficients.power_mw is None else f"{coefficients.power_mw:.1f} mW"
        print(
            f"{system.target:<35} conv {coefficients.conv:.3g}, depthwise {coefficients.depthwise:.3g}, "
            f"dense {coefficients.dense:.3g} cycles/MAC (blended {coefficients.blended:.3g}), {power}; "
            f"{system.runtime_detail} on {system.board}; {system.repository}@{RESULTS_COMMITS[system.round][:7]} "
            f"{system.results_path}"
        )


if __name__ == "__main__":
    main()
