"""A trained run's policy: `load_policy(logdir)` rebuilds the agent from the run's `config.yaml`
and the spaces of its task, and restores the newest readable checkpoint (checkpoint.Checkpointer).

    policy = load_policy('runs/pong/seed0')
    state = policy.initial_state(1)
    action, state = policy.act({k: v[None] for k, v in obs.items()}, state)   # (1, A) numpy
"""
import pathlib

from . import agent as agent_lib
from . import checkpoint as checkpoint_lib
from . import config as config_lib
from . import envs


class Policy:
  """The restored agent of a run; `step` is the agent step of its checkpoint and `extra` the
  checkpoint's JSON state (replay, driver; checkpoint.Checkpointer)."""

  def __init__(self, agent, config, logdir, step, extra=None):
    self.agent, self.config, self.logdir, self.step = agent, config, logdir, step
    self.extra = extra or {}

  def initial_state(self, batch):
    return self.agent.initial_state(batch)

  def act(self, obs, state, mode='eval'):
    """obs: dict of (B, ...) arrays with the task's keys; returns (action (B, A) numpy, state).
    mode 'train' samples the actor; 'eval' samples when run.eval_sample else takes its mode."""
    return self.agent.policy(obs, state, mode)

  def reseed(self, seed):
    """Restarts the policy's RNG (posterior and action samples) from `seed`."""
    self.agent.rng.reset_from_seed(seed)


def read_config(logdir):
  """The resolved config a run saved (run.prepare_logdir), over the current defaults."""
  logdir = pathlib.Path(logdir)
  if not logdir.is_dir():
    raise FileNotFoundError(f'{logdir} is not a directory.')
  path = logdir / 'config.yaml'
  if not path.exists():
    raise FileNotFoundError(
        f'{logdir} is not a run directory: it has no config.yaml (dreamer_tf.run writes one '
        'when a run starts).')
  return config_lib.read(path)


def make_env(config, seed, env_fn=None):
  """The run's env: `env_fn()` (a gymnasium.Env or ours) for a run trained on an env built in
  code (dreamer_tf.train(env_fn), whose task only labels the run), else `config.task`'s."""
  if env_fn is not None:
    return envs.adapt(env_fn(), config, seed)
  return envs.make(config.task, config, seed=seed)


def load_policy(logdir, eval_sample=None, env_fn=None, log=print):
  """Policy of the run in `logdir` at its newest readable checkpoint.

  eval_sample: overrides the run's `run.eval_sample` (whether mode 'eval' samples the actor);
  None keeps it. env_fn: see make_env. Raises FileNotFoundError for a logdir without
  config.yaml or checkpoint and checkpoint.CheckpointError when no checkpoint can be read.
  """
  logdir = pathlib.Path(logdir)
  config = read_config(logdir)
  if eval_sample is not None:
    config = config.update({'run.eval_sample': bool(eval_sample)})
  directory = logdir / 'checkpoints'
  missing = FileNotFoundError(
      f'{logdir} has no checkpoint in {directory}: the run has not saved one yet (it saves '
      'after the prefill and every run.save_every seconds).')
  if not (directory / 'checkpoint').exists():  # tf.train.CheckpointManager's index
    raise missing
  env = make_env(config, config.seed, env_fn)
  try:
    obs_space, act_space = env.obs_space, env.act_space
  finally:
    env.close()
  agent = agent_lib.Agent(obs_space, act_space, config)
  restored = checkpoint_lib.Checkpointer(directory, agent).restore(log)
  if restored is None:  # an index that lists no checkpoint
    raise missing
  return Policy(agent, config, logdir, restored[0], restored[2])
