"""Training loops: `train` and `train_eval` (dreamerv3@8fa35f8 embodied/run/train_eval.py).

Per agent step: store the transition, run `Ratio(train_ratio / (batch_size * batch_length))`
updates, log and checkpoint on wall-clock intervals. Prefill with a uniform random policy until
one batch worth of sequences is stored. `train_eval` also evaluates every `eval_every` steps and
at the end of the budget over `eval_eps` episodes of a separate environment.
"""
import json
import pathlib
import time

import numpy as np

from . import agent as agent_lib
from . import checkpoint as checkpoint_lib
from . import config as config_lib
from . import driver as driver_lib
from . import envs
from . import logger as logger_lib
from . import replay as replay_lib


class Clock:
  """True at most once every `every` seconds (embodied.when.Clock); first call is True."""

  def __init__(self, every):
    self.every, self.prev = every, None

  def __call__(self):
    now = time.time()
    if self.prev is None or now >= self.prev + self.every:
      self.prev = now
      return True
    return False


def prepare_logdir(logdir, config, force=False):
  """Creates logdir and saves config.yaml; refuses a logdir holding a run of another config."""
  logdir = pathlib.Path(logdir)
  logdir.mkdir(parents=True, exist_ok=True)
  path = logdir / 'config.yaml'
  if path.exists():
    old = config_lib.defaults().update(config_lib.yaml.safe_load(path.read_text()))
    diff = {k for k in set(old.flat) | set(config.flat)
            if old.flat.get(k) != config.flat.get(k) and k != 'run.steps'}
    if diff and not force:
      lines = ', '.join(f'{k}: {old.flat.get(k)!r} -> {config.flat.get(k)!r}' for k in sorted(diff))
      raise config_lib.ConfigError(
          f'{logdir} holds a run with a different config ({lines}). Use another --logdir, or '
          'pass --force to resume it with the new config.')
  config.save(path)
  return logdir


def repeat_of(config):
  suite = config.task.split('_')[0]
  return config.env[suite].get('repeat', 1) if suite in config.env else 1


def run(config, logdir, force=False, log=print):
  """Trains (and evaluates) per `config.run.script`; returns a summary dict."""
  script = config.run.script
  if script not in ('train', 'train_eval'):
    raise config_lib.ConfigError(f"Unknown run.script '{script}'. Valid: train, train_eval.")
  env = envs.make(config.task, config, seed=config.seed)
  eval_env = envs.make(config.task, config, seed=config.seed + 10000) if script == 'train_eval' else None
  logdir = prepare_logdir(logdir, config, force)
  agent = agent_lib.Agent(env.obs_space, env.act_space, config)
  replay = replay_lib.Replay(config.batch_length, config.replay_size, config.replay_chunk,
                             logdir / 'replay', seed=config.seed)
  steps, repeat = int(config.run.steps), repeat_of(config)
  logger = logger_lib.Logger(logdir, config.task, config.method, config.seed, repeat, steps)
  ckpt = checkpoint_lib.Checkpointer(logdir / 'checkpoints', agent, config.run.keep_checkpoints)
  batch_steps = config.batch_size * config.batch_length
  ratio = driver_lib.Ratio(config.run.train_ratio / batch_steps)
  counters = {'step': 0, 'updates': 0, 'eval_prev': None}

  restored = ckpt.restore(log)
  if restored:
    counters['step'], counters['updates'], extra = restored
    replay.load(extra['replay'])
    ratio.prev = extra['ratio_prev']
    counters['eval_prev'] = extra['eval_prev']
    logger.truncate(counters['step'])
    log(f"Resumed {logdir} at step {counters['step']:,} ({counters['updates']:,} updates, "
        f'{len(replay):,} replay steps).')

  def save():
    extra = {'replay': replay.save(), 'ratio_prev': ratio.prev, 'eval_prev': counters['eval_prev']}
    ckpt.save(counters['step'], counters['updates'], extra)

  should_log, should_save = Clock(config.run.log_every), Clock(config.run.save_every)
  should_progress = Clock(30)
  should_log(), should_save(), should_progress()

  def on_step(transition):
    replay.add(transition)
    counters['step'] += 1

  def train_step(_):
    for _ in range(ratio(counters['step'])):
      logger.add(agent.train(replay.sample(config.batch_size)))
      counters['updates'] += 1
    if should_log():
      logger.write(counters['step'], {'updates': counters['updates'], **replay.stats()})
    if should_progress():
      logger.progress(counters['step'], counters['updates'])

  driver = driver_lib.Driver(env, agent.initial_state)
  driver.on_step.append(on_step)
  driver.on_episode.append(lambda ep: logger.episode(counters['step'], ep['score'], ep['length']))

  if replay.num_items < batch_steps:
    log(f'Prefilling replay with a random policy ({batch_steps} sequences of {config.batch_length}).')
    policy, _ = driver_lib.random_policy(env.act_space, config.seed)
    while replay.num_items < max(batch_steps, config.run.train_fill):
      driver(policy, steps=1)
    save()

  driver.on_step.append(train_step)
  train_policy = lambda obs, state: agent.policy(obs, state, 'train')
  evaluations = []

  def evaluate():
    counters['eval_prev'] = counters['step']
    eval_driver = driver_lib.Driver(eval_env, agent.initial_state)
    scores = []
    eval_driver.on_episode.append(lambda ep: (
        scores.append(ep['score']),
        logger.episode(counters['step'], ep['score'], ep['length'], 'eval'),
        log(f"[eval] episode {len(scores)}/{config.run.eval_eps}: return {ep['score']:.1f}")))
    eval_driver(lambda obs, state: agent.policy(obs, state, 'eval'),
                episodes=config.run.eval_eps)
    evaluations.append({'step': counters['step'], 'scores': scores})
    log(f"[eval] step {counters['step']:,}: mean return {np.mean(scores):.2f} over {len(scores)}")

  def should_eval():
    every = config.run.eval_every
    if eval_env is None or every <= 0:
      return False
    if counters['eval_prev'] is None:
      counters['eval_prev'] = counters['step'] // every * every
      return config.run.eval_initial
    return counters['step'] >= counters['eval_prev'] + every

  started = time.time()
  log(f"Training {config.method} on {config.task} for {steps:,} agent steps "
      f'({steps * repeat:,} frames) in {logdir}.')
  try:
    while counters['step'] < steps:
      if should_eval():
        evaluate()
      driver(train_policy, steps=1)
      if should_save():
        save()
    if eval_env is not None and counters['eval_prev'] != counters['step']:
      evaluate()
  except KeyboardInterrupt:
    save()
    raise
  else:
    save()
  finally:
    logger.write(counters['step'], {'updates': counters['updates'], **replay.stats()})
    logger.progress(counters['step'], counters['updates'], phase='done')
    env.close()
    eval_env and eval_env.close()
  summary = {'logdir': str(logdir), 'task': config.task, 'method': config.method,
             'seed': config.seed, 'step': counters['step'], 'frames': counters['step'] * repeat,
             'updates': counters['updates'], 'evaluations': evaluations,
             'wall_seconds': round(time.time() - started, 1)}
  logger_lib._write_atomic(logdir / 'summary.json', json.dumps(summary, indent=1))
  return {**summary, 'episodes': [r for r in logger.episodes if r['mode'] == 'train']}
