"""Small learnable tasks for tests and smoke runs.

`dummy_disc`: the image is filled with one of A grey levels; the reward is 1 when the one-hot
action names that level, else 0; the level changes every step. A random policy earns
length / A per episode, a perfect one `length`. `dummy_cont`: the grey level encodes a target
t in [-1, 1] and the reward is 1 - |a - t| / 2 for a 1-D continuous action a.
"""
import numpy as np


class Dummy:

  def __init__(self, name, size=(64, 64), length=100, seed=0, actions=4):
    if name not in ('disc', 'cont'):
      raise ValueError(f"Unknown dummy task '{name}'. Valid: disc, cont.")
    self._discrete = name == 'disc'
    self._size, self._length, self._actions = tuple(size), length, actions
    self._random = np.random.RandomState(seed)
    self._target, self._step = 0, 0

  @property
  def obs_space(self):
    return {'image': ((*self._size, 3), np.uint8), 'reward': ((), np.float32),
            'is_first': ((), bool), 'is_last': ((), bool), 'is_terminal': ((), bool)}

  @property
  def act_space(self):
    return {'shape': (self._actions if self._discrete else 1,), 'discrete': self._discrete}

  def _image(self):
    level = self._target if self._discrete else (self._target + 1) / 2 * (self._actions - 1)
    value = int(round(255 * level / (self._actions - 1)))
    return np.full((*self._size, 3), value, np.uint8)

  def _draw(self):
    if self._discrete:
      self._target = self._random.randint(self._actions)
    else:
      self._target = self._random.randint(self._actions) / (self._actions - 1) * 2 - 1

  def reset(self):
    self._step = 0
    self._draw()
    return {'image': self._image(), 'reward': np.float32(0.0), 'is_first': True,
            'is_last': False, 'is_terminal': False}

  def step(self, action):
    action = np.asarray(action)
    if self._discrete:
      reward = float(int(np.argmax(action)) == self._target)
    else:
      reward = 1.0 - abs(float(np.clip(action[0], -1, 1)) - self._target) / 2
    self._step += 1
    self._draw()
    last = self._step >= self._length
    return {'image': self._image(), 'reward': np.float32(reward), 'is_first': False,
            'is_last': last, 'is_terminal': False}

  def get_state(self):
    """JSON-able state (RNG, target, step) for checkpoints."""
    name, keys, pos, has_gauss, gauss = self._random.get_state()
    return {'rng': [name, keys.tolist(), pos, has_gauss, gauss], 'target': self._target,
            'step': self._step}

  def set_state(self, state):
    name, keys, pos, has_gauss, gauss = state['rng']
    self._random.set_state((name, np.array(keys, np.uint32), pos, has_gauss, gauss))
    self._target, self._step = state['target'], state['step']

  def close(self):
    pass
