"""Steps a batch of environments with one policy call per step (embodied.Driver, 8fa35f8).

Each call of the policy acts for all N envs at once; env i is then stepped with its action, or
reset when its last observation ended an episode (is_last), so every env runs its own episodes
and the policy state (latent, previous action) is reset per env by `is_first`, as in the
official driver. Each env's transition is reported to `on_step(transition, worker)` and counts
as one step; a finished episode goes to `on_episode(episode, worker)`. A stored transition is
the observation x_t with the action a_t the policy chose at x_t, so the world model sees
(x_t, a_{t-1}) at step t, as in the official replay.

`save`/`load` capture the position mid-episode (current observations, policy state, episode
scores) together with the envs' states when every env offers `get_state`/`set_state`, so a
resumed run continues the same episodes; otherwise a resumed run starts new episodes.
"""
import base64

import numpy as np
import tensorflow as tf

from .envs import vector


class Driver:

  def __init__(self, env, agent_state, extras=None):
    """env: an envs.vector.Batch, or one env (a batch of one); agent_state: callable(batch) ->
    initial policy state (latent, previous action); extras: callable(policy state) -> {key:
    (N, ...) array} stored with each env's transition (replay_context: Agent.context_of)."""
    self.env = env if isinstance(env, vector.Batch) else vector.Batch([lambda: env])
    self._initial = agent_state
    self.obs = None    # the N observations the policy acts on next; None: reset all envs
    self.state = None
    self.episodes = [{'score': 0.0, 'length': 0} for _ in range(len(self.env))]
    self.on_step, self.on_episode = [], []
    self.extras = extras

  def save(self):
    """JSON-able position, or None when an env state cannot be saved."""
    if not self.env.savable:
      return None
    obs, state = self.obs, self.state
    return {'env': self.env.get_state(), 'episodes': [dict(ep) for ep in self.episodes],
            'obs': None if obs is None else [{k: _encode(v) for k, v in o.items()} for o in obs],
            'state': None if state is None else [_encode(x) for x in tf.nest.flatten(state)]}

  def load(self, saved):
    """Restores a `save` result; returns whether the episodes continue."""
    if (saved is None or not self.env.savable or 'episodes' not in saved
        or len(saved['episodes']) != len(self.env)):
      return False
    self.env.set_state(saved['env'])
    self.episodes = [dict(ep) for ep in saved['episodes']]
    self.obs = saved['obs'] and [{k: _decode(v) for k, v in o.items()} for o in saved['obs']]
    self.state = saved['state'] and tf.nest.pack_sequence_as(
        self._initial(len(self.env)), [tf.constant(_decode(x)) for x in saved['state']])
    return True

  def __call__(self, policy, steps=0, episodes=0):
    """policy(obs (N, ...), state) -> (action (N, A), state). Runs until either count (over all
    envs) is reached; returns the steps and episodes done."""
    step = episode = 0
    amount = len(self.env)
    while (steps and step < steps) or (episodes and episode < episodes):
      if self.obs is None:
        self.obs = self.env.step([None] * amount, [True] * amount)
        self.state = self._initial(amount)
      batch = vector.stack(self.obs)
      action, self.state = policy(batch, self.state)
      last = batch['is_last'].astype(bool)
      action = action * (1.0 - last[:, None])  # zeroed at episode ends (official)
      extras = self.extras(self.state) if self.extras else {}
      for i, obs in enumerate(self.obs):
        ep = self.episodes[i]
        if obs['is_first']:
          ep.update(score=0.0, length=0)
        else:
          ep['score'] += float(obs['reward'])
          ep['length'] += 1
        transition = {**obs, 'action': action[i].astype(np.float32),
                      **{k: v[i] for k, v in extras.items()}}
        step += 1
        for fn in self.on_step:
          fn(transition, i)
        if last[i]:
          episode += 1
          for fn in self.on_episode:
            fn(dict(ep), i)
      self.obs = self.env.step(action, last)
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
    amount = len(obs['is_first'])
    if act_space['discrete']:
      action = np.eye(size, dtype=np.float32)[rng.integers(0, size, amount)]
    else:
      action = rng.uniform(-1, 1, (amount, size)).astype(np.float32)
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
