"""What every reproduce script shares: resolve the config, train, then the verdict against the
published seeds, the curve and the summary lines.

TensorFlow is imported (quietly) only once the config is valid, so a bad value or key is
refused in a fraction of a second rather than after TensorFlow's start-up."""
import json
import pathlib
import sys

from . import config as config_lib
from . import plots, published, quiet, verdict


def train(presets, overrides, update, logdir, force=False, verbose=False):
  """Loads `presets` + CLI `overrides` + `update`, runs it in `logdir`; exits on a config error
  (unknown key, preset, type, or a logdir holding another config) before anything is written.
  `verbose` (the scripts' --verbose) shows TensorFlow's start-up lines."""
  try:
    config = config_lib.check(config_lib.load(presets, overrides).update(update))
    print(f'Presets: {", ".join(presets)}; logdir: {logdir}', flush=True)
    quiet.quiet_tensorflow(verbose)
    from . import run  # TensorFlow: after quiet_tensorflow
    return config, run.run(config, logdir, force=force)
  except config_lib.ConfigError as e:
    sys.exit(f'error: {e}')


def conclude(benchmark, task, config, out, logdir, unit='frames'):
  """Judges `out` (run.run's result) at the steps it reached, on the kind of episode the
  published curves hold (published.episode_kind); writes verdict.json, curve.png."""
  from . import run  # train() imported it
  logdir = pathlib.Path(logdir)
  kind = published.episode_kind(config.method)
  episodes = out['eval_episodes'] if kind == 'eval' else out['episodes']
  xs = [e['frames'] for e in episodes]
  ys = [e['score'] for e in episodes]
  result = verdict.judge(benchmark, task, config.method, xs, ys, out['frames'])
  (logdir / 'verdict.json').write_text(json.dumps(result, indent=1))
  plots.learning(logdir / 'curve.png', [{'xs': xs, 'ys': ys, 'seed': config.seed}], benchmark,
                 task, result['method'], budget=out['frames'])
  if out['evaluations']:
    last = out['evaluations'][-1]
    print(f"Evaluation at {last['step'] * run.repeat_of(config):,} {unit}: mean return "
          f"{sum(last['scores']) / len(last['scores']):.2f} over {len(last['scores'])} episodes")
  print(f'Curve ({kind} episodes, as the published {config.method} curves): '
        f'{logdir / "curve.png"}')
  print(verdict.line(result), flush=True)
  return result


def reproduce(benchmark, task, presets, overrides, update, logdir, force=False, unit='frames',
              verbose=False):
  """A reproduce script's run: train with `update` (a None value keeps the preset's, e.g. the
  paper budget), then conclude with the verdict."""
  logdir = pathlib.Path(logdir)
  config, out = train(presets, overrides, {k: v for k, v in update.items() if v is not None},
                      logdir, force, verbose)
  return conclude(benchmark, task, config, out, logdir, unit)
