"""A batch of environments stepped together (embodied.BatchEnv + embodied.Parallel, 8fa35f8).

`Batch(ctors, parallel)` builds one env per constructor, in this process (`parallel: none`) or
each in its own subprocess (`process`, started with `spawn` so that no TensorFlow state is
forked; constructors travel with cloudpickle, so closures and lambdas work). `step(actions,
reset)` resets env i where `reset[i]` and otherwise steps it with `actions[i]`, all envs at once,
and returns their observations in order. Errors inside a worker are raised here with the
worker's traceback and the env's index.
"""
import multiprocessing
import signal
import traceback

import cloudpickle
import numpy as np

PARALLEL = ('none', 'process')


class Batch:

  def __init__(self, ctors, parallel='none'):
    if parallel not in PARALLEL:
      raise ValueError(f"Unknown envs.parallel '{parallel}'. Valid: {', '.join(PARALLEL)}.")
    if not ctors:
      raise ValueError('envs.amount must be at least 1.')
    self.envs = []
    try:
      for index, ctor in enumerate(ctors):  # all workers start before the first one is awaited
        self.envs.append(_Process(ctor, index) if parallel == 'process' else _Local(ctor))
      infos = [env.info() for env in self.envs]
    except BaseException:
      self.close()
      raise
    self.obs_space, self.act_space = infos[0]['obs_space'], infos[0]['act_space']
    for index, info in enumerate(infos[1:], 1):
      if (info['obs_space'], info['act_space']) != (self.obs_space, self.act_space):
        raise ValueError(f'Env {index} has spaces {info} but env 0 has '
                         f'{self.obs_space}, {self.act_space}; all envs of a batch must match.')
    self.savable = all(info['savable'] for info in infos)

  def __len__(self):
    return len(self.envs)

  def step(self, actions, reset):
    """actions (N, A), reset (N,) bool -> list of N observation dicts."""
    futures = [env.call('reset') if first else env.call('step', action)
               for env, action, first in zip(self.envs, actions, reset)]
    return [future() for future in futures]

  def get_state(self):
    """Every env's state (requires `savable`: all envs offer get_state/set_state)."""
    return [future() for future in [env.call('get_state') for env in self.envs]]

  def set_state(self, states):
    for future in [env.call('set_state', s) for env, s in zip(self.envs, states)]:
      future()

  def close(self):
    for env in self.envs:
      env.close()
    self.envs = []


class _Local:
  """An env in this process, behind the same call()/future interface as a worker."""

  def __init__(self, ctor):
    self.env = ctor()

  def info(self):
    return _info(self.env)

  def call(self, name, *args):
    result = getattr(self.env, name)(*args)
    return lambda: result

  def close(self):
    self.env.close()


class _Process:
  """An env in a spawned subprocess; `call` sends a request and returns a future."""

  def __init__(self, ctor, index):
    context = multiprocessing.get_context('spawn')
    self.index = index
    self.pipe, child = context.Pipe()
    self.process = context.Process(
        target=_worker, args=(child, cloudpickle.dumps(ctor)), daemon=True)
    self.process.start()
    child.close()

  def info(self):
    return self._receive()

  def call(self, name, *args):
    self.pipe.send((name, args))
    return self._receive

  def _receive(self):
    try:
      status, payload = self.pipe.recv()
    except (EOFError, ConnectionError) as e:
      raise RuntimeError(f'Env worker {self.index} died (exit code '
                         f'{self.process.exitcode}).') from e
    if status == 'error':
      raise RuntimeError(f'Env worker {self.index} failed:\n{payload}')
    return payload

  def close(self):
    try:
      self.pipe.send(('close', ()))
      self.pipe.recv()
    except (OSError, EOFError):
      pass
    self.process.join(5)
    if self.process.is_alive():
      self.process.kill()
    self.pipe.close()


def _info(env):
  return {'obs_space': env.obs_space, 'act_space': env.act_space,
          'savable': hasattr(env, 'get_state') and hasattr(env, 'set_state')}


def _worker(pipe, ctor):
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it saves, then closes us
  env = None
  try:
    env = cloudpickle.loads(ctor)()
    pipe.send(('ok', _info(env)))
    while True:
      name, args = pipe.recv()
      if name == 'close':
        break
      pipe.send(('ok', getattr(env, name)(*args)))
  except EOFError:  # the parent is gone
    pass
  except Exception:  # reported to the parent, which raises it
    pipe.send(('error', traceback.format_exc()))
  finally:
    if env is not None:
      env.close()
    try:
      pipe.send(('ok', None))
    except OSError:
      pass
    pipe.close()


def stack(observations):
  """List of N obs dicts -> dict of (N, ...) arrays."""
  return {k: np.stack([np.asarray(obs[k]) for obs in observations]) for k in observations[0]}
