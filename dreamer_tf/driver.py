"""Steps one environment with a policy and reports transitions (embodied.Driver, one env).

A stored transition is the observation x_t with the action a_t the policy chose at x_t, so the
world model sees (x_t, a_{t-1}) at step t, as in the official replay.

`save`/`load` capture the position mid-episode (current observation, policy state, episode
score) together with the env's state when the env offers `get_state`/`set_state`, so a resumed
run continues the same episode; otherwise a resumed run starts a new episode.
"""
import base64

import numpy as np
import tensorflow as tf


class Driver:

  def __init__(self, env, agent_state):
    """agent_state: callable(batch) -> initial policy state (latent, previous action)."""
    self.env = env
    self._initial = agent_state
    self.obs = None
    self.state = None
    self.episode = {'score': 0.0, 'length': 0}
    self.on_step, self.on_episode = [], []

  def reset(self):
    self.obs = None

  def save(self):
    """JSON-able position, or None when the env state cannot be saved."""
    if not hasattr(self.env, 'get_state'):
      return None
    obs, state = self.obs, self.state
    return {'env': self.env.get_state(), 'episode': dict(self.episode),
            'obs': None if obs is None else {k: _encode(v) for k, v in obs.items()},
            'state': None if state is None else [_encode(x) for x in tf.nest.flatten(state)]}

  def load(self, saved):
    """Restores a `save` result; returns whether the episode continues."""
    if saved is None or not hasattr(self.env, 'set_state'):
      return False
    self.env.set_state(saved['env'])
    self.episode = dict(saved['episode'])
    self.obs = saved['obs'] and {k: _decode(v) for k, v in saved['obs'].items()}
    self.state = saved['state'] and tf.nest.pack_sequence_as(
        self._initial(1), [tf.constant(_decode(x)) for x in saved['state']])
    return True

  def __call__(self, policy, steps=0, episodes=0):
    """policy(obs_batch, state) -> (action (1, A), state). Runs until either count is reached."""
    step = episode = 0
    while (steps and step < steps) or (episodes and episode < episodes):
      if self.obs is None:
        self.obs = self.env.reset()
        self.state = self._initial(1)
      obs = self.obs
      batch = {k: np.asarray(v)[None] for k, v in obs.items()}
      action, self.state = policy(batch, self.state)
      action = action[0] * (1.0 - float(obs['is_last']))  # zeroed at episode ends (official)
      if obs['is_first']:
        self.episode = {'score': 0.0, 'length': 0}
      else:
        self.episode['score'] += float(obs['reward'])
        self.episode['length'] += 1
      transition = {**obs, 'action': action.astype(np.float32)}
      step += 1
      for fn in self.on_step:
        fn(transition)
      if obs['is_last']:
        episode += 1
        for fn in self.on_episode:
          fn(dict(self.episode))
        self.obs = None
      else:
        self.obs = self.env.step(action)
    return step, episode


def _encode(value):
  array = np.asarray(value)
  return {'dtype': array.dtype.str, 'shape': array.shape,
          'data': base64.b64encode(array.tobytes()).decode()}


def _decode(saved):
  array = np.frombuffer(base64.b64decode(saved['data']), saved['dtype']).reshape(saved['shape'])
  return array.copy() if array.shape else array[()]


def random_policy(act_space, seed=0):
  rng = np.random.default_rng(seed)
  size = act_space['shape'][0]

  def policy(obs, state):
    if act_space['discrete']:
      action = np.eye(size, dtype=np.float32)[rng.integers(0, size, 1)]
    else:
      action = rng.uniform(-1, 1, (1, size)).astype(np.float32)
    return action, state
  return policy, rng


class Ratio:
  """Updates to run per agent step so that updates / steps = ratio (embodied.when.Ratio)."""

  def __init__(self, ratio, prev=None):
    self.ratio, self.prev = ratio, prev

  def __call__(self, step):
    if self.ratio == 0:
      return 0
    if self.prev is None:
      self.prev = step
      return 1
    repeats = int((step - self.prev) * self.ratio)
    self.prev += repeats / self.ratio
    return repeats


class Every:
  """`steps` updates every `every` agent steps, `pretrain` at the first call (dreamerv2@07d906e
  common.Every + train.py's pretrain loop; dreamer@56d4d44 tools.Every + tools.Once)."""

  def __init__(self, every, steps, pretrain, prev=None):
    self.every, self.steps, self.pretrain, self.prev = every, steps, pretrain, prev

  def __call__(self, step):
    if self.prev is None:
      self.prev = step
      return self.pretrain
    if step >= self.prev + self.every:
      self.prev += self.every
      return self.steps
    return 0
