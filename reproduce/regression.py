"""Regression checks: short training runs whose score must land in an expected band, so that a
change that silently breaks learning is caught.

    python reproduce/regression.py                        # all checks, reduced budgets (CPU)
    python reproduce/regression.py --check dummy_disc     # one check (~12 min on 2 cores)
    python reproduce/regression.py --full --seeds 3       # paper budgets, on a GPU machine

Full budgets: install `tensorflow[and-cuda]` (same code), then `--full` trains Pong for the
paper's 100k agent steps (400k frames, DreamerV3 S, the 2023 protocol) and judges the mean of
`--seeds` runs; each check's logdir is <logdir>/<check>/seed<k>, and rerunning the command
resumes from the checkpoints. Expect a few hours per Pong seed on one modern GPU.

Each check's score is our window rule (dreamer_tf/verdict.py) at its budget: the mean return of
the episodes ending in the last 10% of it. The expected band is the intersection of
  published  the verdict's 95% prediction band of the published seeds at that budget, and the
             floor random + GAIN x (published mean - random): learning must show;
  recorded   random + GAIN x (our recorded run - random), our own run in results/runs/ with
             the same config (dummy_disc_small: 99.0 at 3,000 steps, random policy 25).
PASS if the score is inside the band. Exit status 0 only if every check passes.
"""
import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dreamer_tf import config as config_lib  # noqa: E402
from dreamer_tf import published, quiet, verdict  # noqa: E402

GAIN = 0.5  # a run must keep at least half of the reference's gain over the random policy


@dataclasses.dataclass(frozen=True)
class Check:
  task: str
  steps: int                  # reduced agent-step budget (CPU)
  full_steps: int             # paper budget (GPU)
  repeat: int                 # action repeat: frames = steps x repeat
  presets: tuple = ()
  record: str = ''            # results/runs/<record>: our recorded run (and its config)
  random: float = None        # random-policy score; None: the published baseline
  benchmark: str = ''         # published benchmark of the task, '' if none


CHECKS = {
    'dummy_disc': Check('dummy_disc', 3000, 3000, 1, record='dummy_disc_small', random=25.0),
    'pong': Check('atari_pong', 50000, 100000, 4, presets=('dreamerv3', 'atari100k', 's'),
                  benchmark='atari100k'),
}


def select(names):
  unknown = [n for n in names if n not in CHECKS]
  if unknown:
    raise ValueError(f"Unknown check '{unknown[0]}'. Valid: {', '.join(CHECKS)}.")
  return {n: CHECKS[n] for n in names}


def recorded(check, frames, runs_dir):
  """Our recorded run's score at `frames`, or None when the check has no recorded run."""
  if not check.record:
    return None
  path = runs_dir / check.record / 'scores.json'
  if not path.exists():
    raise FileNotFoundError(f"Recorded run '{path}' of check '{check.task}' is missing.")
  run = json.loads(path.read_text())[0]
  return verdict.reduce_episodes(run['xs'], run['ys'], frames, 0)[0]


def band(check, frames, seeds=1, runs_dir=ROOT / 'results' / 'runs'):
  """(lo, hi, reasons) of the expected score of `seeds` runs at `frames`."""
  lo, hi, reasons = -np.inf, np.inf, []
  task = check.task.split('_', 1)[1]
  random = check.random
  if check.benchmark:
    random = published.baseline(check.benchmark, task, 'random') if random is None else random
    result = verdict.judge_seeds(check.benchmark, task, 'dreamerv3', [], frames)
    if result['published']:
      plo, phi = verdict.band(result['published'], seeds)
      floor = random + GAIN * (result['published_mean'] - random)
      lo, hi = max(plo, floor), phi
      reasons.append(f"{result['method']} at {frames:,}: band [{plo:.2f}, {phi:.2f}], "
                     f"half-gain floor {floor:.2f} ({result['source']})")
  ours = recorded(check, frames, runs_dir)
  if ours is not None:
    floor = random + GAIN * (ours - random)
    lo = max(lo, floor)
    reasons.append(f'recorded results/runs/{check.record}: {ours:.2f}, half-gain floor {floor:.2f}')
  if not reasons:
    raise ValueError(f"Check '{check.task}' has no band at {frames:,} frames: no published "
                     'seeds there and no recorded run.')
  return lo, hi, reasons


def evaluate(check, seeds, frames, runs_dir=ROOT / 'results' / 'runs'):
  """Judges our seeds [(xs, ys), ...]: dict with score, band and PASS / FAIL."""
  values = [verdict.reduce_episodes(xs, ys, frames, 0)[0] for xs, ys in seeds]
  values = [v for v in values if v is not None]
  lo, hi, reasons = band(check, frames, max(len(values), 1), runs_dir)
  score = float(np.mean(values)) if values else None
  status = 'PASS' if score is not None and lo <= score <= hi else 'FAIL'
  return {'task': check.task, 'frames': frames, 'score': score, 'seeds': values,
          'band': [lo, hi], 'reasons': reasons, 'status': status}


def config_of(check, steps, seed, runs_dir):
  """The recorded run's config if there is one, else the presets; budget and seed set."""
  if check.record:
    saved = yaml.safe_load((runs_dir / check.record / 'config.yaml').read_text())
    config = config_lib.defaults().update(saved)
  else:
    config = config_lib.load(list(check.presets))
  return config.update({'task': check.task, 'seed': seed, 'run.steps': steps,
                        'logdir': ''})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--check', nargs='+', default=list(CHECKS), help=f'of: {", ".join(CHECKS)}')
  parser.add_argument('--full', action='store_true', help='paper budgets (GPU)')
  parser.add_argument('--seeds', type=int, default=1)
  parser.add_argument('--logdir', default='runs/regression')
  parser.add_argument('--verbose', action='store_true',
                      help="show TensorFlow's start-up and C++ log lines (dreamer_tf/quiet.py)")
  args = parser.parse_args(argv)
  try:
    checks = select(args.check)
  except ValueError as e:
    parser.error(str(e))
  quiet.quiet_tensorflow(args.verbose)
  from dreamer_tf import run  # TensorFlow only once the arguments are valid
  runs_dir, results = ROOT / 'results' / 'runs', []
  for name, check in checks.items():
    steps = check.full_steps if args.full else check.steps
    seeds = []
    for seed in range(args.seeds):
      out = run.run(config_of(check, steps, seed, runs_dir),
                    pathlib.Path(args.logdir) / name / f'seed{seed}')
      seeds.append(([e['frames'] for e in out['episodes']], [e['score'] for e in out['episodes']]))
    result = evaluate(check, seeds, steps * check.repeat, runs_dir)
    results.append(result)
    print(f"REGRESSION {result['status']}: {name} at {result['frames']:,} frames: score "
          f"{result['score']} band [{result['band'][0]:.2f}, {result['band'][1]:.2f}] | "
          + '; '.join(result['reasons']), flush=True)
  out = pathlib.Path(args.logdir) / 'regression.json'
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1))
  return 0 if all(r['status'] == 'PASS' for r in results) else 1


if __name__ == '__main__':
  sys.exit(main())
