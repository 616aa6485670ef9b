"""Learning-curve figure of a run beside the published seeds (PNG via matplotlib)."""
import numpy as np


def curve(path, xs, ys, published_runs, title, budget=None):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
  if published_runs:
    grid = np.array(published_runs[0]['xs'], float)
    vals = np.array([[np.nan if y is None else y for y in r['ys']] for r in published_runs], float)
    if budget:
      keep = grid <= max(budget * 1.5, 100000)
      grid, vals = grid[keep], vals[:, keep]
    mean, std = np.nanmean(vals, 0), np.nanstd(vals, 0)
    label = f"{published_runs[0]['method']} (published, {len(published_runs)} seeds)"
    ax.plot(grid, mean, color='tab:gray', label=label)
    ax.fill_between(grid, mean - std, mean + std, color='tab:gray', alpha=0.25)
  if len(xs):
    ax.scatter(xs, ys, s=10, color='tab:blue', alpha=0.6, label='ours: training episodes')
    if len(xs) >= 5:
      k = max(1, len(ys) // 10)
      smooth = np.convolve(ys, np.ones(k) / k, mode='valid')
      ax.plot(xs[k - 1:], smooth, color='tab:blue')
  if budget:
    ax.axvline(budget, color='k', ls=':', lw=1)
  ax.set_xlabel('environment frames')
  ax.set_ylabel('episode return')
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc='lower right', fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
