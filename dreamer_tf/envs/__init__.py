"""Environment registry: `make('<suite>_<task>', config)`.

Every env returns dict observations with `reward`, `is_first`, `is_last`, `is_terminal` and
exposes `obs_space` {key: (shape, dtype)} and `act_space` {'shape': (A,), 'discrete': bool}.
Discrete actions are one-hot vectors, as the official OneHotAction wrapper makes them.
"""
SUITES = ('atari', 'dummy', 'dmc')


def make(task, config, seed=0):
  suite, _, name = task.partition('_')
  if suite not in SUITES or not name:
    raise ValueError(f"Unknown task '{task}'. Tasks look like <suite>_<name>; suites: "
                     f"{', '.join(SUITES)}.")
  kwargs = config.env[suite].to_dict()
  if suite == 'atari':
    from . import atari
    return atari.Atari(name, seed=seed, **kwargs)
  if suite == 'dmc':
    from . import dmc
    return dmc.DMC(name, seed=seed, **kwargs)
  from . import dummy
  return dummy.Dummy(name, seed=seed, **kwargs)
