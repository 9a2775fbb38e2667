"""Bias and variance diagnosis: the seed's rules, judged relative to the optimal error."""

from __future__ import annotations

import pytest

from edge.device.errors import UserError
from recipes.diagnosis import (
    BIAS_REMEDIES,
    FINE_REMEDIES,
    VARIANCE_REMEDIES,
    Diagnosis,
    diagnose,
    diagnose_metrics,
)


@pytest.mark.parametrize(
    ("train_error", "dev_error", "bayes_error", "verdict", "avoidable_bias", "variance"),
    [
        (0.01, 0.11, 0.0, "high variance", 0.01, 0.10),
        (0.15, 0.16, 0.0, "high bias", 0.15, 0.01),
        (0.15, 0.30, 0.0, "high bias and high variance", 0.15, 0.15),
        (0.01, 0.02, 0.0, "fine", 0.01, 0.01),
        # Same errors as "high bias" above, but humans get 14% wrong too: the bias is not avoidable.
        (0.15, 0.16, 0.14, "fine", 0.01, 0.01),
        # ... and with that optimal error, 30% dev error is a variance problem only.
        (0.15, 0.30, 0.14, "high variance", 0.01, 0.15),
    ],
)
def test_verdicts(train_error, dev_error, bayes_error, verdict, avoidable_bias, variance):
    diagnosis = diagnose(train_error, dev_error, bayes_error=bayes_error)
    assert diagnosis.verdict == verdict
    assert diagnosis.avoidable_bias == pytest.approx(avoidable_bias, abs=1e-12)
    assert diagnosis.variance == pytest.approx(variance, abs=1e-12)
    assert (diagnosis.train_error, diagnosis.dev_error, diagnosis.bayes_error) == (
        train_error,
        dev_error,
        bayes_error,
    )
    assert diagnosis.tolerance == 0.02


def test_remedies_follow_the_verdict():
    assert diagnose(0.01, 0.11).remedies == list(VARIANCE_REMEDIES)
    assert diagnose(0.15, 0.16).remedies == list(BIAS_REMEDIES)
    assert diagnose(0.15, 0.30).remedies == list(BIAS_REMEDIES + VARIANCE_REMEDIES)
    assert diagnose(0.01, 0.02).remedies == list(FINE_REMEDIES)
    assert any("dropout" in remedy for remedy in VARIANCE_REMEDIES)
    assert any("bigger network" in remedy for remedy in BIAS_REMEDIES)


def test_tolerance_is_the_threshold():
    # A 5-point gap is high at the default 2% tolerance but not at 10%.
    assert diagnose(0.05, 0.10).verdict == "high bias and high variance"
    assert diagnose(0.05, 0.10, tolerance=0.10).verdict == "fine"
    # Exactly at the tolerance is not "high" (strictly greater is).
    assert diagnose(0.25, 0.5, tolerance=0.25).verdict == "fine"


def test_optimal_error_above_train_error_is_allowed():
    diagnosis = diagnose(0.05, 0.06, bayes_error=0.10)
    assert diagnosis.avoidable_bias == pytest.approx(-0.05)
    assert diagnosis.verdict == "fine"
    assert "probably too high" in diagnosis.to_markdown()


@pytest.mark.parametrize(
    "arguments",
    [
        {"train_error": -0.01, "dev_error": 0.1},
        {"train_error": 0.1, "dev_error": 1.5},
        {"train_error": 0.1, "dev_error": 0.2, "bayes_error": 2.0},
        {"train_error": float("nan"), "dev_error": 0.2},
        {"train_error": "0.1", "dev_error": 0.2},
        {"train_error": 0.1, "dev_error": 0.2, "tolerance": 0.0},
        {"train_error": 0.1, "dev_error": 0.2, "tolerance": 1.0},
        {"train_error": 0.1, "dev_error": 0.2, "tolerance": -0.02},
    ],
)
def test_bad_values_are_user_errors(arguments):
    with pytest.raises(UserError):
        diagnose(**arguments)


def test_diagnose_metrics_uses_one_minus_accuracy():
    metrics = {
        "train": {"loss": 0.02, "accuracy": 0.995},
        "dev": {"loss": 0.4, "accuracy": 0.919},
        "test": {"loss": 0.41, "accuracy": 0.92},
        "split": {"train": 1078, "dev": 359, "test": 360},
    }
    diagnosis = diagnose_metrics(metrics)
    assert diagnosis.train_error == pytest.approx(0.005, abs=1e-12)
    assert diagnosis.dev_error == pytest.approx(0.081, abs=1e-12)
    assert diagnosis.variance == pytest.approx(0.076, abs=1e-12)
    assert diagnosis.verdict == "high variance"
    assert diagnosis.summary_line() == "high variance: dev error 8.1% vs train 0.5% (optimal ≈ 0.0%)"
    # The optimal error and tolerance pass through.
    lenient = diagnose_metrics(metrics, bayes_error=0.0, tolerance=0.1)
    assert lenient.verdict == "fine" and lenient.tolerance == 0.1


@pytest.mark.parametrize(
    ("metrics", "missing"),
    [
        ({"train": {"accuracy": 0.9}}, "dev"),
        ({"train": {"accuracy": 0.9}, "dev": {"loss": 0.3}}, "dev"),
        ({"dev": {"accuracy": 0.9}}, "train"),
        ({"train": None, "dev": {"accuracy": 0.9}}, "train"),
    ],
)
def test_diagnose_metrics_missing_accuracy_is_a_user_error(metrics, missing):
    with pytest.raises(UserError, match=f"metrics.json in this run has no {missing} accuracy"):
        diagnose_metrics(metrics)


def test_diagnose_metrics_rejects_accuracy_out_of_range_and_non_dicts():
    with pytest.raises(UserError, match="train accuracy 1.2"):
        diagnose_metrics({"train": {"accuracy": 1.2}, "dev": {"accuracy": 0.9}})
    with pytest.raises(UserError, match="must hold an object"):
        diagnose_metrics([0.9, 0.8])


def test_summary_lines():
    assert diagnose(0.15, 0.16).summary_line() == "high bias: train error 15.0% vs optimal ≈ 0.0% (dev 16.0%)"
    assert (
        diagnose(0.15, 0.30, bayes_error=0.01).summary_line()
        == "high bias and high variance: train error 15.0% vs optimal ≈ 1.0%, dev error 30.0%"
    )
    assert diagnose(0.01, 0.02).summary_line() == "fine: dev error 2.0% vs train 1.0% (optimal ≈ 0.0%)"


def test_markdown_report():
    diagnosis = diagnose(0.01, 0.11, bayes_error=0.005)
    assert isinstance(diagnosis, Diagnosis)
    markdown = diagnosis.to_markdown(title="Diagnosis of digits-3")
    assert markdown.startswith("# Diagnosis of digits-3\n")
    assert markdown.endswith("\n")
    assert "**high variance**" in markdown
    assert "| train | 1.00% |" in markdown
    assert "| dev | 11.00% |" in markdown
    assert "| optimal (Bayes / human-level estimate) | 0.50% |" in markdown
    assert "avoidable bias (train − optimal): +0.50%" in markdown
    assert "variance (dev − train): +10.00%" in markdown
    assert "- regularization (L2, dropout)" in markdown
    assert "- more training data" in markdown
    assert "relative to the optimal error estimate" in markdown and "tolerance of 2.00%" in markdown
    assert "probably too high" not in markdown


def test_a_regression_without_an_optimal_error_says_that_0_is_assumed():
    """An RMSE of noisy targets never reaches 0: when no optimal error is given the line says 0 is an assumption and
    how to give one; a given one, and error rates, read as before."""
    measure = "rmse (target units)"
    line = diagnose(50.0, 55.0, measure=measure).summary_line()
    assert "optimal ≈ 0, assumed (give --bayes-error, e.g. the targets' noise)" in line
    assert "assumed" in diagnose(50.0, 55.0, measure=measure).to_markdown()
    assert "assumed" not in diagnose(50.0, 55.0, bayes_error=45.0, measure=measure).summary_line()
    assert "assumed" not in diagnose(0.15, 0.16).summary_line()
