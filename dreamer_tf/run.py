"""Training loops: `train` and `train_eval` (dreamerv3@8fa35f8 embodied/run/train_eval.py).

Per agent step (each env's step, `envs.amount` envs stepped as a batch by the driver): store the
transition, run `Ratio(train_ratio / (batch_size * batch_length))`
updates (or `run.train_steps` every `run.train_every` steps, V1/V2), log and checkpoint on
wall-clock intervals. Prefill with a uniform random policy until one batch worth of sequences and
`run.train_fill` steps are stored, or the step budget ends (the official loops prefill past it).
`train_eval` also evaluates every `eval_every` steps and at the end of the budget over
`eval_eps` episodes of a separate environment.

Robustness: the config, task and observation space are validated before anything is written
(an existing logdir is untouched on error; a fresh one is not created). A resumed run restores
the newest readable checkpoint, appends the replay chunks flushed after it and reports the
steps lost since the last flush; logs are truncated to the resumed step. A non-finite loss or
gradient norm stops the run without saving, keeping the last good checkpoint; float16 steps
skipped by dynamic loss scaling (`*_grad_overflow`) are not faults.
"""
import functools
import json
import math
import pathlib
import time

import numpy as np

from . import agent as agent_lib
from . import checkpoint as checkpoint_lib
from . import config as config_lib
from . import driver as driver_lib
from . import envs
from . import distribute
from . import logger as logger_lib
from . import nets
from . import openloop
from . import replay as replay_lib
from .envs import vector


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


class NumericalError(FloatingPointError):
  pass


def check_logdir(logdir, config, force=False):
  """Refuses a logdir holding a run of another config, without writing anything."""
  path = pathlib.Path(logdir) / 'config.yaml'
  if not path.exists():
    return
  old = config_lib.read(path)
  diff = {k for k in set(old.flat) | set(config.flat)
          if old.flat.get(k) != config.flat.get(k) and k != 'run.steps'}
  if diff and not force:
    lines = ', '.join(f'{k}: {old.flat.get(k)!r} -> {config.flat.get(k)!r}' for k in sorted(diff))
    raise config_lib.ConfigError(
        f'{logdir} holds a run with a different config ({lines}). Use another --logdir, or '
        'pass --force to resume it with the new config.')


def prepare_logdir(logdir, config):
  """Creates logdir and saves config.yaml (after check_logdir and every other validation)."""
  logdir = pathlib.Path(logdir)
  logdir.mkdir(parents=True, exist_ok=True)
  config.save(logdir / 'config.yaml')
  return logdir


def check_finite(metrics, update):
  """Raises NumericalError naming the first non-finite loss (then gradient norm) of an update.

  A non-finite `<opt>_grad_norm` is a skipped float16 overflow, not a fault, when the optimiser
  reports `<opt>_grad_overflow` and its loss scale can still shrink.
  """
  def bad(key):
    if math.isfinite(metrics[key]):
      return False
    opt = key[:-len('_grad_norm')]
    return not (metrics.get(f'{opt}_grad_overflow') == 1.0
                and metrics.get(f'{opt}_grad_scale', 0.0) > 1e-4)
  keys = ([k for k in metrics if k.endswith('_loss')]
          + [k for k in metrics if k.endswith('_grad_norm')])
  faults = [k for k in keys if bad(k)]
  if faults:
    others = ', '.join(f'{k}={metrics[k]}' for k in faults[1:])
    raise NumericalError(
        f'Non-finite {faults[0]}={metrics[faults[0]]} at update {update:,}'
        + (f' (also {others})' if others else '')
        + '. Stopped without saving: the last good checkpoint is kept.')


def repeat_of(config):
  suite, _ = envs.split(config.task)
  return config.env[suite].get('repeat', 1)


def make_envs(config, seed, make_env=None):
  """`envs.amount` envs seeded seed, seed + 1, ... as one vector.Batch (subprocesses per
  `envs.parallel` when there are several)."""
  make_env = make_env or functools.partial(envs.make, config.task, config)
  amount = config.envs.amount
  ctors = [functools.partial(make_env, seed=seed + i) for i in range(amount)]
  return vector.Batch(ctors, config.envs.parallel if amount > 1 else 'none')


def run(config, logdir, force=False, log=print, make_env=None):
  """Trains (and evaluates) per `config.run.script`; returns a summary dict. `make_env(seed)`
  builds the envs instead of `envs.make(config.task, ...)`; `config.task` then only labels."""
  config_lib.check(config)  # run.script among them
  worker = distribute.worker_index(config.run.strategy)
  if worker:  # multi_worker: its own envs (seeds), replay, logs and checkpoints for resume
    logdir = pathlib.Path(logdir) / 'workers' / str(worker)
  check_logdir(logdir, config, force)
  seed = config.seed + 1000 * worker
  env, eval_env = make_envs(config, seed, make_env), None
  try:
    if config.run.script == 'train_eval':
      eval_env = make_envs(config, seed + 10000, make_env)
    return _train(config, logdir, env, eval_env, log)
  finally:
    env.close()
    eval_env and eval_env.close()


def _train(config, logdir, env, eval_env, log):
  agent = agent_lib.Agent(env.obs_space, env.act_space, config)
  logdir = prepare_logdir(logdir, config)
  if config.precision == 'bfloat16' and nets.native_bfloat16() is False:
    log('Warning: precision bfloat16 on a CPU without bfloat16 instructions (no avx512_bf16 or '
        'amx_bf16 in /proc/cpuinfo): TensorFlow emulates it, several times slower than float32 '
        '(README, Performance); --precision=float32 is faster here.')
  context = config.replay_context  # windows of batch_length + context steps (rewrite main.py)
  replay = replay_lib.make(len(env), config.batch_length + context, config.replay_size,
                           config.replay_chunk, logdir / 'replay', seed=config.seed,
                           online=config.replay_online)
  steps, repeat = int(config.run.steps), repeat_of(config)
  logger = logger_lib.Logger(logdir, config.task, config.method, config.seed, repeat, steps)
  reporter = openloop.Reporter(agent, logdir / 'report', logger.writer, repeat,
                               config.run.report_every, log=log)
  ckpt = checkpoint_lib.Checkpointer(logdir / 'checkpoints', agent, config.run.keep_checkpoints)
  batch_steps = config.batch_size * config.batch_length
  if config.run.train_every:  # V1/V2 schedule
    ratio = driver_lib.Every(config.run.train_every, config.run.train_steps, config.run.pretrain)
  else:
    ratio = driver_lib.Ratio(config.run.train_ratio / batch_steps)
  counters = {'step': 0, 'updates': 0, 'eval_prev': None}
  driver = driver_lib.Driver(env, agent.initial_state, agent.context_of if context else None)

  restored = ckpt.restore(log)
  extra = {'replay': replay.state()}
  if restored:
    counters['step'], counters['updates'], extra = restored
    ratio.prev = extra['ratio_prev']
    counters['eval_prev'] = extra['eval_prev']
  lost = replay.load(extra['replay'])
  recovered = replay.total - counters['step']
  continued = not recovered and driver.load(extra.get('driver'))
  counters['step'] = replay.total
  logger.truncate(counters['step'])
  if restored or counters['step'] or lost:
    log(f"Resumed {logdir} at step {counters['step']:,} ({counters['updates']:,} updates, "
        f'{len(replay):,} replay steps; {recovered:,} steps recovered from replay chunks after '
        f"the checkpoint; lost {lost:,} steps; {'continuing' if continued else 'new'} episode).")

  def save():
    try:
      replay_state = replay.save()
    except OSError as e:
      raise checkpoint_lib.CheckpointError(
          f'{e}. The previous checkpoint {ckpt.latest} is intact.') from e
    extra = {'replay': replay_state, 'ratio_prev': ratio.prev,
             'eval_prev': counters['eval_prev'], 'driver': driver.save()}
    ckpt.save(counters['step'], counters['updates'], extra)
  should_log, should_save = Clock(config.run.log_every), Clock(config.run.save_every)
  should_progress = Clock(30)
  should_log(), should_save(), should_progress()

  def on_step(transition, worker):
    replay.add(transition, worker)
    counters['step'] += 1

  def train_step(transition, worker):
    for _ in range(ratio(counters['step'])):
      batch = replay.sample(config.batch_size)
      if context:  # the latents inferred for the trained steps go back into the replay
        metrics, latents = agent.train(batch, with_context=True)
        replay.update(batch['stepid'], latents, offset=context)
      else:
        metrics = agent.train(batch)
      check_finite(metrics, counters['updates'] + 1)
      logger.add(metrics)
      counters['updates'] += 1
      if reporter.due():  # the open-loop video of the last batch (official: on log)
        reporter(counters['step'], batch)
    if should_log():
      logger.write(counters['step'], {'updates': counters['updates'], **replay.stats()})
    if should_progress():
      logger.progress(counters['step'], counters['updates'])

  driver.on_step.append(on_step)
  driver.on_episode.append(
      lambda ep, worker: logger.episode(counters['step'], ep['score'], ep['length']))

  filled = lambda: replay.num_items >= batch_steps and len(replay) >= config.run.train_fill
  if not filled():
    fill = f'{config.run.train_fill:,} steps and ' if config.run.train_fill else ''
    log(f'Prefilling replay with a random policy ({fill}{batch_steps} sequences of '
        f'{config.batch_length}).')
    policy, _ = driver_lib.random_policy(env.act_space, config.seed)
    while not filled() and counters['step'] < steps:  # the budget bounds the prefill too
      driver(policy, steps=1)
    save()
    if not filled():
      log(f'The budget of {steps:,} agent steps ended inside the prefill: no update ran. The '
          'same command with more steps continues it.')

  driver.on_step.append(train_step)
  train_policy = lambda obs, state: agent.policy(obs, state, 'train')
  evaluations = []

  def evaluate():
    counters['eval_prev'] = counters['step']
    eval_driver = driver_lib.Driver(eval_env, agent.initial_state)
    scores, episodes = [], max(len(eval_env), config.run.eval_eps)  # official: >= 1 per env
    eval_driver.on_episode.append(lambda ep, worker: (
        scores.append(ep['score']),
        logger.episode(counters['step'], ep['score'], ep['length'], 'eval'),
        log(f"[eval] episode {len(scores)}/{episodes}: return {ep['score']:.1f}")))
    eval_driver(lambda obs, state: agent.policy(obs, state, 'eval'), episodes=episodes)
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
  summary = {'logdir': str(logdir), 'task': config.task, 'method': config.method,
             'seed': config.seed, 'step': counters['step'], 'frames': counters['step'] * repeat,
             'updates': counters['updates'], 'evaluations': evaluations,
             'wall_seconds': round(time.time() - started, 1)}
  logger_lib._write_atomic(logdir / 'summary.json', json.dumps(summary, indent=1))
  return {**summary, 'episodes': [r for r in logger.episodes if r['mode'] == 'train'],
          'eval_episodes': [r for r in logger.episodes if r['mode'] == 'eval']}
