"""Judges a run against the published seeds at the same frame count.

Reduction (the published rule, README of shared/reference): at a budget of B frames each seed's
score is the mean training return over the window (B - w, B] with w = max(0.1 B, bin width):
the published binned curves average the bins overlapping that window, our per-episode scores
average the episodes ending in it. At 400k frames this is `window(360000,400000]`, the rule of
results/published/atari100k.csv.

Verdict: MATCH when our score lies inside the published seed band [min, max] over seeds at that
budget, else BELOW or ABOVE. With five published seeds the band holds a sixth run of the same
distribution with probability 4/6 (ranks), so one seed outside it is a warning, not proof.

    python -m dreamer_tf.verdict RUN_DIR [RUN_DIR ...]   # exit 0 if every run MATCHes
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import yaml

from . import published


def window(frames, bin_width):
  return max(0.0, frames - max(0.1 * frames, bin_width)), frames


def reduce_published(run, frames):
  lo, hi = window(frames, run['bin'])
  ys = [y for x, y in zip(run['xs'], run['ys'])
        if y is not None and np.isfinite(y) and x > lo and x - run['bin'] < hi]
  return float(np.mean(ys)) if ys else None


def reduce_episodes(xs, ys, frames, bin_width):
  lo, hi = window(frames, bin_width)
  vals = [y for x, y in zip(xs, ys) if lo < x <= hi]
  return (float(np.mean(vals)) if vals else None), len(vals)


def judge(benchmark, task, method, xs, ys, frames):
  """Returns a dict with ours, the published seeds at `frames`, and the verdict."""
  runs = published.runs(benchmark, task, published.METHODS.get(method, method))
  bin_width = runs[0]['bin']
  theirs = [v for v in (reduce_published(r, frames) for r in runs) if v is not None]
  ours, count = reduce_episodes(xs, ys, frames, bin_width)
  lo, hi = window(frames, bin_width)
  out = {'task': task, 'method': runs[0]['method'], 'frames': int(frames), 'window': [lo, hi],
         'ours': ours, 'our_episodes': count, 'published': theirs, 'source': runs[0]['source']}
  random = published.baseline(benchmark, task, 'random')
  human = published.baseline(benchmark, task, 'human_gamer')
  norm = lambda s: (s - random) / (human - random)
  if ours is None:
    out['verdict'] = 'NO DATA'
  elif not theirs:
    out['verdict'] = 'NO PUBLISHED DATA'
  else:
    out['verdict'] = ('BELOW' if ours < min(theirs) else
                      'ABOVE' if ours > max(theirs) else 'MATCH')
  out['ours_hns'] = None if ours is None else norm(ours)
  out['published_hns'] = norm(float(np.mean(theirs))) if theirs else None
  return out


def line(result):
  r = result
  pub = r['published']
  ours = 'n/a' if r['ours'] is None else f"{r['ours']:.2f} ({r['our_episodes']} episodes)"
  pub_text = (f'{np.mean(pub):.2f} ± {np.std(pub, ddof=1) if len(pub) > 1 else 0:.2f} '
              f'[{min(pub):.2f}, {max(pub):.2f}] n={len(pub)}') if pub else 'n/a'
  hns = '' if r['ours_hns'] is None else f" | HNS {r['ours_hns']:.3f} vs {r['published_hns']:.3f}"
  return (f"VERDICT {r['verdict']}: {r['task']} at {r['frames']:,} frames, window "
          f"({r['window'][0]:,.0f}, {r['window'][1]:,.0f}]: ours {ours} vs {r['method']} "
          f"{pub_text}{hns} | source {r['source']}")


def judge_run(logdir, frames=None, benchmark='atari100k'):
  logdir = pathlib.Path(logdir)
  scores = logdir / 'scores.json'
  if not scores.exists():
    raise FileNotFoundError(f'{logdir} has no scores.json: not a dreamer_tf run directory.')
  run = json.loads(scores.read_text())[0]
  config = yaml.safe_load((logdir / 'config.yaml').read_text())
  suite, task = run['task'].split('_', 1)
  repeat = config['env'][suite]['repeat']
  if frames is None:
    summary = logdir / 'summary.json'
    if not summary.exists():
      raise FileNotFoundError(f'{logdir} has no summary.json (the run has not finished); '
                              'pass --frames to judge it at a budget.')
    frames = json.loads(summary.read_text())['step'] * repeat
  return judge(benchmark, task, run['method'], run['xs'], run['ys'], frames)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('logdirs', nargs='+')
  parser.add_argument('--frames', type=int, default=None,
                      help='budget to judge at (default: the frames the run reached)')
  args = parser.parse_args(argv)
  ok = True
  for logdir in args.logdirs:
    result = judge_run(logdir, args.frames)
    print(line(result))
    ok &= result['verdict'] == 'MATCH'
  return 0 if ok else 1


if __name__ == '__main__':
  sys.exit(main())
