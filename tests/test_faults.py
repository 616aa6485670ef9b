"""Fault injection: SIGKILLed runs resume, corrupt checkpoints fall back, bad input and numerical
faults stop early with clear errors. Kill points use the DREAMER_TF_FAULT hook (checkpoint.py)."""
import errno
import json
import os
import random
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from dreamer_tf import agent as agent_lib
from dreamer_tf import checkpoint as checkpoint_lib
from dreamer_tf import config as cfg
from dreamer_tf import envs
from dreamer_tf import run
from dreamer_tf.envs import dummy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 16
ARGS = ['--task', 'dummy_disc', '--env.dummy.size', '16,16', '--env.dummy.length', '20',
        '--run.train_ratio', '8', '--replay_chunk', str(CHUNK), '--run.save_every', '3']
# Prints every env step before it is stored (counted over all envs' replay streams), so the
# test knows the steps a killed run took.
DRIVER = '''
import sys
from dreamer_tf import config as cfg, replay, run
init, add, made = replay.Replay.__init__, replay.Replay.add, []
def tracked(self, *args, **kwargs):
  init(self, *args, **kwargs)
  made.append(self)
def counted(self, step, worker=0):
  print(f'STEP {sum(r.total for r in made) + 1}', flush=True)
  add(self, step)
replay.Replay.__init__, replay.Replay.add = tracked, counted
out = run.run(cfg.load(['dreamerv3', 'debug'], sys.argv[2:]), sys.argv[1],
              log=lambda m: print(m, flush=True))
print(f"DONE {out['step']}", flush=True)
'''
RESUMED = re.compile(r'Resumed .* at step ([\d,]+) .*; lost ([\d,]+) steps')


def launch(logdir, steps, fault='', kill_at=None, extra=()):
  """Runs the driver; SIGKILLs it at env step `kill_at`. Returns (returncode, output lines)."""
  env = {**os.environ, 'PYTHONPATH': ROOT, 'DREAMER_TF_FAULT': fault,
         'TF_CPP_MIN_LOG_LEVEL': '3'}
  proc = subprocess.Popen([sys.executable, '-c', DRIVER, str(logdir), *ARGS, '--run.steps',
                           str(steps), *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, env=env, cwd=ROOT)
  lines = []
  for line in proc.stdout:
    lines.append(line.strip())
    if kill_at and line.startswith('STEP') and int(line.split()[1]) >= kill_at:
      proc.kill()
  return proc.wait(timeout=600), lines


def steps_taken(lines):
  return max([int(l.split()[1]) for l in lines if l.startswith('STEP')], default=0)


def check_resume(lines, taken, streams=1):
  """replay steps after resume = env steps before the kill - reported loss; returns the loss.

  `taken` is the last STEP printed, which happens just before the step is stored: a kill between
  the print and the store loses that one in-flight step without it being counted.
  """
  match = next(m for m in map(RESUMED.search, lines) if m)
  step, lost = (int(g.replace(',', '')) for g in match.groups())
  assert taken - lost - step in (0, 1) and 0 <= lost <= streams * CHUNK, (step, taken, lost)
  return lost


def check_logdir(logdir, budget, amount=1):
  state = tf.train.get_checkpoint_state(str(logdir / 'checkpoints'))
  for path in state.all_model_checkpoint_paths:   # every listed checkpoint reads in full
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  xs = json.loads((logdir / 'scores.json').read_text())[0]['xs']
  # One env finishes an episode every 21 steps, restarts aside; 4 envs in lockstep 4 at a time.
  assert xs == sorted(set(xs)) and len(xs) >= (budget // 20 - 3 if amount == 1 else amount)
  steps = [json.loads(l)['step'] for l in (logdir / 'metrics.jsonl').read_text().splitlines()]
  assert steps == sorted(set(steps))


def kill_and_resume(logdir, budget, kills, amount=1):
  """kills: list of (fault, kill_at). Returns the losses; asserts the final run finishes."""
  losses, taken, extra = [], None, ('--envs.amount', str(amount))
  for fault, kill_at in kills:
    code, lines = launch(logdir, budget, fault, kill_at, extra)
    assert code == -9, lines[-5:]
    if taken is not None:
      losses.append(check_resume(lines, taken, amount))
    taken = steps_taken(lines)
  code, lines = launch(logdir, budget, extra=extra)
  assert code == 0 and f'DONE {budget}' in lines, lines[-5:]
  losses.append(check_resume(lines, taken, amount))
  check_logdir(logdir, budget, amount)
  return losses


def test_killed_during_first_checkpoint_write_resumes(tmp_path):
  # The kill leaves the checkpoint data files unlisted: the resume has no checkpoint, recovers
  # the three flushed replay chunks (48 steps), reports the 11 prefill steps after them as lost
  # and finishes the budget.
  assert kill_and_resume(tmp_path, 75, [('ckpt_write:1', None)]) == [59 - 3 * CHUNK]


def test_four_env_run_killed_twice_resumes(tmp_path):
  # envs.amount 4 (subprocess envs, one replay stream each): a kill while replay chunks are
  # flushed and one mid-training; each resume loses at most one open chunk per stream.
  losses = kill_and_resume(tmp_path, 240, [('replay_flush:3', None), ('', 190)], amount=4)
  assert len(losses) == 2 and all(0 <= x <= 4 * CHUNK for x in losses)


@pytest.mark.slow
def test_repeated_kills_at_random_points(tmp_path):
  rng = random.Random(0)
  kills = [('ckpt_write:2', None), ('replay_flush:2', None)]
  kills += [('', rng.randrange(60, 190)) for _ in range(4)]
  losses = kill_and_resume(tmp_path, 200, kills)
  assert len(losses) == len(kills)
  print(f'{len(kills)} kills, {len(losses)} resumes, lost steps {losses}')


# --- checkpoints ---------------------------------------------------------------------------------
def small_agent(**overrides):
  config = cfg.load(['dreamerv3', 'debug'], {'task': 'dummy_disc', 'env.dummy.size': '16,16',
                                              **overrides})
  env = envs.make(config.task, config)
  return agent_lib.Agent(env.obs_space, env.act_space, config)


@pytest.fixture(scope='module')
def agent():
  return small_agent()


def saved(directory, agent, steps=(10, 20)):
  ckpt = checkpoint_lib.Checkpointer(directory, agent)
  for step in steps:
    ckpt.save(step, step, {'at': step})
  return ckpt


def test_truncated_or_foreign_checkpoint_falls_back_and_is_kept(tmp_path, agent):
  saved(tmp_path, agent)
  data = next(tmp_path.glob('ckpt-20.data-*'))
  data.write_bytes(data.read_bytes()[:100])              # truncated newest
  messages = []
  assert checkpoint_lib.Checkpointer(tmp_path, agent).restore(messages.append) == (10, 10, {'at': 10})
  assert 'ckpt-20 cannot be read' in messages[0] and 'older checkpoint' in messages[1]
  assert data.exists() and (tmp_path / 'ckpt-20.index').exists()
  # A checkpoint of another model (larger RSSM) in the newest slot is refused the same way.
  saved(tmp_path / 'other', small_agent(**{'rssm.deter': 48}), steps=(20,))
  for path in (tmp_path / 'other').glob('ckpt-20.*'):
    shutil.copy(path, tmp_path / path.name)
  messages.clear()
  assert checkpoint_lib.Checkpointer(tmp_path, agent).restore(messages.append)[0] == 10
  assert 'ckpt-20 cannot be read' in messages[0]


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(tmp_path, agent):
  saved(tmp_path, agent)
  for data in tmp_path.glob('ckpt-*.data-*'):
    data.write_bytes(b'\0' * 64)
  with pytest.raises(checkpoint_lib.CheckpointError, match='No checkpoint .* could be read'):
    checkpoint_lib.Checkpointer(tmp_path, agent).restore(lambda m: None)
  assert len(list(tmp_path.glob('ckpt-*.data-*'))) == 2


def test_disk_full_during_checkpoint_keeps_the_previous(tmp_path, agent, monkeypatch):
  ckpt = saved(tmp_path, agent)

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  monkeypatch.setattr(ckpt.ckpt, '_write', full)
  with pytest.raises(checkpoint_lib.CheckpointError, match='No space left.*ckpt-20 is intact'):
    ckpt.save(30, 30, {'at': 30})
  monkeypatch.undo()
  assert checkpoint_lib.Checkpointer(tmp_path, agent).restore() == (20, 20, {'at': 20})


# --- numerical faults ----------------------------------------------------------------------------
def test_check_finite_names_the_first_bad_term_and_ignores_fp16_overflow():
  ok = {'image_loss': 1.0, 'model_opt_grad_norm': float('inf'), 'model_opt_grad_overflow': 1.0,
        'model_opt_grad_scale': 5000.0}
  run.check_finite(ok, 1)
  with pytest.raises(run.NumericalError, match='model_opt_grad_norm=inf at update 2'):
    run.check_finite({**ok, 'model_opt_grad_scale': 1e-4}, 2)   # scaling cannot back off
  bad = {'image_loss': float('nan'), 'model_loss': float('nan'), 'actor_opt_grad_norm': np.inf}
  with pytest.raises(run.NumericalError, match=r'Non-finite image_loss=nan at update 3 \(also '
                     r'model_loss=nan, actor_opt_grad_norm=inf\)'):
    run.check_finite(bad, 3)


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, agent):
  # A stub train step: float16 overflows at updates 1-2 (skipped, not faults), NaN at update 4.
  calls = []

  def train(self, batch):
    calls.append(1)
    n = len(calls)
    return {'image_loss': float('nan') if n == 4 else 1.0, 'model_loss': 1.0,
            'model_opt_grad_norm': float('inf') if n <= 2 else 1.0,
            'model_opt_grad_overflow': float(n <= 2), 'model_opt_grad_scale': 5000.0}
  monkeypatch.setattr(agent_lib.Agent, 'train', train)
  config = cfg.load(['dreamerv3', 'debug'], ARGS + ['--run.steps', '90', '--run.save_every',
                                                     '1000'])
  with pytest.raises(run.NumericalError, match='Non-finite image_loss=nan at update 4'):
    run.run(config, tmp_path, log=lambda m: None)
  ckpts = checkpoint_lib.Checkpointer(tmp_path / 'checkpoints', agent).manager.checkpoints
  assert [os.path.basename(p) for p in ckpts] == ['ckpt-59']    # the prefill save only


# --- bad input: errors before anything is written ------------------------------------------------
def test_bad_task_game_roms_or_space_write_nothing(tmp_path, monkeypatch):
  fresh = tmp_path / 'fresh'
  config = cfg.load(['dreamerv3', 'debug'], ARGS)
  with pytest.raises(ValueError, match="Unknown dummy task 'dis'. Valid: disc, cont"):
    run.run(config.update({'task': 'dummy_dis'}), fresh)
  with pytest.raises(ValueError, match="Unknown Atari game 'pongg'"):
    run.run(config.update({'task': 'atari_pongg'}), fresh)
  import ale_py.roms
  monkeypatch.setattr(ale_py.roms, 'get_all_rom_ids', lambda: [])   # ROMs not installed
  with pytest.raises(ValueError, match="Unknown Atari game 'pong'"):
    run.run(config.update({'task': 'atari_pong'}), fresh)
  monkeypatch.setattr(dummy.Dummy, 'obs_space', property(lambda self: {
      'image': ((16, 16, 3), np.float32), 'reward': ((), np.float32), 'is_first': ((), bool),
      'is_last': ((), bool), 'is_terminal': ((), bool)}))
  with pytest.raises(ValueError, match="Image observation 'image' must be uint8"):
    run.run(config, fresh)
  assert not fresh.exists()
