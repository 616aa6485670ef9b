"""Judges runs against the published seeds at the same budget (frames for Atari, control steps
for DMC; both are agent steps x action repeat).

Reduction: each published seed by its file's rule at budget B (dreamer_tf/published.py); each of
our seeds, which log per-episode training returns, by the window rule: the mean return of the
episodes ending in (B - W, B], W = max(0.1 B, published bin width). At the published budgets
this is the reference `window(0.9B,B]`.

Verdict rule: a two-sided 95% prediction interval for the mean of our m seeds, assuming they
are drawn from the published seeds' distribution (n seeds, mean mu, sample std s):
    band = mu -/+ t(0.975, n - 1) * s * sqrt(1/n + 1/m)
MATCH if our mean over seeds lies in the band, else BELOW / ABOVE. Why: the published std is
the only spread we can trust (ours has 1-3 seeds), the band is the t-test of "our seeds come
from the published distribution" at alpha = 0.05, so a faithful reimplementation fails 5% of
the time whatever m is, and the band narrows as we add seeds (1/m). The old rule "inside the
published [min, max]" fails a faithful single seed 1/3 of the time with 5 published seeds, and
does not tighten with more of our seeds. Published sets with one seed have no spread: NO SPREAD.

    python -m dreamer_tf.verdict RUN_DIR [RUN_DIR ...] [--frames N] [--benchmark B] [--against M]
    python -m dreamer_tf.verdict --curve RUN_DIR ...   # also the verdict along the curve

Run dirs of the same task and method are pooled as seeds. Exit status 0 only if all MATCH.
`--curve` judges the seeds again at every published point of the reference curve up to the
budget (and at the budget), each point by the same rules; a run still going is judged up to its
last episode.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import yaml

from . import published

ALPHA = 0.05
# Student t quantile t(0.975, df) for df = 1..20 (df > 20 uses df = 20: slightly wider band).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)
SUITES = ('atari', 'dmc')


def window(frames, bin_width):
  return published.bounds('window', frames, bin_width)


def reduce_episodes(xs, ys, frames, bin_width):
  """Our per-episode returns -> (mean over the window, episodes in it)."""
  lo, hi = window(frames, bin_width)
  vals = [y for x, y in zip(xs, ys) if lo < x <= hi]
  return (float(np.mean(vals)) if vals else None), len(vals)


def band(values, m):
  """Prediction interval for the mean of m new seeds from the published `values`."""
  n = len(values)
  t = T975[min(n - 1, len(T975)) - 1]
  half = t * float(np.std(values, ddof=1)) * np.sqrt(1 / n + 1 / m)
  return float(np.mean(values)) - half, float(np.mean(values)) + half


def decide(ours, theirs):
  """(verdict, band) for our per-seed scores vs the published per-seed scores."""
  if not ours:
    return 'NO DATA', None
  if not theirs:
    return 'NO PUBLISHED DATA', None
  if len(theirs) < 2:
    return 'NO SPREAD', None
  lo, hi = band(theirs, len(ours))
  mean = float(np.mean(ours))
  return ('BELOW' if mean < lo else 'ABOVE' if mean > hi else 'MATCH'), [lo, hi]


def judge_seeds(benchmark, task, method, seeds, frames, against=None):
  """Judges our seeds [(xs, ys), ...] of one task at `frames` against the published method
  `against` (default: the one our `method` preset reproduces; a method without published seeds
  on `benchmark` and `task`, e.g. DreamerV1/V2 from states or DreamerPro outside its six tasks,
  gets `no_reference`); returns the result dict."""
  reference = against or published.METHODS.get(method, method)
  known = task in published.tasks(benchmark)  # an unknown task is an error (published.runs)
  if not against and (reference not in published.methods(benchmark) or (known and not any(
      c['task'] == task and c['method'] == reference for c in published.curves(benchmark)))):
    return no_reference(benchmark, task, reference, seeds, frames)
  runs = published.runs(benchmark, task, reference)
  width = runs[0]['bin'] if runs[0]['rule'] == 'window' else 0
  theirs = [v for v in (published.reduce_run(r, frames) for r in runs) if v is not None]
  reduced = [reduce_episodes(xs, ys, frames, runs[0]['bin']) for xs, ys in seeds]
  ours = [v for v, _ in reduced if v is not None]
  verdict, interval = decide(ours, theirs)
  mean = float(np.mean(ours)) if ours else None
  pub_mean = float(np.mean(theirs)) if theirs else None
  return {
      'benchmark': benchmark, 'task': task, 'method': runs[0]['method'], 'frames': int(frames),
      'unit': runs[0]['unit'], 'window': list(window(frames, runs[0]['bin'])),
      'verdict': verdict, 'ours': mean, 'ours_seeds': ours,
      'ours_std': float(np.std(ours, ddof=1)) if len(ours) > 1 else None,
      'our_episodes': sum(c for _, c in reduced), 'published': theirs,
      'published_mean': pub_mean,
      'published_std': float(np.std(theirs, ddof=1)) if len(theirs) > 1 else None,
      'band': interval, 'alpha': ALPHA,
      'ours_hns': published.normalize(benchmark, task, mean),
      'published_hns': published.normalize(benchmark, task, pub_mean),
      'source': runs[0]['source'].split('#')[0] + '#' + published.rule_text(runs[0]['rule'], frames, width),
  }


def judge(benchmark, task, method, xs, ys, frames, against=None):
  """One run (one seed) of ours; see judge_seeds."""
  return judge_seeds(benchmark, task, method, [(xs, ys)], frames, against)


def points(benchmark, task, reference, budget):
  """The x of the published `reference` curves of `task` in (0, budget], and the budget."""
  xs = {float(x) for r in published.runs(benchmark, task, reference) for x in r['xs']}
  return sorted({x for x in xs if 0 < x <= budget} | {float(budget)})


def judge_curve(benchmark, task, method, seeds, budget, against=None):
  """judge_seeds at every published point up to `budget` (points): the verdict along the
  curve, one result per point; [] for a method without published seeds (no_reference)."""
  final = judge_seeds(benchmark, task, method, seeds, budget, against)
  if final['verdict'] == 'NO_REFERENCE':
    return []
  return [judge_seeds(benchmark, task, method, seeds, x, against)
          for x in points(benchmark, task, final['method'], budget)[:-1]] + [final]


def curve_table(results):
  """Terminal table of judge_curve's results."""
  if not results:
    return '  (no published reference curve)'
  def num(v):
    return '-' if v is None else f'{v:.2f}'
  rows = [('frames' if results[0]['unit'] == 'frames' else 'env steps', 'window', 'ours',
           'seeds', 'episodes', 'published', 'band', 'verdict')]
  for r in results:
    rows.append((f"{r['frames']:,}", f"({r['window'][0]:,.0f}, {r['window'][1]:,.0f}]",
                 num(r['ours']), str(len(r['ours_seeds'])), str(r['our_episodes']),
                 _pm(r['published_mean'], r['published_std']) if r['published'] else '-',
                 f"[{r['band'][0]:.2f}, {r['band'][1]:.2f}]" if r['band'] else '-',
                 r['verdict']))
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  return '\n'.join('  ' + '  '.join(c.rjust(w) for c, w in zip(row, widths)) for row in rows)


def no_reference(benchmark, task, method, seeds, frames):
  """Result for a method without published seeds on `benchmark` (e.g. DreamerV1/V2 proprio):
  our window mean over the pooled episodes of `seeds`, verdict NO_REFERENCE, and where the
  method is published instead."""
  task_curves = [c for c in published.curves(benchmark) if c['task'] == task]
  width = task_curves[0]['bin'] if task_curves else 0
  xs = [x for run_xs, _ in seeds for x in run_xs]
  ys = [y for _, run_ys in seeds for y in run_ys]
  mean, count = reduce_episodes(xs, ys, frames, width)
  elsewhere = [b for b in published.BENCHMARKS if any(
      r['task'] == task and r['method'] == method for r in published.table(b))]
  return {
      'benchmark': benchmark, 'task': task, 'method': method, 'frames': int(frames),
      'unit': published.unit(benchmark), 'window': list(window(frames, width)),
      'verdict': 'NO_REFERENCE', 'ours': mean, 'ours_seeds': [] if mean is None else [mean],
      'ours_std': None, 'our_episodes': count, 'published': [], 'published_mean': None,
      'published_std': None, 'band': None, 'alpha': ALPHA, 'ours_hns': None,
      'published_hns': None,
      'source': f"no published {method} seeds of {task} on {benchmark}; published on: "
                f"{', '.join(elsewhere) or 'none'}",
  }


def _pm(mean, std):
  return f'{mean:.2f}' + ('' if std is None else f' ± {std:.2f}')


def line(result):
  r = result
  ours = 'n/a' if r['ours'] is None else (
      f"{_pm(r['ours'], r.get('ours_std'))} ({len(r.get('ours_seeds', [1]))} seeds, "
      f"{r['our_episodes']} episodes)")
  pub = r['published']
  pub_text = (f"{_pm(np.mean(pub), np.std(pub, ddof=1) if len(pub) > 1 else None)} "
              f"[{min(pub):.2f}, {max(pub):.2f}] n={len(pub)}") if pub else 'n/a'
  band_text = '' if not r.get('band') else f" band [{r['band'][0]:.2f}, {r['band'][1]:.2f}]"
  hns = '' if r['ours_hns'] is None else f" | HNS {r['ours_hns']:.3f}" + (
      '' if r['published_hns'] is None else f" vs {r['published_hns']:.3f}")
  return (f"VERDICT {r['verdict']}: {r['task']} at {r['frames']:,} {r.get('unit', 'frames')}, "
          f"window ({r['window'][0]:,.0f}, {r['window'][1]:,.0f}]: ours {ours} vs {r['method']} "
          f"{pub_text}{band_text}{hns} | source {r['source']}")


def load_run(logdir):
  """(task suite, task, method, seed, xs, ys, frames reached or None, env config of the suite)
  of a run directory."""
  logdir = pathlib.Path(logdir)
  scores = logdir / 'scores.json'
  if not scores.exists():
    raise FileNotFoundError(f'{logdir} has no scores.json: not a dreamer_tf run directory.')
  run = json.loads(scores.read_text())[0]
  if published.episode_kind(run['method']) == 'eval':  # judged on evaluation episodes
    scores = logdir / 'eval_scores.json'
    if not scores.exists():
      raise FileNotFoundError(
          f"{logdir} has no eval_scores.json: {run['method']}'s published curves are evaluation "
          'returns; run it with run.script=train_eval (its presets do).')
    run = json.loads(scores.read_text())[0]
  suite, _, task = run['task'].partition('_')
  if suite not in SUITES:
    raise ValueError(f"{logdir}: task '{run['task']}' has no published reference. Suites with "
                     f"one: {', '.join(SUITES)}.")
  config = yaml.safe_load((logdir / 'config.yaml').read_text())
  summary = logdir / 'summary.json'
  frames = (json.loads(summary.read_text())['step'] * config['env'][suite]['repeat']
            if summary.exists() else None)
  return (suite, task, run['method'], run['seed'], run['xs'], run['ys'], frames,
          config['env'][suite])


def benchmark_of(suite, frames, benchmark=None, env=None):
  """The benchmark to judge at: given, else the run's protocol: Atari 100k without sticky
  actions, Atari 200M with them (by budget when the config does not say); DMC proprio or
  vision by `env.dmc.proprio`."""
  env = env or {}
  if benchmark:
    published.check(benchmark)
    return benchmark
  if suite == 'atari':
    if 'sticky' in env:
      return 'atari200m' if env['sticky'] else 'atari100k'
    return 'atari100k' if frames <= 1.01 * 400000 else 'atari200m'
  return 'dmc_proprio' if env.get('proprio') else 'dmc_vision'


def judge_runs(logdirs, frames=None, benchmark=None, against=None, curve=False):
  """Pools run dirs by (benchmark, task, method) as seeds; one result per group, with
  `curve` (judge_curve) if asked."""
  groups = {}
  for logdir in logdirs:
    suite, task, method, seed, xs, ys, reached, env = load_run(logdir)
    if curve and frames is None and reached is None and xs:
      reached = max(xs)  # a run still going: up to its last episode
    if frames is None and reached is None:
      raise FileNotFoundError(f'{logdir} has no summary.json (the run has not finished); '
                              'pass --frames to judge it at a budget.')
    bench = benchmark_of(suite, frames or reached, benchmark, env)
    groups.setdefault((bench, task, method), []).append((logdir, xs, ys, frames or reached))
  results = []
  for (bench, task, method), members in groups.items():
    budgets = {m[3] for m in members}
    if len(budgets) > 1:
      raise ValueError(f"Seeds of {task}/{method} reached different budgets "
                       f"({', '.join(f'{m[0]}: {m[3]:,}' for m in members)}); pass --frames.")
    budget = budgets.pop()
    seeds = [(m[1], m[2]) for m in members]
    results.append(judge_seeds(bench, task, method, seeds, budget, against))
    if curve:
      results[-1]['curve'] = judge_curve(bench, task, method, seeds, budget, against)
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('logdirs', nargs='+')
  parser.add_argument('--frames', type=int, default=None,
                      help='budget (env steps) to judge at (default: what the runs reached)')
  parser.add_argument('--benchmark', default=None, choices=list(published.BENCHMARKS),
                      help='default: atari100k/atari200m by budget for Atari, dmc_vision for DMC')
  parser.add_argument('--against', default=None,
                      help='published method to judge against (default: dreamerv3 -> '
                      'dreamerv3_2023, the 2023 paper runs; e.g. dreamerv3 for the 2024 set)')
  parser.add_argument('--curve', action='store_true',
                      help='also the verdict at every published point up to the budget')
  args = parser.parse_args(argv)
  try:
    results = judge_runs(args.logdirs, args.frames, args.benchmark, args.against, args.curve)
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  for result in results:
    if args.curve:
      print(f"Along the curve: {result['task']}, ours vs {result['method']} on "
            f"{result['benchmark']}:\n{curve_table(result['curve'])}")
    print(line(result))
  hns = [r['ours_hns'] for r in results if r['ours_hns'] is not None]
  if len(hns) > 1:
    print(f'Human-normalised over the {len(hns)} judged games: mean {np.mean(hns):.3f}, '
          f'median {np.median(hns):.3f}')
  return 0 if all(r['verdict'] == 'MATCH' for r in results) else 1


if __name__ == '__main__':
  sys.exit(main())
