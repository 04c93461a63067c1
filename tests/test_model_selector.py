"""ModelSelector's choice (components/model_selector/executor.choose): the best blessed model, or for accuracy the
simplest blessed model within one standard error of the best. The figures are eval-split results of
bench/quality.py runs (attrition, mlc_churn, penguins)."""
import pytest

from tfx_tabular.components.model_selector.executor import choose
from tfx_tabular.pipeline.core.config import MODEL_KINDS

COMPLEXITY = {'linear': MODEL_KINDS['estimator_linear'].complexity,
              'trees': MODEL_KINDS['gradient_boosted_trees'].complexity, 'dnn': MODEL_KINDS['keras_dnn'].complexity}


def _candidates(n, **accuracy):
    return [(name, True, {'accuracy': value, 'auc': 0.8, 'example_count': n}) for name, value in accuracy.items()]


def test_the_kinds_rank_linear_then_trees_then_dnn_then_wide_and_deep():
    assert COMPLEXITY['linear'] < COMPLEXITY['trees'] < COMPLEXITY['dnn'] < MODEL_KINDS['keras_wide_deep'].complexity


def test_a_simpler_model_within_one_standard_error_of_the_best_is_pushed():
    # attrition: 237 eval rows, best 0.8734 +- 0.0216; the linear model, 0.0211 behind, was the best on new rows
    selected, rule = choose(_candidates(237, trees=0.8734, dnn=0.8692, linear=0.8523), 'accuracy', 'maximize',
                            COMPLEXITY)
    assert selected == 'linear'
    assert rule == 'accuracy (maximize); the simplest within one standard error (0.022) of the best, trees 0.8734'


def test_a_difference_beyond_one_standard_error_keeps_the_best():
    # mlc_churn: 750 eval rows, best 0.9423 +- 0.0085: the trees stay
    selected, _ = choose(_candidates(750, trees=0.9423, dnn=0.9114, linear=0.8579), 'accuracy', 'maximize',
                         COMPLEXITY)
    assert selected == 'trees'
    # the same accuracies on 40 rows (+- 0.037) are within noise of each other but the linear model's
    assert choose(_candidates(40, trees=0.9423, dnn=0.9114, linear=0.8579), 'accuracy', 'maximize',
                  COMPLEXITY)[0] == 'trees'
    assert choose(_candidates(40, dnn=0.9423, trees=0.9114, linear=0.8579), 'accuracy', 'maximize',
                  COMPLEXITY)[0] == 'trees'


def test_perfect_scores_tie_and_the_simplest_wins():
    # penguins: dnn and linear both 1.0 on 50 rows (a standard error of 0): the linear model
    assert choose(_candidates(50, trees=0.98, dnn=1.0, linear=1.0), 'accuracy', 'maximize', COMPLEXITY)[0] == 'linear'


def test_only_blessed_models_are_candidates():
    candidates = _candidates(237, trees=0.8734, dnn=0.8692, linear=0.8523)
    candidates[2] = ('linear', False, candidates[2][2])
    assert choose(candidates, 'accuracy', 'maximize', COMPLEXITY)[0] == 'trees'
    assert choose([(n, False, m) for n, _, m in candidates], 'accuracy', 'maximize', COMPLEXITY) == (
        '', 'accuracy (maximize)')


@pytest.mark.parametrize('metric, direction, complexity', [
    ('accuracy', 'maximize', None),    # prefer_simpler: false
    ('auc', 'maximize', COMPLEXITY),   # no standard error known for the metric: the best value alone
])
def test_without_the_rule_the_best_value_wins_and_ties_go_to_the_first_listed(metric, direction, complexity):
    candidates = [('dnn', True, {'accuracy': 0.87, 'auc': 0.83, 'example_count': 237}),
                  ('trees', True, {'accuracy': 0.87, 'auc': 0.83, 'example_count': 237}),
                  ('linear', True, {'accuracy': 0.86, 'auc': 0.82, 'example_count': 237})]
    assert choose(candidates, metric, direction, complexity) == ('dnn', f'{metric} ({direction})')
    candidates[1][2][metric] = 0.9
    assert choose(candidates, metric, direction, complexity)[0] == 'trees'
