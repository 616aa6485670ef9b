"""Figures (PNG via matplotlib): a task's learning curves of our seeds beside the published mean
± std band and the other methods' means, ports side by side (dreamer_tf.compare), and
human-normalised aggregate curves over Atari games. x is env steps (Atari frames) throughout.
"""
import warnings

import numpy as np

from . import published

COLORS = {'dreamerv3_2023': 'tab:gray', 'dreamerv3': 'tab:orange', 'dreamerv2': 'tab:green',
          'dreamerv1': 'tab:purple', 'dreamerpro': 'tab:brown'}


def _figure():
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt, *plt.subplots(figsize=(7, 4.2), dpi=110)


def _save(plt, fig, ax, path, title, xlabel, ylabel, budget):
  if budget:
    ax.axvline(budget, color='k', ls=':', lw=1)
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  ax.grid(alpha=0.3)
  ax.legend(loc='best', fontsize=7)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def seed_mean(runs, limit=None):
  """(xs, mean, std) over seeds on the union of their xs (binned curves share a grid)."""
  grid = np.unique(np.concatenate([np.asarray(r['xs'], float) for r in runs]))
  if limit:
    grid = grid[grid <= limit]
  vals = np.full((len(runs), len(grid)), np.nan)
  for i, run in enumerate(runs):
    index = {float(x): y for x, y in zip(run['xs'], run['ys']) if y is not None}
    vals[i] = [index.get(x, np.nan) for x in grid]
  with warnings.catch_warnings():  # all-nan columns (no seed has a point there) give nan
    warnings.simplefilter('ignore', RuntimeWarning)
    return grid, np.nanmean(vals, 0), np.nanstd(vals, 0)


def smooth(xs, ys):
  """Our per-episode returns: running mean over a tenth of the episodes."""
  k = max(1, len(ys) // 10)
  return np.asarray(xs[k - 1:]), np.convolve(ys, np.ones(k) / k, mode='valid')


def _run(ax, xs, ys, color, label, lw=1.2):
  """One run: the running mean of its episodes, or, too few for that, its points joined and
  marked (a run of one episode would otherwise draw nothing)."""
  if len(xs) >= 5:
    ax.plot(*smooth(xs, ys), color=color, lw=lw, label=label)
  elif len(xs):
    ax.plot(xs, ys, color=color, lw=lw, marker='o', ms=5, label=label)


def _published_band(ax, runs, limit):
  xs, mean, std = seed_mean(runs, limit)
  ok = np.isfinite(mean)
  method = runs[0]['method']
  ax.plot(xs[ok], mean[ok], color=COLORS.get(method, 'tab:gray'),
          label=f'{method} (published, {len(runs)} seeds, mean ± std)')
  ax.fill_between(xs[ok], (mean - std)[ok], (mean + std)[ok], color=COLORS.get(method, 'tab:gray'),
                  alpha=0.2)


def learning(path, ours, benchmark, task, against, budget=None, others=True):
  """Our seeds [{xs, ys}] of `task` with the `against` band and the other published methods."""
  plt, fig, ax = _figure()
  limit = max(1.5 * budget, 100000) if budget else None
  curves = [c for c in published.curves(benchmark) if c['task'] == task]
  by_method = {}
  for c in curves:
    by_method.setdefault(c['method'], []).append(c)
  for method, runs in sorted(by_method.items()):
    if method in published.BASELINES:
      ax.axhline(runs[0]['ys'][0], color='k', lw=0.8, ls='--' if method == 'random' else '-.',
                 label=f'{method} {runs[0]["ys"][0]:g}')
    elif method == against:
      _published_band(ax, runs, limit)
    elif others:
      xs, mean, _ = seed_mean(runs, limit)
      ok = np.isfinite(mean)
      ax.plot(xs[ok], mean[ok], color=COLORS.get(method), lw=1, alpha=0.8,
              label=f'{method} (published mean, {len(runs)} seeds)')
  for i, run in enumerate(ours):
    ax.scatter(run['xs'], run['ys'], s=6, color='tab:blue', alpha=0.4,
               label='ours: training episodes' if i == 0 else None)
    _run(ax, run['xs'], run['ys'], 'tab:blue', f'ours seed {run.get("seed", i)}', lw=1.5)
  _save(plt, fig, ax, path, f'{benchmark} {task}: dreamer_tf vs published',
        f'env steps ({published.unit(benchmark)})', 'episode return', budget)


def compare(path, runs, published_runs, title, budget=None):
  """Other ports' runs (dreamer_tf.compare) beside the published methods of the task."""
  plt, fig, ax = _figure()
  limit = max(1.5 * budget, 100000) if budget else None
  by_method = {}
  for c in published_runs:
    if c['method'] not in published.BASELINES:
      by_method.setdefault(c['method'], []).append(c)
  for runs_ in by_method.values():
    _published_band(ax, runs_, limit)
  palette = ['tab:blue', 'tab:red', 'tab:cyan', 'tab:olive', 'tab:pink']
  colors = {}
  for run in runs:
    first = run['method'] not in colors
    color = colors.setdefault(run['method'], palette[len(colors) % len(palette)])
    _run(ax, run['xs'], run['ys'], color, f"{run['method']} ({run['format']})" if first else None)
  _save(plt, fig, ax, path, title, 'env steps', 'episode return', budget)


def hns_curve(benchmark, runs_by_task, grid):
  """Human-normalised mean and median over tasks of per-task seed means, on `grid`."""
  table = []
  for task, runs in runs_by_task.items():
    xs, mean, _ = seed_mean(runs)
    table.append([published.normalize(benchmark, task, np.interp(g, xs, mean, np.nan, np.nan))
                  for g in grid])
  table = np.array(table, float)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmean(table, 0), np.nanmedian(table, 0), np.isfinite(table).sum(0)


def aggregate(path, benchmark, ours_by_task=None, methods=('dreamerv3_2023', 'dreamerv3'),
              budget=None):
  """Human-normalised mean (solid) and median (dashed) curves of published methods and ours."""
  plt, fig, ax = _figure()
  end = budget or max(published.BENCHMARKS[benchmark][1])
  for method in methods:
    by_task = {}
    for c in published.curves(benchmark):
      if c['method'] == method and c['task'] in published.game_set(benchmark):
        by_task.setdefault(c['task'], []).append(c)
    grid = np.unique(np.concatenate([r['xs'] for runs in by_task.values() for r in runs]))
    grid = grid[(grid > 0) & (grid <= end)]
    mean, median, count = hns_curve(benchmark, by_task, grid)
    ax.plot(grid, mean, color=COLORS.get(method), label=f'{method} mean ({len(by_task)} games)')
    ax.plot(grid, median, color=COLORS.get(method), ls='--', label=f'{method} median')
  if ours_by_task:
    grid = np.linspace(end / 20, end, 20)
    binned = {t: [{'xs': grid, 'ys': [np.mean([y for x, y in zip(r['xs'], r['ys'])
                                               if g - end / 20 < x <= g] or [np.nan])
                                      for g in grid]} for r in runs]
              for t, runs in ours_by_task.items()}
    mean, median, _ = hns_curve(benchmark, binned, grid)
    ax.plot(grid, mean, color='tab:blue', lw=2, label=f'ours mean ({len(binned)} games)')
    ax.plot(grid, median, color='tab:blue', lw=2, ls='--', label='ours median')
  ax.axhline(1.0, color='k', lw=0.8, ls='-.', label='human gamer = 1')
  _save(plt, fig, ax, path, f'{benchmark}: human-normalised score', 'frames',
        'human-normalised score', None)
