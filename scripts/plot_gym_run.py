"""Learning curve of one gymnasium run dir (results/runs/gym_*): every training episode's return,
its moving average over `--window` consecutive episodes, and optional reference lines.

    python scripts/plot_gym_run.py results/runs/gym_cartpole_dreamerv3 --window 20 \
        --line 400 'target: 400 over 20 episodes' --line 22 'random policy ~22'

Reads scores.json (xs: frames = agent steps here, ys: returns) and summary.json (updates, wall
time) from the run dir; writes curve.png there (or --out). Prints the best moving average and
the agent step at which it ended.
"""
import argparse
import json
import pathlib

import numpy as np


def moving_average(ys, window):
  ys = np.asarray(ys, float)
  if len(ys) < window:
    return np.array([])
  return np.convolve(ys, np.ones(window) / window, mode='valid')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('rundir')
  parser.add_argument('--window', type=int, default=20)
  parser.add_argument('--line', nargs=2, action='append', default=[], metavar=('Y', 'LABEL'))
  parser.add_argument('--out', default=None)
  parser.add_argument('--wall', default=None,
                      help="wall time for the title (summary.json's covers only the last resume)")
  args = parser.parse_args(argv)
  rundir = pathlib.Path(args.rundir)
  scores = json.loads((rundir / 'scores.json').read_text())
  summary_path = rundir / 'summary.json'
  summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
  lines = []
  for run in scores:
    xs, ys = np.asarray(run['xs']), np.asarray(run['ys'], float)
    ax.scatter(xs, ys, s=5, color='tab:blue', alpha=0.35, label='training episodes')
    avg = moving_average(ys, args.window)
    if len(avg):
      best = int(np.argmax(avg))
      ax.plot(xs[args.window - 1:], avg, color='tab:blue',
              label=f'mean of {args.window} consecutive episodes (max {avg[best]:.1f})')
      lines.append(f"{run['task']} seed {run['seed']}: {len(ys)} episodes; max {args.window}-episode "
                   f'mean {avg[best]:.1f} (episodes {best + 1}-{best + args.window}, ending at '
                   f'agent step {xs[best + args.window - 1]:,}); last {args.window}: {avg[-1]:.1f}')
    title = f"{run['task']} ({run['method']}, seed {run['seed']})"
  for y, label in args.line:
    ax.axhline(float(y), color='k', ls='--', lw=0.8, label=label)
  if summary:
    wall = args.wall or f"{summary['wall_seconds'] / 60:.0f} min"
    title += f"\n{summary['step']:,} agent steps, {summary['updates']:,} updates, {wall}"
  ax.set(title=title, xlabel='agent steps', ylabel='episode return')
  ax.grid(alpha=0.3)
  ax.legend(loc='best', fontsize=7)
  fig.tight_layout()
  out = pathlib.Path(args.out) if args.out else rundir / 'curve.png'
  fig.savefig(out)
  plt.close(fig)
  print('\n'.join(lines))
  print(out)


if __name__ == '__main__':
  main()
