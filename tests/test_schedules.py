"""Each learning-rate schedule equals its formula at epochs 0, 1 and 5."""

import math

import pytest

from recipes.config import TrainConfig
from recipes.schedules import learning_rate_at

ALPHA0 = 0.01


@pytest.mark.parametrize(
    ("schedule", "extra", "formula"),
    [
        ("constant", {}, lambda e: ALPHA0),
        ("inverse_time", {"decay_rate": 0.5}, lambda e: ALPHA0 / (1 + 0.5 * e)),
        ("exponential", {}, lambda e: ALPHA0 * 0.95**e),
        ("exponential", {"exponential_rate": 0.8}, lambda e: ALPHA0 * 0.8**e),
        ("inverse_sqrt", {"inverse_sqrt_k": 2.0}, lambda e: 2.0 * ALPHA0 / math.sqrt(e + 1)),
        ("step", {"step_epochs": 2, "step_factor": 0.1}, lambda e: ALPHA0 * 0.1 ** (e // 2)),
    ],
)
def test_schedule_matches_formula(schedule, extra, formula):
    config = TrainConfig(learning_rate=ALPHA0, schedule=schedule, **extra)
    for epoch in (0, 1, 5):
        assert learning_rate_at(config, epoch) == pytest.approx(formula(epoch), rel=1e-12)


def test_hand_computed_values():
    assert learning_rate_at(
        TrainConfig(learning_rate=0.2, schedule="inverse_time", decay_rate=1.0), 1
    ) == pytest.approx(0.1)
    assert learning_rate_at(TrainConfig(learning_rate=1.0, schedule="exponential"), 5) == pytest.approx(0.7737809375)
    assert learning_rate_at(TrainConfig(learning_rate=1.0, schedule="inverse_sqrt"), 3) == pytest.approx(0.5)
    assert learning_rate_at(TrainConfig(learning_rate=1.0, schedule="step", step_epochs=2, step_factor=0.5), 5) == 0.25
