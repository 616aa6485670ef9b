"""The published reference figures shipped in results/published/ (made by
scripts/make_published.py from the authors' score files). Nothing outside the repository is read.
"""
import csv
import functools
import json
import pathlib

DIR = pathlib.Path(__file__).resolve().parent.parent / 'results' / 'published'
BENCHMARKS = {'atari100k': {'curves': 'atari100k_curves.json', 'table': 'atari100k.csv'}}
# Which published method a preset is judged against (the 2023 paper's runs for `dreamerv3`).
METHODS = {'dreamerv3': 'dreamerv3_2023'}


def _check(benchmark):
  if benchmark not in BENCHMARKS:
    raise ValueError(f"Unknown benchmark '{benchmark}'. Valid: {', '.join(BENCHMARKS)}.")


@functools.lru_cache(maxsize=None)
def curves(benchmark):
  """Per-seed published curves: [{task, method, seed, xs, ys, unit, bin, source}]."""
  _check(benchmark)
  return json.loads((DIR / BENCHMARKS[benchmark]['curves']).read_text())


@functools.lru_cache(maxsize=None)
def table(benchmark):
  _check(benchmark)
  with open(DIR / BENCHMARKS[benchmark]['table']) as f:
    return list(csv.DictReader(f))


def tasks(benchmark):
  return sorted({c['task'] for c in curves(benchmark)})


def runs(benchmark, task, method):
  found = [c for c in curves(benchmark) if c['task'] == task and c['method'] == method]
  if not found:
    methods = sorted({c['method'] for c in curves(benchmark)})
    raise ValueError(f"No published {benchmark} runs for task '{task}' and method '{method}'. "
                     f"Tasks: {', '.join(tasks(benchmark))}; methods: {', '.join(methods)}.")
  return found


def baseline(benchmark, task, name):
  """Score of `random` or `human_gamer` for `task`."""
  for row in table(benchmark):
    if row['task'] == task and row['method'] == name:
      return float(row['score_mean'])
  raise ValueError(f"No '{name}' baseline for {benchmark} task '{task}'.")
