"""Prints the official DreamerV3 rewrite's optimizer banner for Atari 100k Pong shapes.

Builds the agent of https://github.com/danijar/dreamerv3 at e3f0224 (same export and pinned venv
as dreamerv3_2024.py) through its own config mechanism: configs.yaml `defaults`, then the named
size block (`size1m`, `size12m`, `size25m`), then `--jax.platform cpu --jax.compute_dtype
float32`; the agent config gets `jax.precompile: False` (no ahead-of-time compile of the train
step, which the counts do not need). Observations: `image` uint8 (64, 64, 3) plus reward /
is_first / is_last / is_terminal; action: int32 with 6 classes (Pong's `actions: needed`).
The banner is the text `embodied.jax.Optimizer` prints while the parameters are created
("Optimizer opt has N params:" and one line per top-level module); it is taken from
`Optimizer._summarize_params` (wrapped to keep its return value) and printed once per size.

Usage: python3 scripts/official/param_counts_2024.py [--source GIT_DIR] [--workdir DIR]
           [--venv DIR] [--sizes size1m,size12m,size25m]
"""
import argparse
import contextlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dreamerv3_2024 as gen  # noqa: E402

SIZES = ('size1m', 'size12m', 'size25m')
FLAGS = ['--jax.platform', 'cpu', '--jax.compute_dtype', 'float32']


def inner(args):
  import numpy as np
  gen.import_official(args.src)
  import elements
  import embodied.jax.opt
  from dreamerv3 import agent as agt

  banners = []
  orig = embodied.jax.opt.Optimizer._summarize_params

  def summarize(self, counts, depth):
    text = orig(self, counts, depth)
    banners.append(text)
    return text
  embodied.jax.opt.Optimizer._summarize_params = summarize

  S = elements.Space
  obs_space = {
      'image': S(np.uint8, (64, 64, 3)), 'reward': S(np.float32), 'is_first': S(bool),
      'is_last': S(bool), 'is_terminal': S(bool)}
  act_space = {'action': S(np.int32, (), 0, 6)}
  for size in args.sizes.split(','):
    config = gen.official_config(args.src, [size], FLAGS)
    del banners[:]
    with contextlib.redirect_stdout(sys.stderr):  # The official start-up prints.
      agt.Agent(obs_space, act_space, gen.agent_config(config, gen.JAX_EXTRA))
    assert banners and all(b == banners[0] for b in banners), banners
    print(f'=== {size}\n{banners[0]}', flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--source', default=None)
  parser.add_argument('--workdir', default=None)
  parser.add_argument('--venv', default=None)
  parser.add_argument('--sizes', default=','.join(SIZES))
  parser.add_argument('--inner', action='store_true')
  parser.add_argument('--src')
  args = parser.parse_args()
  if args.inner:
    return inner(args)
  src, python = gen.prepare(args.source, args.workdir, args.venv)
  cmd = [python, os.path.abspath(__file__), '--inner', '--src', src, '--sizes', args.sizes]
  proc = subprocess.run(cmd, env=gen.environment(), stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
  print(proc.stdout, end='')
  if proc.returncode:
    print(proc.stderr[-4000:])
    raise SystemExit(proc.returncode)


if __name__ == '__main__':
  main()
