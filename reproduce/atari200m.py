"""DreamerV2 (or DreamerV3: 2023 paper, 2024 rewrite) on Atari 200M frames with its paper
protocol, ending with a verdict against the published seeds of that agent at the same frame count.

    python reproduce/atari200m.py --game pong --agent dreamerv2        # 50M steps = 200M frames
    python reproduce/atari200m.py --game pong --agent dreamerv2 --steps 20000 --precision=float32
    python reproduce/atari200m.py --game pong --agent dreamerv3        # 2023 `atari` block, XL
    python reproduce/atari200m.py --game pong --agent dreamerv3_2024   # rewrite `atari`, 96x96

DreamerV2: presets dreamerv2 + dreamerv2_atari (grayscale, sticky actions, repeat 4, 27k-step
time limit, 50k prefill, an update every 16 steps). The full budget is a GPU path (days); reduced
budgets judge the curve at the frames reached. Options not listed are config overrides.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dreamer_tf import published, reproduction  # noqa: E402

AGENTS = {'dreamerv2': ['dreamerv2', 'dreamerv2_atari'], 'dreamerv3': ['dreamerv3', 'atari'],
          'dreamerv3_2024': ['dreamerv3_2024', 'dreamerv3_2024_atari']}   # rewrite: size200m


def parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--game', required=True, help='an Atari 200M game, e.g. pong')
  parser.add_argument('--agent', default='dreamerv2', choices=tuple(AGENTS))
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--logdir', default=None,
                      help='default: runs/atari200m/<agent>/<game>/seed<seed>')
  parser.add_argument('--steps', type=int, default=None,
                      help='agent steps (x4 frames); default: the paper budget')
  parser.add_argument('--preset', action='append', default=[])
  parser.add_argument('--force', action='store_true')
  parser.add_argument('--verbose', action='store_true',
                      help="show TensorFlow's start-up and C++ log lines (dreamer_tf/quiet.py)")
  args, overrides = parser.parse_known_args(argv)
  args.game = {'james_bond': 'jamesbond'}.get(args.game, args.game)
  valid = published.tasks('atari200m')
  if args.game not in valid:
    parser.error(f"unknown game '{args.game}'. Atari 200M games: {', '.join(valid)}.")
  return args, overrides


def main(argv=None):
  args, overrides = parse(sys.argv[1:] if argv is None else argv)
  reproduction.reproduce(
      'atari200m', args.game, AGENTS[args.agent] + args.preset, overrides,
      {'task': f'atari_{args.game}', 'seed': args.seed, 'run.steps': args.steps},
      args.logdir or f'runs/atari200m/{args.agent}/{args.game}/seed{args.seed}', args.force,
      verbose=args.verbose)


if __name__ == '__main__':
  main()
