"""Trains DreamerV3 on any registered task, with the progress, outputs, checkpoints and resume of
the reproduce scripts; published suites (atari, dmc) end with their verdict, others with a summary.

    python -m dreamer_tf.train --task atari_pong                    # Atari 100k protocol, size S
    python -m dreamer_tf.train --task dmc_walker_walk --preset dmc_proprio
    python -m dreamer_tf.train --task gym:CartPole-v1 --steps 50000
    python -m dreamer_tf.train --task gym:mypkg.envs:make_env --size xs --logdir runs/mine
    python -m dreamer_tf.train --task dummy_disc --preset debug --steps 500

Presets: dreamerv3, the suite's domain preset (atari100k, dmc_vision, gym; envs.DOMAIN_PRESETS),
--size, then each --preset. Options not listed are config overrides (`--run.train_ratio=512`,
`--env.gym.size=128,128`). The same command with the same --logdir resumes. DreamerV1/V2
protocols: reproduce/dmc.py --agent, reproduce/atari200m.py --agent.
"""
import argparse
import re
import sys

from dreamer_tf import envs, reproduction, verdict

SIZES = ('size1m', 'xs', 's', 'm', 'l', 'xl')


def parse(argv):
  # No abbreviations: `--s=...` or `--pre...` must not be taken for --size or --preset.
  parser = argparse.ArgumentParser(prog='python -m dreamer_tf.train', allow_abbrev=False,
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--task', required=True,
                      help='atari_<game>, dmc_<domain>_<task>, dummy_disc, dummy_cont, '
                      'gym:<gymnasium id> or gym:<module>:<factory>')
  parser.add_argument('--preset', action='append', default=[],
                      help='extra preset(s) from configs/presets.yaml, applied after --size')
  parser.add_argument('--size', default='s', choices=SIZES, help='model size preset')
  parser.add_argument('--logdir', default=None, help='default: runs/<task>/seed<seed>')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--steps', type=int, default=None,
                      help="agent steps (x action repeat frames); default: the presets' budget")
  parser.add_argument('--force', action='store_true',
                      help='resume a logdir whose saved config differs')
  parser.add_argument('--verbose', action='store_true',
                      help="show TensorFlow's start-up and C++ log lines (dreamer_tf/quiet.py)")
  args, overrides = parser.parse_known_args(argv)
  try:
    args.suite, args.name = envs.split(args.task)
  except ValueError as e:
    parser.error(str(e))
  return args, overrides


def summary_line(out, last=5):
  """One line: steps, frames, updates, episodes and the last `last` training returns."""
  returns = [e['score'] for e in out['episodes']]
  tail = returns[-last:]
  recent = (f"last {len(tail)} returns {', '.join(f'{r:.1f}' for r in tail)} "
            f'(mean {sum(tail) / len(tail):.2f})' if tail else 'no finished episode')
  return (f"SUMMARY {out['task']}: {out['step']:,} agent steps ({out['frames']:,} frames), "
          f"{out['updates']:,} updates, {len(returns)} episode{'s' * (len(returns) != 1)}; "
          f"{recent}; {out['logdir']}")


def main(argv=None):
  args, overrides = parse(sys.argv[1:] if argv is None else argv)
  presets = ['dreamerv3', *envs.DOMAIN_PRESETS[args.suite], args.size, *args.preset]
  logdir = args.logdir or f"runs/{re.sub(r'[^A-Za-z0-9_.-]', '_', args.task)}/seed{args.seed}"
  update = {'task': args.task, 'seed': args.seed}
  if args.steps is not None:
    update['run.steps'] = args.steps
  config, out = reproduction.train(presets, overrides, update, logdir, args.force, args.verbose)
  print(summary_line(out), flush=True)
  if args.suite in verdict.SUITES:
    suite_env = config.env[args.suite].to_dict()
    benchmark = verdict.benchmark_of(args.suite, out['frames'], env=suite_env)
    reproduction.conclude(benchmark, args.name, config, out, logdir,
                    'frames' if args.suite == 'atari' else 'env steps')
  return out


if __name__ == '__main__':
  main()
