"""Two updates of one agent on one device and of the same agent on two replicas, on the same
global batch; prints the largest differences as JSON (tests/test_distribute.py runs this).

  python tests/distributed_update.py mirrored          # two logical CPU devices, one process
  python tests/distributed_update.py worker I PORTS    # worker I of a two-process TF_CONFIG
  python tests/distributed_update.py run LOGDIR        # run.run mirrored on two logical CPUs

Random draws are replaced by the modes of their distributions (one-hot argmax, zero Normal
noise, the truncated Normal's median), which do not depend on how the batch is split, so the
two updates must agree up to float32 summation order.
"""
import json
import os
import sys

import numpy as np

MODE = sys.argv[1]
if MODE == 'worker':
  index, ports = int(sys.argv[2]), sys.argv[3].split(',')
  os.environ['TF_CONFIG'] = json.dumps({
      'cluster': {'worker': [f'localhost:{p}' for p in ports]},
      'task': {'type': 'worker', 'index': index}})

import tensorflow as tf  # noqa: E402

if MODE in ('mirrored', 'run'):
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from dreamer_tf import agent as agent_lib  # noqa: E402
from dreamer_tf import config as cfg  # noqa: E402
from dreamer_tf import distribute  # noqa: E402
from dreamer_tf import distributions as dists  # noqa: E402
from dreamer_tf.envs import dummy  # noqa: E402


class ModeDraws(dists.Draws):

  def draw(self, site, dist, seed):
    base = dists._base(dist)
    if isinstance(base, dists.OneHotST):
      probs = base.probs_parameter()
      return tf.one_hot(tf.argmax(probs, -1), probs.shape[-1], dtype=probs.dtype)
    eps = dists.noise(dist, seed)
    return tf.fill(tf.shape(eps), 0.5) if isinstance(base, dists.TruncNormal) else 0.0 * eps


def batch_of(config, act):
  rng = np.random.default_rng(1)
  B, T = config.batch_size, config.batch_length
  batch = {'image': rng.integers(0, 255, (B, T, 16, 16, 3), dtype=np.uint8),
           'reward': rng.normal(0, 1, (B, T)).astype(np.float32),
           'is_first': np.zeros((B, T), bool), 'is_terminal': rng.random((B, T)) < 0.05,
           'action': np.eye(act, dtype=np.float32)[rng.integers(0, act, (B, T))]}
  batch['is_first'][:, 0] = True
  return batch


def agent(config, env, strategy):
  agent = agent_lib.Agent(env.obs_space, env.act_space, config.update({'run.strategy': strategy}))
  agent.set_draws(ModeDraws())
  return agent


def values(agent):
  """Every variable's value(s): each replica's copy of a mirrored one."""
  out = {}
  for i, var in enumerate(agent.variables):
    copies = getattr(var, 'values', (var,))
    for j, copy in enumerate(copies):
      out[f'{i}:{j}'] = copy.numpy()  # keyed by position: Keras names differ per agent
  return out


def train_run(logdir):
  """A short mirrored run, then its resume with a larger budget."""
  from dreamer_tf import run
  args = ['--task', 'dummy_disc', '--env.dummy.size', '16,16', '--env.dummy.length', '20',
          '--run.strategy', 'mirrored', '--run.train_ratio', '16']
  for steps in (70, 90):
    out = run.run(cfg.load(['dreamerv3', 'debug'], args + ['--run.steps', str(steps)]), logdir,
                  log=lambda m: print(m, flush=True))
    print('RESULT ' + json.dumps({'step': out['step'], 'updates': out['updates']}), flush=True)


def main():
  config = cfg.load(['dreamerv3', 'debug'], ['--task', 'dummy_disc', '--env.dummy.size', '16,16',
                                             '--batch_size', '4', '--compile', 'graph'])
  env = dummy.Dummy('disc', size=(16, 16))
  two = agent(config, env, 'mirrored' if MODE == 'mirrored' else 'multi_worker')
  one = agent(config, env, 'default')
  batch = batch_of(config, env.act_space['shape'][0])
  init = {k.rsplit(':', 1)[0]: v for k, v in values(one).items()}
  initial = max(float(np.abs(v - init[k.rsplit(':', 1)[0]]).max())
                for k, v in values(two).items())
  metric_diffs = []
  for _ in range(2):
    m1, m2 = one.train(batch), two.train(batch)
    metric_diffs.append({k: abs(m1[k] - m2[k]) / max(1.0, abs(m1[k])) for k in m1})
  ref = {k.rsplit(':', 1)[0]: v for k, v in values(one).items()}
  diffs = {k: float(np.abs(v - ref[k.rsplit(':', 1)[0]]).max()) for k, v in values(two).items()}
  worst = max(diffs, key=diffs.get)
  worst = two.variables[int(worst.split(':')[0])].name
  replicas = {}
  for k, v in values(two).items():  # copies of one variable on different replicas
    replicas.setdefault(k.rsplit(':', 1)[0], []).append(v)
  spread = max(float(np.abs(c - cs[0]).max()) for cs in replicas.values() for c in cs)
  print('RESULT ' + json.dumps({
      'replicas': distribute.replicas(two.strategy), 'initial': initial,
      'params': max(diffs.values()), 'worst': worst,
      'metrics': {k: max(d[k] for d in metric_diffs) for k in metric_diffs[0]},
      'replica_spread': spread, 'variables': len(replicas),
      'step': int(two.model_opt.step.numpy())}), flush=True)


if __name__ == '__main__':
  train_run(sys.argv[2]) if MODE == 'run' else main()
