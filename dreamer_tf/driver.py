"""Steps one environment with a policy and reports transitions (embodied.Driver, one env).

A stored transition is the observation x_t with the action a_t the policy chose at x_t, so the
world model sees (x_t, a_{t-1}) at step t, as in the official replay.
"""
import numpy as np


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
