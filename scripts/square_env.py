"""A visual task with simple, fully learnable dynamics, for the open-loop report's figure
(results/openloop_square.png): a 64x64 image with a white 8x8 square that moves 4 px left,
not at all, or right per action (Discrete(3), clipped at the borders) while it bobs up and down
on a fixed 16-step cycle. Reward 1 while the square is in the right half; 100-step episodes.

    python -m dreamer_tf.train --task gym:scripts.square_env:make --preset debug ...
"""
import gymnasium
import numpy as np


class Square(gymnasium.Env):

  observation_space = gymnasium.spaces.Box(0, 255, (64, 64, 3), np.uint8)
  action_space = gymnasium.spaces.Discrete(3)
  BOB = (np.sin(np.arange(16) / 16 * 2 * np.pi) * 20).round().astype(int)

  def reset(self, seed=None, options=None):
    super().reset(seed=seed)
    self.x = int(self.np_random.integers(0, 57))
    self.t = int(self.np_random.integers(0, 16))
    return self._image(), {}

  def step(self, action):
    self.x = int(np.clip(self.x + 4 * (int(action) - 1), 0, 56))
    self.t += 1
    return self._image(), float(self.x >= 28), False, False, {}

  def _image(self):
    image = np.zeros((64, 64, 3), np.uint8)
    y = 28 + self.BOB[self.t % 16]
    image[y:y + 8, self.x:self.x + 8] = 255
    return image


def make():
  return gymnasium.wrappers.TimeLimit(Square(), 100)
