"""Atari through ale-py with the DreamerV3 protocol (dreamerv3@8fa35f8 embodied/envs/atari.py).

atari100k: repeat 4, sticky actions off, up to 30 no-ops (uniform in [0, 30)), 64x64 RGB by
OpenCV area interpolation of the max over the last two frames of each repeat, the minimal
("needed") action set, lives unused, 108000-frame limit.

DreamerV2 (dreamerv2@07d906e common/envs.py Atari through gym's AtariPreprocessing) differs in
two settings: no-ops uniform in [1, 30] (`noops_min: 1`) and grayscale taken from ALE's own
grayscale screens, max-pooled then area-resized (`gray_source: ale`), where DreamerV3 converts
the pooled, resized RGB frame with luminance weights (`gray_source: rgb`).
"""
import numpy as np

GAMES_ATARI100K = (
    'alien', 'amidar', 'assault', 'asterix', 'bank_heist', 'battle_zone', 'boxing', 'breakout',
    'chopper_command', 'crazy_climber', 'demon_attack', 'freeway', 'frostbite', 'gopher', 'hero',
    'jamesbond', 'kangaroo', 'krull', 'kung_fu_master', 'ms_pacman', 'pong', 'private_eye',
    'qbert', 'road_runner', 'seaquest', 'up_n_down')


class Atari:

  def __init__(self, game, repeat=4, size=(64, 64), gray=False, noops=0, lives='unused',
               sticky=True, actions='all', length=108000, resize='opencv', noops_min=0,
               gray_source='rgb', seed=0):
    import ale_py
    import ale_py.roms
    game = {'james_bond': 'jamesbond'}.get(game, game)
    valid = ale_py.roms.get_all_rom_ids()
    if game not in valid:
      raise ValueError(f"Unknown Atari game '{game}'. ale-py {ale_py.__version__} has: "
                       f"{', '.join(valid)}.")
    for key, value, choices in (('lives', lives, ('unused', 'discount', 'reset')),
                                ('actions', actions, ('all', 'needed')),
                                ('resize', resize, ('opencv', 'pillow')),
                                ('gray_source', gray_source, ('rgb', 'ale'))):
      if value not in choices:
        raise ValueError(f"Unknown env.atari.{key} '{value}'. Valid: {', '.join(choices)}.")
    import cv2
    self._cv2, self._resize = cv2, resize
    self._env = ale_py.AtariEnv(
        game=game, obs_type='rgb', frameskip=1,
        repeat_action_probability=0.25 if sticky else 0.0,
        full_action_space=(actions == 'all'))
    assert self._env.unwrapped.get_action_meanings()[0] == 'NOOP'
    self._ale = self._env.unwrapped.ale
    self._repeat, self._size, self._gray = repeat, tuple(size), gray
    self._noops, self._noops_min, self._lives, self._length = noops, noops_min, lives, length
    self._random = np.random.RandomState(seed)
    self._seed = seed
    shape = self._env.observation_space.shape
    self._ale_gray = gray and gray_source == 'ale'
    if self._ale_gray:
      shape = shape[:2]
    self._screen = self._ale.getScreenGrayscale if self._ale_gray else self._ale.getScreenRGB
    self._frames = [np.zeros(shape, np.uint8) for _ in range(2)]  # last, second to last
    self._frame_count = 0
    self._last_lives = None
    self.num_actions = int(self._env.action_space.n)

  @property
  def obs_space(self):
    return {'image': ((*self._size, 1 if self._gray else 3), np.uint8),
            'reward': ((), np.float32), 'is_first': ((), bool), 'is_last': ((), bool),
            'is_terminal': ((), bool)}

  @property
  def act_space(self):
    return {'shape': (self.num_actions,), 'discrete': True}

  def reset(self):
    if self._seed is not None:
      self._env.reset(seed=int(self._seed))
      self._seed = None
    else:
      self._env.reset()
    noops = self._noops_min + (self._random.randint(self._noops) if self._noops else 0)
    for _ in range(noops):
      _, _, over, _, _ = self._env.step(0)
      if over:
        self._env.reset()
    self._last_lives = self._ale.lives()
    self._frame_count = 0
    self._screen(self._frames[0])
    # The max-pool of the reset frame with itself: the official zeroes the other buffer, which
    # gives the same maximum.
    np.copyto(self._frames[1], self._frames[0])
    return self._obs(0.0, is_first=True)

  def step(self, action):
    index = int(np.argmax(action))
    total, dead, over = 0.0, False, False
    for _ in range(self._repeat):
      np.copyto(self._frames[1], self._frames[0])
      _, reward, terminated, truncated, _ = self._env.step(index)
      self._screen(self._frames[0])
      self._frame_count += 1
      total += reward
      over = terminated or truncated
      if over:
        break
      if self._lives != 'unused' and self._ale.lives() < self._last_lives:
        dead, self._last_lives = True, self._ale.lives()
        break
    limit = bool(self._length) and self._frame_count >= self._length
    return self._obs(
        total, is_last=over or limit or (dead and self._lives == 'reset'),
        is_terminal=over or dead)

  def _obs(self, reward, is_first=False, is_last=False, is_terminal=False):
    image = np.maximum(self._frames[0], self._frames[1])
    if image.shape[:2] != self._size and self._resize == 'pillow':  # the 2024 rewrite's default
      from PIL import Image
      image = np.array(Image.fromarray(image).resize(self._size[::-1], Image.BILINEAR))
    elif image.shape[:2] != self._size:
      image = self._cv2.resize(image, self._size[::-1], interpolation=self._cv2.INTER_AREA)
    if self._ale_gray:
      image = image[:, :, None]
    elif self._gray:
      weights = [0.299, 0.587, 1 - (0.299 + 0.587)]
      image = np.tensordot(image, weights, (-1, 0)).astype(np.uint8)[:, :, None]
    return {'image': image, 'reward': np.float32(reward), 'is_first': is_first,
            'is_last': is_last, 'is_terminal': is_terminal}

  def close(self):
    self._env.close()
