"""dreamer_tf: Dreamer agents (V1, V2, V3) in TensorFlow 2 / Keras with TFP distributions.

`dreamer_tf.train(env_fn, ...)` trains on an env built in code; `python -m dreamer_tf.train` is the
command line for registered tasks. TensorFlow is imported on the first call, not here.
"""
import os

__version__ = '0.1.0'

# oneDNN's kernels and allocator on every x86 CPU. TensorFlow turns them on by default only
# where it finds AVX512_VNNI/BF16 or AMX; elsewhere (an AVX2 AMD EPYC here) it runs Eigen's kernels
# on malloc, which maps every block over 32 MB fresh from the kernel and faults its pages in again
# each update (~1.5M page faults per XS update). There: XS 9.4 -> 5.6 s per update (README,
# Performance). Read when TensorFlow starts; TF_ENABLE_ONEDNN_OPTS=0 before importing dreamer_tf
# keeps Eigen's.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
# tf.keras as Keras 2 (tf_keras, the Keras every module here uses). Otherwise `import tensorflow`
# loads Keras 3 and, through it, matplotlib: 1.0-1.5 s of every start-up and ~58 MB of RSS on this
# project's CPUs, for a Keras nothing here calls (README, Performance). TF_USE_LEGACY_KERAS=0
# before importing dreamer_tf keeps Keras 3 as tf.keras.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

DEFAULT_PRESETS = ('dreamerv3', 'gym', 's')


def train(env_fn, config=None, *, logdir, force=False, log=print, **overrides):
  """Trains on `env_fn()` envs (a gymnasium.Env, wrapped per `env.gym`, or a dreamer_tf env) in
  `logdir` with checkpoints and resume as `python -m dreamer_tf.train`; returns run.run's summary.

  config: None (presets DEFAULT_PRESETS), a list of preset names, or a `config.Config`.
  overrides: config keys, nested as dicts: `run={'steps': 5000}, batch_size=8`. `task` is only
  the label of the run (default `gym:<env_fn's name>`), as `seed` seeds the first reset.
  """
  from . import config as config_lib
  from . import envs
  from . import run
  if config is None or isinstance(config, (list, tuple)):
    config = config_lib.load(DEFAULT_PRESETS if config is None else config)
  name = getattr(env_fn, '__qualname__', type(env_fn).__name__).strip('<>')
  config = config.update({'task': f'gym:{name}', **overrides})
  return run.run(config, logdir, force=force, log=log,
                 make_env=lambda seed: envs.adapt(env_fn(), config, seed))


def __getattr__(name):
  """`dreamer_tf.load_policy` (policy.load_policy), imported on first use with TensorFlow."""
  if name == 'load_policy':
    from .policy import load_policy
    return load_policy
  raise AttributeError(f"module 'dreamer_tf' has no attribute '{name}'")
