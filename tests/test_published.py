"""The shipped published tables (results/published/) against the reduction rules and the
reference's own summary (shared/reference/summary.csv, present in CI, absent for users)."""
import csv
import pathlib

import numpy as np
import pytest

from dreamer_tf import published

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'reference' / 'summary.csv'


def shipped(benchmark, task, method, budget):
  return next(r for r in published.rows(benchmark, task, method) if r['env_steps'] == budget)


def test_v1table_reproduces_the_paper_values():
  # danijar/dreamerv3#177 quotes the 2023 paper: Alien 959, Amidar 139, Assault 706.
  for task, value in (('alien', 959.4), ('amidar', 139.1), ('assault', 705.6)):
    assert round(shipped('atari100k', task, 'dreamerv3_2023_v1table', 400000)['score_mean'], 1) == value
    vals = [published.reduce_run(r, 400000, 'v1table')
            for r in published.runs('atari100k', task, 'dreamerv3_2023')]
    assert round(np.mean(vals), 1) == value


@pytest.mark.parametrize('benchmark', list(published.BENCHMARKS))
def test_curves_reduce_to_the_table(benchmark):
  """Every shipped curve set, reduced by its rule at every budget, gives its table row."""
  groups = {}
  for run in published.curves(benchmark):
    if run['method'] not in published.BASELINES:
      groups.setdefault((run['task'], run['method']), []).append(run)
  checked = 0
  for (task, method), runs in groups.items():
    for budget in published.BENCHMARKS[benchmark][1]:
      values = [v for v in (published.reduce_run(r, budget) for r in runs) if v is not None]
      if not values:
        continue
      mean, std, n, lo, hi = published.stats(values)
      row = shipped(benchmark, task, method, budget)
      assert n == row['n_seeds'] and row['source'].endswith(
          published.rule_text(runs[0]['rule'], budget, 0))
      np.testing.assert_allclose([mean, lo, hi], [row['score_mean'], row['score_min'],
                                                  row['score_max']], rtol=1e-5, atol=1e-4)
      checked += 1
  assert checked >= {'atari100k': 150, 'atari200m': 150, 'dmc_vision': 100, 'dmc_proprio': 36}[benchmark]


def test_reducer_rules():
  xs, ys = [100, 370, 380, 400, 420], [1.0, 2.0, 3.0, None, 9.0]
  assert published.reduce_seed(xs, ys, 400, 'window') == 2.5           # (360, 400], null skipped
  assert published.reduce_seed(xs, ys, 400, 'last') == 3.0             # last finite x <= 404
  assert published.reduce_seed(xs, ys, 1000, 'last') is None          # 420 < 900: too short
  assert published.reduce_seed([10, 20], [1.0, 4.0], 20, 'window', 10, ns=[1, 3]) == 4.0
  assert published.rule_text('last', 200000000) == 'last_point_in[180000000,202000000]'
  with pytest.raises(ValueError, match="rule 'median'.*window, last, v1table"):
    published.reduce_seed(xs, ys, 400, 'median')


def test_human_normalised_aggregates():
  for benchmark, method, n in (('atari100k', 'dreamerv3', 26), ('atari200m', 'dreamerv2', 55)):
    budget = max(published.BENCHMARKS[benchmark][1])
    scores = {g: shipped(benchmark, g, method, budget)['score_mean']
              for g in published.game_set(benchmark)}
    assert len(scores) == n
    mean, median = published.aggregate(benchmark, scores)
    assert mean == pytest.approx(shipped(benchmark, 'human_normalized_mean', method, budget)['score_mean'], rel=1e-5)
    assert median == pytest.approx(shipped(benchmark, 'human_normalized_median', method, budget)['score_mean'], rel=1e-5)
  with pytest.raises(ValueError, match='missing: alien'):
    published.aggregate('atari100k', {'pong': 1.0})


def test_unknown_names_list_valid_choices():
  with pytest.raises(ValueError, match="benchmark 'atari'.*atari100k, atari200m"):
    published.table('atari')
  with pytest.raises(ValueError, match="task 'pongg'.*pong.*methods:.*dreamerv3_2023"):
    published.runs('atari100k', 'pongg', 'dreamerv3_2023')


@pytest.mark.skipif(not REFERENCE.exists(), reason='shared/reference is only present in CI')
def test_tables_agree_with_reference_summary():
  with open(REFERENCE) as f:
    reference = [r for r in csv.DictReader(f) if r['benchmark'] in published.BENCHMARKS]
  for benchmark in published.BENCHMARKS:
    ours = {(r['task'], r['method'], r['env_steps']): r for r in published.table(benchmark)}
    theirs = [r for r in reference if r['benchmark'] == benchmark]
    assert len(ours) == len(theirs)
    for ref in theirs:
      row = ours[ref['task'], ref['method'], float(ref['env_steps']) if ref['env_steps'] else None]
      assert row['score_mean'] == pytest.approx(float(ref['score_mean']), rel=1e-5, abs=1e-9)
      if ref['score_std_or_ci']:
        assert row['score_std'] == pytest.approx(float(ref['score_std_or_ci']), rel=1e-5, abs=1e-9)
        assert row['n_seeds'] == int(ref['n_seeds'])
      if '#' in ref['source'] and not ref['task'].startswith('human_normalized'):
        assert row['source'] == ref['source']
