"""Environment registry: `make('<suite>_<task>', config)` or `make('gym:<id>', config)`.

Every env returns dict observations with `reward`, `is_first`, `is_last`, `is_terminal` and
exposes `obs_space` {key: (shape, dtype)} and `act_space` {'shape': (A,), 'discrete': bool}.
Discrete actions are one-hot vectors, as the official OneHotAction wrapper makes them.
"""
SUITES = ('atari', 'dummy', 'dmc')
GYM = 'gym:'  # gymnasium ids hold '-', '/', ':' and '_', so the suite ends at a colon
# The presets after `dreamerv3` for each suite, as reproduce/atari100k.py and dmc.py pick them.
DOMAIN_PRESETS = {'atari': ['atari100k'], 'dmc': ['dmc_vision'], 'dummy': [], 'gym': ['gym']}


def split(task):
  """'atari_pong' -> ('atari', 'pong'); 'gym:CartPole-v1' -> ('gym', 'CartPole-v1')."""
  if task.startswith(GYM):
    return 'gym', task[len(GYM):]
  suite, _, name = task.partition('_')
  if suite not in SUITES or not name:
    raise ValueError(f"Unknown task '{task}'. Tasks look like <suite>_<name> (suites: "
                     f"{', '.join(SUITES)}) or gym:<gymnasium id or module:factory>.")
  return suite, name


def make(task, config, seed=0):
  suite, name = split(task)
  kwargs = config.env[suite].to_dict()
  if suite == 'gym':
    from . import gym
    return gym.make(name, seed=seed, **kwargs)
  if suite == 'atari':
    from . import atari
    return atari.Atari(name, seed=seed, **kwargs)
  if suite == 'dmc':
    from . import dmc
    return dmc.DMC(name, seed=seed, **kwargs)
  from . import dummy
  return dummy.Dummy(name, seed=seed, **kwargs)


def adapt(env, config, seed=0):
  """A gymnasium.Env wrapped for the agent (settings `env.gym`); one of ours is returned as is."""
  import gymnasium
  if isinstance(env, gymnasium.Env):
    from . import gym
    return gym.Gym(env, seed=seed, **config.env.gym.to_dict())
  if not all(hasattr(env, a) for a in ('obs_space', 'act_space', 'reset', 'step', 'close')):
    raise TypeError(f'Expected a gymnasium.Env or a dreamer_tf env (obs_space, act_space, reset, '
                    f'step, close), got {type(env).__name__}.')
  return env
