"""Soak: RSS of a long debug-preset run, sampled every 500 updates; reports the slope after warm-up.

    python benchmarks/soak.py [--updates 10000] [--every 500] [--warmup 2000] [--logdir DIR]

A measurement for the README, not a test: a flat slope (KB per 1k updates near zero) means no
leak in the loop, replay, logger or checkpoints. Train ratio = batch steps, so one update per
agent step after prefill; checkpoints every 30 s.
"""
import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dreamer_tf import agent as agent_lib  # noqa: E402
from dreamer_tf import config as config_lib  # noqa: E402
from dreamer_tf import run  # noqa: E402


def rss_mb():
  for line in open('/proc/self/status'):
    if line.startswith('VmRSS:'):
      return int(line.split()[1]) / 1024
  return float('nan')


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--updates', type=int, default=10000)
  parser.add_argument('--every', type=int, default=500)
  parser.add_argument('--warmup', type=int, default=2000)
  parser.add_argument('--logdir', default=None)
  args = parser.parse_args()
  config = config_lib.load(['dreamerv3', 'debug'], [
      '--task', 'dummy_disc', '--env.dummy.size', '16,16', '--run.train_ratio', '48',
      '--run.save_every', '30', '--run.log_every', '30'])
  prefill = config.batch_size * config.batch_length + config.batch_length - 1
  config = config.update({'run.steps': prefill + args.updates})
  samples, train, start = [], agent_lib.Agent.train, time.time()

  def sampled(self, batch):
    out = train(self, batch)
    sampled.n += 1
    if sampled.n % args.every == 0:
      samples.append((sampled.n, rss_mb()))
      print(f'update {sampled.n:6d}  rss {samples[-1][1]:8.1f} MB  {time.time() - start:7.0f} s',
            flush=True)
    return out
  sampled.n = 0
  agent_lib.Agent.train = sampled
  logdir = args.logdir or tempfile.mkdtemp(prefix='soak_')
  run.run(config, logdir, log=lambda m: None)
  xs, ys = np.array([s for s in samples if s[0] > args.warmup]).T
  slope = np.polyfit(xs, ys, 1)[0] * 1000 if len(xs) > 1 else float('nan')
  print(f'{sampled.n} updates in {time.time() - start:.0f} s; RSS {samples[0][1]:.1f} MB at '
        f'{samples[0][0]} updates, {ys[0]:.1f} -> {ys[-1]:.1f} MB after warm-up ({args.warmup}); '
        f'slope {slope:+.2f} MB per 1k updates.')


if __name__ == '__main__':
  main()
