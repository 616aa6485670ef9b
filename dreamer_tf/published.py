"""The published reference figures shipped in results/published/ (made by
scripts/make_published.py from the authors' score files) and the reduction rules that turn a
curve into one score. Nothing outside the repository is read.

Files per benchmark: `<benchmark>.csv` (task, method, env_steps, unit, score_mean, score_std,
n_seeds, score_min, score_max, source) and `<benchmark>_curves.json.gz`, a list of per-seed
curves {task, method, seed, xs, ys, unit, bin, rule, source} plus `ns` (episodes per bin) where
per-episode returns were binned. Units: Atari xs are emulator frames (agent steps x 4), DMC xs
are control steps (agent steps x 2), as the authors' loggers count them.

Rules (shared/reference README, written after `#` in every `source`), for a budget B and a
curve of bin width w (0 for per-episode points):
  window(B-W,B]   per-episode / binned training returns: mean of the points (weighted by `ns`)
                  in the last W = max(0.1 B, w) of the budget; bins (x-w, x] overlapping it.
  last_point_in[0.9B,1.01B]  evaluation / binned curves: the last finite point with
                  x <= 1.01 B, dropped if before 0.9 B.
  v1table(B-30000,B-10000]  2023 DreamerV3 Atari 100k paper table: bins labelled B-20k, B-10k.
At the published budgets w <= 0.1 B, so W = 0.1 B exactly as in the reference; the widening to
one bin only matters when a short run is judged against coarse Atari 100k bins.
"""
import csv
import functools
import gzip
import json
import pathlib

import numpy as np

DIR = pathlib.Path(__file__).resolve().parent.parent / 'results' / 'published'
BENCHMARKS = {  # unit of env_steps / xs, the budgets of the tables
    'atari100k': ('frames', (100000, 200000, 400000)),
    'atari200m': ('frames', (200000000,)),
    'dmc_vision': ('env_steps', (500000, 1000000)),
    'dmc_proprio': ('env_steps', (500000,)),
}
RULES = ('window', 'last', 'v1table')
# Which published method a dreamer_tf preset is judged against (the 2023 paper's runs for
# `dreamerv3`, see shared/reference README: never mix the 2023 and 2024 result sets).
METHODS = {'dreamerv3': 'dreamerv3_2023', 'dreamerv3_2024': 'dreamerv3'}
# The kind of episode a method's published curves hold: DreamerV1's `test/return`
# (dreamer@56d4d44 dreamer.py, `training=False`) and DreamerV2's `eval_return` (dreamerv2@07d906e
# train.py, policy mode 'eval') are evaluation episodes, the DreamerV3 score files training
# episodes. Verdicts judge our episodes of the same kind. DreamerPro's points average 10
# evaluation episodes (dreamer-pro@809b417 README, Outputs).
EPISODES = {'dreamerv1': 'eval', 'dreamerv2': 'eval', 'dreamerpro': 'eval'}
ATARI100K_GAMES = (
    'alien amidar assault asterix bank_heist battle_zone boxing breakout chopper_command '
    'crazy_climber demon_attack freeway frostbite gopher hero jamesbond kangaroo krull '
    'kung_fu_master ms_pacman pong private_eye qbert road_runner seaquest up_n_down').split()
BASELINES = ('random', 'human_gamer')
AGGREGATES = ('human_normalized_mean', 'human_normalized_median')


def episode_kind(method):
  """'eval' or 'train': the episodes a method's published curves are made of (EPISODES)."""
  return EPISODES.get(method, 'train')


def check(benchmark):
  if benchmark not in BENCHMARKS:
    raise ValueError(f"Unknown benchmark '{benchmark}'. Valid: {', '.join(BENCHMARKS)}.")


def bounds(rule, budget, width=0):
  """(lo, hi) of `rule` at `budget`; see the module docstring."""
  if rule not in RULES:
    raise ValueError(f"Unknown reduction rule '{rule}'. Valid: {', '.join(RULES)}.")
  if rule == 'v1table':
    return budget - 30000, budget - 10000
  if rule == 'last':
    return 0.9 * budget, 1.01 * budget
  return max(0.0, budget - max(0.1 * budget, width)), budget


def rule_text(rule, budget, width=0):
  lo, hi = bounds(rule, budget, width)
  if rule == 'last':
    return f'last_point_in[{lo:.0f},{hi:.0f}]'
  return f'{rule}({lo:.0f},{hi:.0f}]'


def reduce_seed(xs, ys, budget, rule, width=0, ns=None):
  """One seed's score at `budget` under `rule`, or None if the seed has no data there."""
  xs = np.asarray(xs, float)
  ys = np.array([np.nan if y is None else y for y in ys], float)
  weights = np.ones_like(ys) if ns is None else np.asarray(ns, float)
  ok = np.isfinite(ys) & (weights > 0)
  lo, hi = bounds(rule, budget, width)
  if rule == 'last':
    idx = np.flatnonzero(ok & (xs <= hi))
    return float(ys[idx[-1]]) if idx.size and xs[idx[-1]] >= lo else None
  inside = (xs - width < hi) if width else (xs <= hi)  # bin (x - w, x] overlaps (lo, hi]
  sel = ok & (xs > lo) & inside
  return float(np.average(ys[sel], weights=weights[sel])) if sel.any() else None


def reduce_run(run, budget, rule=None):
  """reduce_seed for one published curve dict, by its own rule unless `rule` is given."""
  return reduce_seed(run['xs'], run['ys'], budget, rule or run['rule'], run['bin'], run.get('ns'))


def stats(values):
  """mean, std (ddof=1, None for one value), n, min, max of per-seed scores."""
  values = np.asarray(values, float)
  std = float(values.std(ddof=1)) if len(values) > 1 else None
  return float(values.mean()), std, len(values), float(values.min()), float(values.max())


def unit(benchmark):
  check(benchmark)
  return BENCHMARKS[benchmark][0]


@functools.lru_cache(maxsize=None)
def curves(benchmark):
  """Per-seed published curves of `benchmark` (see the module docstring)."""
  check(benchmark)
  with gzip.open(DIR / f'{benchmark}_curves.json.gz', 'rt') as f:
    return json.load(f)


@functools.lru_cache(maxsize=None)
def table(benchmark):
  """Rows of `<benchmark>.csv` with numbers parsed (None where empty)."""
  check(benchmark)
  with open(DIR / f'{benchmark}.csv') as f:
    rows = list(csv.DictReader(f))
  for row in rows:
    for key in ('env_steps', 'score_mean', 'score_std', 'n_seeds', 'score_min', 'score_max'):
      row[key] = float(row[key]) if row[key] != '' else None
  return rows


def tasks(benchmark):
  return sorted({r['task'] for r in table(benchmark)} - set(AGGREGATES))


def methods(benchmark):
  return sorted({r['method'] for r in table(benchmark)})


def _unknown(benchmark, task, method, valid):
  return ValueError(f"No published {benchmark} data for task '{task}' and method '{method}'. "
                    f"Tasks: {', '.join(tasks(benchmark))}; methods: {', '.join(sorted(valid))}.")


def runs(benchmark, task, method):
  """The published per-seed curves of one task and method."""
  found = [c for c in curves(benchmark) if c['task'] == task and c['method'] == method]
  if not found:
    raise _unknown(benchmark, task, method, {c['method'] for c in curves(benchmark)})
  return found


def rows(benchmark, task, method):
  """Table rows of one task and method, one per budget."""
  found = [r for r in table(benchmark) if r['task'] == task and r['method'] == method]
  if not found:
    raise _unknown(benchmark, task, method, methods(benchmark))
  return found


def baseline(benchmark, task, name):
  """Score of the `random` or `human_gamer` baseline for `task` (Atari only)."""
  for row in table(benchmark):
    if row['task'] == task and row['method'] == name:
      return row['score_mean']
  raise ValueError(f"No '{name}' baseline for {benchmark} task '{task}'. Baselines exist for "
                   f"the Atari benchmarks: {', '.join(BASELINES)}.")


def has_baselines(benchmark, task):
  return any(r['task'] == task and r['method'] == 'random' for r in table(benchmark))


def normalize(benchmark, task, score):
  """Human-normalised score (score - random) / (human_gamer - random); None without baselines."""
  if score is None or not has_baselines(benchmark, task):
    return None
  random = baseline(benchmark, task, 'random')
  return (score - random) / (baseline(benchmark, task, 'human_gamer') - random)


def game_set(benchmark):
  """Games of the aggregate: the 26 Atari 100k games, or DreamerV2's 55 Atari 200M games."""
  if benchmark == 'atari100k':
    return tuple(ATARI100K_GAMES)
  if benchmark == 'atari200m':
    return tuple(t for t in tasks(benchmark) if any(
        r['task'] == t and r['method'] == 'dreamerv2' for r in table(benchmark)))
  raise ValueError(f"No human-normalised aggregate for '{benchmark}'. Valid: atari100k, atari200m.")


def aggregate(benchmark, scores):
  """(mean, median) human-normalised score of {game: score} over the full game set."""
  games = game_set(benchmark)
  missing = sorted(set(games) - set(scores))
  if missing:
    raise ValueError(f"The {benchmark} aggregate needs all {len(games)} games; missing: "
                     f"{', '.join(missing)}.")
  hns = [normalize(benchmark, g, scores[g]) for g in games]
  return float(np.mean(hns)), float(np.median(hns))
