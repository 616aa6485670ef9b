"""DreamerV3 on Atari 100k with the 2023 paper protocol, ending with a verdict against the
published dreamerv3_2023 seeds at the same frame count.

    python reproduce/atari100k.py --game pong                    # paper budget: 100k steps
    python reproduce/atari100k.py --game pong --steps 1200 --size size1m --run.eval_eps=2
    python reproduce/atari100k.py --game pong --logdir runs/x    # same command again resumes

Options not listed below are config overrides (`--batch_size=8`, `--run.train_ratio=512`,
`--.*\\.units$=256`). Presets: dreamerv3, atari100k, then --size, then each --preset.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dreamer_tf import quiet  # noqa: E402
from dreamer_tf.envs.atari import GAMES_ATARI100K  # noqa: E402

SIZES = ('size1m', 'xs', 's', 'm', 'l', 'xl')
PAPER_STEPS = 100000
# README, Performance: the S train step on this project's 2-core CPUs (benchmarks/peers.py),
# Intel with AVX-512 and an AVX2 AMD EPYC.
S_SEC_PER_UPDATE_CPU = (4.0, 9.9)


def parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--game', required=True, help='one of the 26 Atari 100k games')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--logdir', default=None, help='default: runs/atari100k/<game>/seed<seed>')
  parser.add_argument('--steps', type=int, default=100000,
                      help='agent steps (x4 frames); paper: 100000 = 400k frames')
  parser.add_argument('--size', default='s', choices=SIZES,
                      help='model size preset (2023 paper: atari100k uses S)')
  parser.add_argument('--preset', action='append', default=[],
                      help='extra preset(s) from configs/presets.yaml, applied after --size')
  parser.add_argument('--force', action='store_true',
                      help='resume a logdir whose saved config differs')
  parser.add_argument('--verbose', action='store_true',
                      help="show TensorFlow's start-up and C++ log lines (dreamer_tf/quiet.py)")
  args, overrides = parser.parse_known_args(argv)
  game = {'james_bond': 'jamesbond'}.get(args.game, args.game)
  if game not in GAMES_ATARI100K:
    parser.error(f"unknown game '{args.game}'. Atari 100k games: {', '.join(GAMES_ATARI100K)}.")
  args.game = game
  return args, overrides


def main(argv=None):
  args, overrides = parse(sys.argv[1:] if argv is None else argv)
  quiet.quiet_tensorflow(args.verbose)
  from dreamer_tf import reproduction  # TensorFlow: after quiet_tensorflow
  reproduction.reproduce(
      'atari100k', args.game, ['dreamerv3', 'atari100k', args.size, *args.preset], overrides,
      {'task': f'atari_{args.game}', 'seed': args.seed, 'run.steps': args.steps},
      args.logdir or f'runs/atari100k/{args.game}/seed{args.seed}', args.force)
  if args.steps < PAPER_STEPS:
    explain_short_run(args)


def explain_short_run(args):
  """What a run below the paper budget shows, and what the paper's run costs."""
  updates = PAPER_STEPS * 1024 // (16 * 64)  # atari100k train ratio 1024, batch 16 x 64
  fast, slow = (updates * sec / 86400 for sec in S_SEC_PER_UPDATE_CPU)
  print(f"\nThis run: {args.steps:,} of the protocol's {PAPER_STEPS:,} agent steps, size "
        f"'{args.size}'. It shows the whole pipeline (random prefill, training at the paper's "
        "train ratio, evaluation, the verdict against the published seeds at the same frame "
        "count), not learning: the verdict's band says where the published agent stands at "
        f"this frame count.\nPaper budget: python reproduce/atari100k.py --game {args.game}  "
        f"(S model, ~{updates:,} updates: {fast:.1f}-{slow:.1f} days at "
        f"{S_SEC_PER_UPDATE_CPU[0]}-{S_SEC_PER_UPDATE_CPU[1]} s/update on 2 CPU cores; a GPU "
        "run, whose time this project has not measured: "
        "benchmarks/gpu_check.py --learn-minutes M projects it on a GPU machine).", flush=True)


if __name__ == '__main__':
  main()
