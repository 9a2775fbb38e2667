"""`tuning.sklearn.RecipeClassifier` and `RecipeRegressor`: scikit-learn's own estimator checks and its model-selection
tools."""

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.datasets import load_digits, make_friedman1
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from tuning.sklearn import RecipeClassifier, RecipeRegressor

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

# Small and quick: scikit-learn's checks fit it on a few dozen rows many times. Every check holds
# for it (none needs expected_failed_checks): it is deterministic for a given random_state.
QUICK = {"hidden_units": (16,), "epochs": 5, "learning_rate": 0.03, "batch_size": 64}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x[:600], y[:600]


@parametrize_with_checks([RecipeClassifier(**QUICK), RecipeRegressor(**QUICK)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_parameters_stay_unchanged_and_fit_learns_attributes(digits):
    x, y = digits
    units = [32]
    estimator = RecipeClassifier(hidden_units=units, epochs=10, learning_rate=0.01)
    params = estimator.get_params()
    assert estimator.fit(x, y) is estimator
    assert estimator.hidden_units is units and estimator.get_params() == params
    assert list(estimator.classes_) == list(range(10)) and estimator.n_features_in_ == 64
    probabilities = estimator.predict_proba(x[:50])
    assert probabilities.shape == (50, 10) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert estimator.score(x, y) > 0.9
    assert len(estimator.history_["loss"]) == 10
    assert clone(estimator).get_params() == params


def test_cnn_with_string_labels_and_early_stopping(digits):
    x, y = digits
    names = np.asarray(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    estimator = RecipeClassifier(
        recipe="cnn",
        input_shape=(8, 8, 1),
        config={"conv_filters": [8]},
        hidden_units=(16,),
        epochs=8,
        learning_rate=0.01,
        early_stopping=True,
        validation_fraction=0.2,
    ).fit(x, names)
    assert set(estimator.classes_) == set(names)
    assert set(estimator.predict(x[:20])) <= set(names)
    assert "val_loss" in estimator.history_
    assert estimator.score(x, names) > 0.8


def test_bad_parameters_fail_in_fit_not_in_init(digits):
    x, y = digits
    estimator = RecipeClassifier(dropout=1.5)
    with pytest.raises(ValueError, match="dropout"):
        estimator.fit(x, y)
    with pytest.raises(ValueError, match="input_shape"):
        RecipeClassifier(input_shape=(4, 4, 1)).fit(x, y)
    with pytest.raises(ValueError, match="not a classifier"):
        RecipeClassifier(recipe="autoencoder").fit(x, y)


def test_grid_search_cv(digits):
    x, y = digits
    search = GridSearchCV(RecipeClassifier(**QUICK), {"learning_rate": [0.0003, 0.03]}, cv=2).fit(x, y)
    assert search.best_params_ == {"learning_rate": 0.03}  # 5 epochs at 3e-4 barely move
    assert search.best_score_ > 0.8
    assert search.best_estimator_.predict(x[:5]).shape == (5,)


def test_randomized_search_cv_with_a_log_uniform_learning_rate(digits):
    x, y = digits
    search = RandomizedSearchCV(
        RecipeClassifier(**QUICK), {"learning_rate": loguniform(1e-3, 1e-1)}, n_iter=2, cv=2, random_state=0
    ).fit(x, y)
    rates = search.cv_results_["param_learning_rate"]
    assert len(rates) == 2 and all(1e-3 <= rate <= 1e-1 for rate in rates)
    assert search.best_score_ > 0.7


def test_cross_val_score(digits):
    x, y = digits
    scores = cross_val_score(RecipeClassifier(**QUICK), x, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.7


def test_regressor_learns_friedman_in_target_units_with_one_or_several_outputs():
    x, y = make_friedman1(n_samples=800, noise=1.0, random_state=0)
    regressor = RecipeRegressor(hidden_units=(64, 32), epochs=40, learning_rate=0.01).fit(x[:600], y[:600])
    assert regressor.predict(x[:5]).shape == (5,)
    assert regressor.score(x[600:], y[600:]) > 0.8  # R², scikit-learn's RegressorMixin.score
    targets = np.column_stack([y, 1000 * y + 5e4])  # the second output in other units
    both = RecipeRegressor(hidden_units=(64, 32), epochs=30, learning_rate=0.01).fit(x[:600], targets[:600])
    predicted = both.predict(x[600:])
    assert predicted.shape == (200, 2)
    for column in (0, 1):  # each output in its own units: the same fit, scaled
        assert np.corrcoef(predicted[:, column], targets[600:, column])[0, 1] > 0.9
        assert abs(predicted[:, column].mean() - targets[600:, column].mean()) < 0.2 * targets[:, column].std()
    with pytest.raises(ValueError, match="not a regressor"):
        RecipeRegressor(recipe="resnet8").fit(x[:50], y[:50])
