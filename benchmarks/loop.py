"""Full-loop benchmark: Atari Pong with env stepping, replay and training at a fixed train ratio
for a fixed wall time, as the peers were measured (issue 7): seconds per update (median, p10,
p90), agent steps per second, start -> first update, peak RSS.

    python benchmarks/loop.py --size xs --seconds 300            # train ratio 256, batch 16 x 64
    python benchmarks/loop.py --size size1m --seconds 300 --json loop.json
    python benchmarks/loop.py --agent dreamerv3_2024 --size size1m --precision=float32

The run is the real `run.run` (random prefill of one batch, then the policy and updates per
`Ratio`), stopped by an alarm after --seconds; the logdir is a temporary directory.
"""
import argparse
import json
import os
import pathlib
import resource
import signal
import sys
import tempfile
import time

START = time.time()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from dreamer_tf import agent as agent_lib  # noqa: E402
from dreamer_tf import config as config_lib  # noqa: E402
from dreamer_tf import run  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--agent', default='dreamerv3', choices=['dreamerv3', 'dreamerv3_2024'])
  parser.add_argument('--size', default='xs', help='dreamerv3: size1m, xs, s, m, l, xl; '
                      'dreamerv3_2024: size1m ... size400m')
  parser.add_argument('--seconds', type=float, default=300.0)
  parser.add_argument('--train-ratio', type=float, default=256.0)
  parser.add_argument('--json', default=None)
  parser.add_argument('--print-updates', action='store_true',
                      help="print 'PEERS_UPDATE <begin> <end>' per update (benchmarks/peers.py)")
  args, overrides = parser.parse_known_args()
  presets = ['dreamerv3', 'atari100k', args.size]
  if args.agent == 'dreamerv3_2024':
    presets = ['dreamerv3_2024', 'dreamerv3_2024_atari100k', f'dreamerv3_2024_{args.size}']
  config = config_lib.load(presets, overrides).update({
      'run.train_ratio': args.train_ratio, 'run.steps': 10 ** 9, 'run.script': 'train',
      'run.log_every': 60, 'run.save_every': 10 ** 6})
  updates, steps = [], []
  train, policy = agent_lib.Agent.train, agent_lib.Agent.policy

  def timed_train(self, batch, **kwargs):
    begin = time.time()
    out = train(self, batch, **kwargs)
    updates.append((begin, time.time()))
    if args.print_updates:
      print(f'PEERS_UPDATE {begin:.6f} {updates[-1][1]:.6f}', flush=True)
    return out

  def counted_policy(self, *a, **k):
    steps.append(time.time())
    return policy(self, *a, **k)

  agent_lib.Agent.train, agent_lib.Agent.policy = timed_train, counted_policy

  def stop(*_):
    raise KeyboardInterrupt
  signal.signal(signal.SIGALRM, stop)
  signal.alarm(int(args.seconds - (time.time() - START)))
  with tempfile.TemporaryDirectory() as logdir:
    try:
      run.run(config, logdir, log=lambda *a: None)
    except KeyboardInterrupt:
      pass
  if len(updates) < 3:
    sys.exit(f'only {len(updates)} updates in {args.seconds} s: raise --seconds.')
  first = updates[0][0]
  durations = np.array([e - b for b, e in updates[1:]])
  after = [t for t in steps if t >= first]
  wall = time.time() - first
  result = {
      'presets': presets, 'train_ratio': args.train_ratio, 'seconds': args.seconds,
      'batch': [config.batch_size, config.batch_length], 'precision': config.precision,
      'start_to_first_update_s': first - START,
      'start_to_first_update_done_s': updates[0][1] - START,
      'first_update_s': updates[0][1] - updates[0][0],
      'updates': len(updates), 'agent_steps_after_first_update': len(after),
      'sec_per_update_median': float(np.median(durations)),
      'sec_per_update_p10': float(np.percentile(durations, 10)),
      'sec_per_update_p90': float(np.percentile(durations, 90)),
      'agent_steps_per_s': len(after) / wall, 'updates_per_s': len(updates) / wall,
      'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
  }
  print(json.dumps(result, indent=1))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
  main()
