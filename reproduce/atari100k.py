"""DreamerV3 on Atari 100k with the 2023 paper protocol, ending with a verdict against the
published dreamerv3_2023 seeds at the same frame count; or, with `--agent dreamerv3_2024`, the
2024 rewrite's protocol (danijar/dreamerv3@e3f0224 `atari100k`) judged against its own seeds.

    python reproduce/atari100k.py --game pong                    # paper budget: 100k steps
    python reproduce/atari100k.py --game pong --steps 1200 --size size1m --run.eval_eps=2
    python reproduce/atari100k.py --game pong --logdir runs/x    # same command again resumes
    python reproduce/atari100k.py --game pong --agent dreamerv3_2024 --size size1m --steps 1000

Options not listed below are config overrides (`--batch_size=8`, `--run.train_ratio=512`,
`--.*\\.units$=256`). Presets: dreamerv3, atari100k, then --size, then each --preset
(dreamerv3_2024: dreamerv3_2024, dreamerv3_2024_atari100k, dreamerv3_2024_<size>, --preset).
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dreamer_tf import reproduction  # noqa: E402
from dreamer_tf.envs.atari import GAMES_ATARI100K  # noqa: E402

AGENTS = {  # agent -> (its sizes, default size, protocol's agent steps)
    'dreamerv3': (('size1m', 'xs', 's', 'm', 'l', 'xl'), 's', 100000),
    'dreamerv3_2024': (('size1m', 'size12m', 'size25m', 'size50m', 'size100m', 'size200m',
                        'size400m'), 'size200m', 110000),  # configs.yaml: defaults, atari100k
}
# README, Performance: the S train step on this project's 2-core CPUs (benchmarks/peers.py),
# Intel with AVX-512 and an AVX2 AMD EPYC.
S_SEC_PER_UPDATE_CPU = (4.0, 9.9)


def parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--game', required=True, help='one of the 26 Atari 100k games')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--logdir', default=None, help='default: runs/atari100k/<game>/seed<seed>')
  parser.add_argument('--agent', default='dreamerv3', choices=AGENTS,
                      help='dreamerv3: the 2023 paper (default); dreamerv3_2024: the rewrite')
  parser.add_argument('--steps', type=int, default=None,
                      help='agent steps (x4 frames); default: the protocol, 2023 paper 100000 '
                      '= 400k frames, rewrite 110000')
  parser.add_argument('--size', default=None,
                      help='model size preset; dreamerv3: size1m, xs, s (default, the 2023 '
                      'paper), m, l, xl; dreamerv3_2024: size1m ... size400m (default size200m)')
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
  sizes, default, steps = AGENTS[args.agent]
  args.size = args.size or default
  if args.size not in sizes:
    parser.error(f"--size {args.size} is not a size of {args.agent}: {', '.join(sizes)}.")
  args.protocol_steps = steps
  args.steps = steps if args.steps is None else args.steps
  return args, overrides


def main(argv=None):
  args, overrides = parse(sys.argv[1:] if argv is None else argv)
  if args.agent == 'dreamerv3':
    presets = ['dreamerv3', 'atari100k', args.size, *args.preset]
  else:
    presets = ['dreamerv3_2024', 'dreamerv3_2024_atari100k', f'dreamerv3_2024_{args.size}',
               *args.preset]
  logdir = args.logdir or f'runs/atari100k/{args.game}/seed{args.seed}'
  if args.agent != 'dreamerv3' and not args.logdir:
    logdir = f'runs/atari100k/{args.agent}/{args.game}/seed{args.seed}'
  reproduction.reproduce(
      'atari100k', args.game, presets, overrides,
      {'task': f'atari_{args.game}', 'seed': args.seed, 'run.steps': args.steps},
      logdir, args.force, verbose=args.verbose)
  if args.steps < args.protocol_steps:
    explain_short_run(args, presets, overrides)


def explain_short_run(args, presets, overrides):
  """What a run below the protocol's budget shows, and what the protocol's run costs."""
  from dreamer_tf import config as config_lib
  config = config_lib.load(presets, overrides)
  updates = int(args.protocol_steps * config.run.train_ratio
                // (config.batch_size * config.batch_length))
  print(f"\nThis run: {args.steps:,} of the protocol's {args.protocol_steps:,} agent steps, "
        f"{args.agent} size '{args.size}'. It shows the whole pipeline (random prefill, "
        "training at the protocol's train ratio, the verdict against the published seeds at "
        "the same frame count), not learning: the verdict's band says where the published "
        "agent stands at this frame count.", flush=True)
  command = f'python reproduce/atari100k.py --game {args.game}'
  if args.agent == 'dreamerv3':
    fast, slow = (updates * sec / 86400 for sec in S_SEC_PER_UPDATE_CPU)
    print(f"Paper budget: {command}  (S model, ~{updates:,} updates: {fast:.1f}-{slow:.1f} days "
          f"at {S_SEC_PER_UPDATE_CPU[0]}-{S_SEC_PER_UPDATE_CPU[1]} s/update on 2 CPU cores; a "
          "GPU run, whose time this project has not measured: "
          "benchmarks/gpu_check.py --learn-minutes M projects it on a GPU machine).", flush=True)
  else:
    print(f"Protocol budget: {command} --agent {args.agent}  (size200m, ~{updates:,} updates "
          "of batch 16 x 64; its time per update on this machine: benchmarks/train_step.py "
          "--agent dreamerv3_2024 --size size200m).", flush=True)


if __name__ == '__main__':
  main()
