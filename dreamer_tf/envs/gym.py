"""Any gymnasium environment as a dreamer_tf env (task `gym:<id>` or `gym:<module>:<factory>`).

Observations become the dict the agent models: a `Box` of uint8 with shape (H, W, C) is an image,
area-resized (OpenCV INTER_AREA, as envs/atari.py) to `env.gym.size` when it differs; any other
`Box` is a float32 vector flattened to (N,) (rank 0 stays (), which the encoder leaves out as in
envs/dmc.py); `Discrete(n)` is a one-hot float32 vector (n,); a `Dict` of these keeps its keys,
and a single space is named `image` or `vector` by its kind.

Actions are what the agent's one action head emits: `Discrete(n)` a one-hot vector (n,);
`Box` a vector in [-1, 1], clipped and mapped linearly to the finite bounds (as envs/dmc.py and
the official NormalizeAction); `MultiDiscrete` / `MultiBinary` one joint one-hot over every
combination (at most MAX_JOINT_ACTIONS). `terminated` sets `is_terminal` and `is_last`,
`truncated` (a time limit) only `is_last`; `repeat` > 1 repeats each action and sums rewards.
"""
import importlib
import re

import numpy as np

MAX_JOINT_ACTIONS = 1024
RESERVED = ('reward', 'is_first', 'is_last', 'is_terminal', 'action')
OBS_SPACES = 'Box, Discrete, or a Dict of these'
ACT_SPACES = 'Discrete, Box with finite bounds, MultiDiscrete or MultiBinary'
FACTORY = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$')


def make(name, size=(64, 64), repeat=1, seed=0):
  """`name`: a gymnasium id (`CartPole-v1`, `module:Env-v0` registered on import) or
  `module:factory`, an attribute of an importable module called without arguments."""
  module, _, attr = name.rpartition(':')
  if module and FACTORY.match(attr):
    factory = getattr(importlib.import_module(module), attr, None)
    if factory is not None:
      return Gym(factory(), size, repeat, seed, name)
  return Gym(_make_by_id(name), size, repeat, seed, name)


def _make_by_id(env_id):
  """gymnasium.make(env_id), with render_mode='rgb_array' when the env offers it."""
  import gymnasium
  from gymnasium.envs.registration import load_env_creator
  module, _, bare = env_id.rpartition(':')
  if module:
    importlib.import_module(module)
  try:
    spec = gymnasium.spec(bare)
  except gymnasium.error.Error as e:
    factory = f" (nor is '{bare}' an attribute of module '{module}')" if module else ''
    raise ValueError(f"Unknown gymnasium env id '{env_id}'{factory}: {e}") from e
  creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else (
      spec.entry_point)
  modes = getattr(creator, 'metadata', {}).get('render_modes') or ()
  return gymnasium.make(spec, **({'render_mode': 'rgb_array'} if 'rgb_array' in modes else {}))


def _space_error(kind, space, valid, where=''):
  return ValueError(f'Unsupported {kind} space {space}{where}. Supported: {valid}.')


class Gym:
  """A gymnasium.Env with dreamer_tf's interface (obs_space, act_space, reset, step)."""

  def __init__(self, env, size=(64, 64), repeat=1, seed=0, name=None):
    import gymnasium
    if not isinstance(env, gymnasium.Env):
      raise TypeError(f'Expected a gymnasium.Env, got {type(env).__name__} from {name or env}.')
    import cv2
    self._cv2 = cv2
    self._env, self._size, self._repeat, self._seed = env, tuple(size), repeat, seed
    self._single = not isinstance(env.observation_space, gymnasium.spaces.Dict)
    self._obs_kinds = self._parse_obs(env.observation_space)
    self._shapes = {key: self._shape(kind, space) for key, (kind, space) in self._obs_kinds.items()}
    self._act = self._parse_act(env.action_space)

  # --- spaces ------------------------------------------------------------------------------------
  def _parse_obs(self, space):
    """{key: (kind, space)} with kind image | vector | onehot."""
    from gymnasium import spaces
    if isinstance(space, spaces.Dict):
      clash = sorted(set(space.spaces) & set(RESERVED))
      if clash:
        raise ValueError(f'Observation keys {clash} clash with the keys dreamer_tf adds '
                         f"({', '.join(RESERVED)}); rename them.")
      return {key: (self._obs_kind(sub, f" at key '{key}'"), sub)
              for key, sub in space.spaces.items()}
    kind = self._obs_kind(space)
    return {'image' if kind == 'image' else 'vector': (kind, space)}

  @staticmethod
  def _obs_kind(space, where=''):
    from gymnasium import spaces
    if isinstance(space, spaces.Box):
      return 'image' if len(space.shape) == 3 and space.dtype == np.uint8 else 'vector'
    if isinstance(space, spaces.Discrete):
      return 'onehot'
    raise _space_error('observation', space, OBS_SPACES, where)

  @staticmethod
  def _parse_act(space):
    from gymnasium import spaces
    if isinstance(space, spaces.Discrete):
      return {'kind': 'discrete', 'size': int(space.n), 'start': int(space.start)}
    if isinstance(space, spaces.Box):
      if not np.issubdtype(space.dtype, np.floating):
        raise _space_error('action', space, ACT_SPACES, ' (integer Box: use Discrete)')
      if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise _space_error('action', space, ACT_SPACES,
                           ' (infinite bounds: the agent acts in [-1, 1], mapped to the bounds)')
      return {'kind': 'box', 'size': int(np.prod(space.shape)), 'shape': space.shape,
              'low': space.low.astype(np.float64), 'high': space.high.astype(np.float64),
              'dtype': space.dtype}
    if isinstance(space, (spaces.MultiDiscrete, spaces.MultiBinary)):
      multi = isinstance(space, spaces.MultiDiscrete)
      nvec = np.asarray(space.nvec if multi else np.full(space.shape, 2), np.int64)
      if nvec.prod() > MAX_JOINT_ACTIONS:
        raise _space_error('action', space, ACT_SPACES, (
            f' ({nvec.prod():,} joint actions, more than {MAX_JOINT_ACTIONS:,} for one head)'))
      start = np.asarray(space.start if multi else 0, np.int64)
      return {'kind': 'multi', 'size': int(nvec.prod()), 'nvec': tuple(nvec.reshape(-1)),
              'shape': nvec.shape, 'start': start, 'dtype': space.dtype}
    raise _space_error('action', space, ACT_SPACES, ' (the agent has a single action head)')

  def _shape(self, kind, space):
    if kind == 'image':
      return (*self._size, space.shape[-1])
    if kind == 'onehot':
      return (int(space.n),)
    return () if space.shape == () else (int(np.prod(space.shape)),)

  @property
  def obs_space(self):
    obs = {key: (shape, np.uint8 if self._obs_kinds[key][0] == 'image' else np.float32)
           for key, shape in self._shapes.items()}
    return {**obs, 'reward': ((), np.float32), 'is_first': ((), bool), 'is_last': ((), bool),
            'is_terminal': ((), bool)}

  @property
  def act_space(self):
    return {'shape': (self._act['size'],), 'discrete': self._act['kind'] != 'box'}

  # --- stepping ----------------------------------------------------------------------------------
  def env_action(self, action):
    """The agent's action (one-hot or [-1, 1] vector) as the env's action."""
    act, action = self._act, np.asarray(action)
    if act['kind'] == 'discrete':
      return act['start'] + int(np.argmax(action))
    if act['kind'] == 'multi':
      index = np.array(np.unravel_index(int(np.argmax(action)), act['nvec']), np.int64)
      return (act['start'] + index.reshape(act['shape'])).astype(act['dtype'])
    assert np.isfinite(action).all(), action  # as envs/dmc.py
    unit = (np.clip(action.astype(np.float64), -1, 1) + 1) / 2
    return (act['low'] + unit.reshape(act['shape']) * (act['high'] - act['low'])).astype(
        act['dtype'])

  def reset(self):
    if self._seed is not None:
      obs, _ = self._env.reset(seed=int(self._seed))
      self._seed = None
    else:
      obs, _ = self._env.reset()
    return self._obs(obs, 0.0, is_first=True)

  def step(self, action):
    action = self.env_action(action)
    total = 0.0
    for _ in range(self._repeat):
      obs, reward, terminated, truncated, _ = self._env.step(action)
      total += float(reward)
      if terminated or truncated:
        break
    return self._obs(obs, total, is_last=bool(terminated or truncated),
                     is_terminal=bool(terminated))

  def _obs(self, raw, reward, is_first=False, is_last=False, is_terminal=False):
    if self._single:
      raw = {next(iter(self._obs_kinds)): raw}
    obs = {}
    for key, (kind, space) in self._obs_kinds.items():
      value = np.asarray(raw[key])
      if kind == 'image':
        if value.shape[:2] != self._size:
          value = self._cv2.resize(value, self._size[::-1], interpolation=self._cv2.INTER_AREA)
          value = value.reshape(self._shapes[key])  # OpenCV drops a channel axis of 1
      elif kind == 'onehot':
        value = np.eye(space.n, dtype=np.float32)[int(value) - space.start]
      else:
        value = value.astype(np.float32).reshape(self._shapes[key])
      obs[key] = value
    return {**obs, 'reward': np.float32(reward), 'is_first': is_first, 'is_last': is_last,
            'is_terminal': is_terminal}

  def render(self):
    """The env's RGB frame (H, W, 3) uint8, or None when it was not made with rgb_array."""
    if self._env.render_mode != 'rgb_array':
      return None
    return np.asarray(self._env.render(), np.uint8)

  def close(self):
    self._env.close()
