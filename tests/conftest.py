import os

# `make test` runs two pytest-xdist workers: on a GPU machine each takes GPU memory as it needs
# it rather than TensorFlow's default of nearly all of it, which would leave the other none.
os.environ.setdefault('TF_FORCE_GPU_ALLOW_GROWTH', 'true')

import dreamer_tf  # noqa: F401,E402  (before TensorFlow: the runtime defaults it sets)
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
  """Deterministic ops in every process that runs tests. pytest-xdist's controller runs none, so
  it skips TensorFlow's import (5 s and 0.6 GB). Here, outside pytest's capture, TensorFlow's
  start-up lines are kept off the terminal as in the entry points."""
  if config.getoption('dist', 'no') != 'no' and not hasattr(config, 'workerinput'):
    return
  from dreamer_tf import quiet
  quiet.quiet_tensorflow(verbose=False)
  import tensorflow as tf
  tf.config.experimental.enable_op_determinism()


@pytest.fixture
def image_space():
  return {'image': ((64, 64, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
          'is_last': ((), bool), 'is_terminal': ((), bool)}


def random_batch(agent, batch, length, seed=0):
  rng = np.random.default_rng(seed)
  out = {}
  for key, (shape, dtype) in agent.data_space.items():
    full = (batch, length, *shape)
    if dtype == np.uint8:
      out[key] = rng.integers(0, 256, full, dtype=np.uint8)
    elif dtype == np.bool_:
      out[key] = np.zeros(full, bool)
    else:
      out[key] = rng.normal(size=full).astype(np.float32)
  if agent.discrete:
    out['action'] = np.eye(agent.act_shape[0], dtype=np.float32)[
        rng.integers(0, agent.act_shape[0], (batch, length))]
  out['is_first'][:, 0] = True
  return out
