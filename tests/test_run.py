"""Smoke tests of the whole loop on the dummy task: collect, train, eval, checkpoint, resume."""
import json

import numpy as np
import pytest

from dreamer_tf import agent as agent_lib
from dreamer_tf import checkpoint as checkpoint_lib
from dreamer_tf import config as cfg
from dreamer_tf import envs
from dreamer_tf import nets
from dreamer_tf import replay as replay_lib
from dreamer_tf import run

SMOKE = ['--task', 'dummy_disc', '--env.dummy.size', '16,16', '--env.dummy.length', '40',
         '--run.script', 'train_eval', '--run.eval_every', '100', '--run.eval_eps', '1',
         '--run.eval_initial', 'False']


def test_train_eval_checkpoint_and_resume(tmp_path):
  config = cfg.load(['dreamerv3', 'debug'], SMOKE + ['--run.steps', '150'])
  out = run.run(config, tmp_path, log=lambda *a: None)
  assert out['step'] == 150 and out['updates'] > 50
  assert [e['step'] for e in out['evaluations']] == [100, 150]
  scores = json.loads((tmp_path / 'scores.json').read_text())
  assert scores[0]['task'] == 'dummy_disc' and scores[0]['method'] == 'dreamerv3'
  assert len(scores[0]['xs']) == len(scores[0]['ys']) >= 3
  assert all(np.isfinite(json.loads(l)['model_loss'])
             for l in (tmp_path / 'metrics.jsonl').read_text().splitlines() if 'model_loss' in l)
  assert (tmp_path / 'config.yaml').exists() and list((tmp_path / 'tensorboard').iterdir())
  # Re-running the same command with a larger budget resumes where the run stopped.
  messages = []
  more = cfg.load(['dreamerv3', 'debug'], SMOKE + ['--run.steps', '230'])
  out2 = run.run(more, tmp_path, log=messages.append)
  assert any('Resumed' in m and 'step 150' in m for m in messages)
  assert out2['step'] == 230 and out2['updates'] > out['updates']
  rows = [json.loads(l) for l in (tmp_path / 'episodes.jsonl').read_text().splitlines()]
  keys = [(r['step'], r['mode']) for r in rows]
  assert len(keys) == len(set(keys))


def test_logdir_with_other_config_is_refused(tmp_path):
  config = cfg.load(['dreamerv3', 'debug'], SMOKE + ['--run.steps', '70'])
  run.run(config, tmp_path, log=lambda *a: None)
  before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*') if p.is_file()}
  other = config.update({'batch_size': 3})
  with pytest.raises(cfg.ConfigError, match=r'different config \(batch_size: 4 -> 3\)'):
    run.run(other, tmp_path, log=lambda *a: None)
  after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*') if p.is_file()}
  assert before == after


def test_restored_agent_continues_with_identical_losses(tmp_path):
  config = cfg.load(['dreamerv3', 'debug'], ['--task', 'dummy_disc', '--env.dummy.size', '16,16'])
  env = envs.make(config.task, config)

  def build():
    agent = agent_lib.Agent(env.obs_space, env.act_space, config)
    replay = replay_lib.Replay(config.batch_length, 1000, 16, tmp_path / 'replay', seed=0)
    return agent, replay, checkpoint_lib.Checkpointer(tmp_path / 'ckpt', agent)

  agent, replay, ckpt = build()
  obs, rng = env.reset(), np.random.default_rng(0)
  for _ in range(60):
    action = np.eye(4, dtype=np.float32)[rng.integers(4)]
    replay.add({**obs, 'action': action})
    obs = env.step(action) if not obs['is_last'] else env.reset()
  for _ in range(3):
    agent.train(replay.sample(config.batch_size))
  ckpt.save(3, 3, {'replay': replay.save()})
  expected = [agent.train(replay.sample(config.batch_size)) for _ in range(3)]

  agent2, replay2, ckpt2 = build()
  step, updates, extra = ckpt2.restore()
  replay2.load(extra['replay'])
  got = [agent2.train(replay2.sample(config.batch_size)) for _ in range(3)]
  assert (step, updates) == (3, 3)
  for a, b in zip(expected, got):
    assert a == b


def test_interrupted_run_continues_with_identical_losses(tmp_path, monkeypatch):
  """A run stopped at step 70 (clean save) and resumed to 80 produces the same losses at every
  update after the stop as an uninterrupted run to 80.

  Identical because the checkpoint holds the agent (weights, optimisers, slow critic, return
  normaliser, RNG), the replay and its sampler RNG, the train-ratio position and the driver
  position mid-episode: the dummy env's RNG, target and step, the current observation, the
  policy's latent state and the episode score. Not identical after a `kill -9` (updates since
  the last checkpoint are lost and steps from flushed chunks are replayed without them), nor on
  Atari, whose emulator and no-op RNG are not checkpointed: a resumed Atari run starts a new
  episode. Metric rows are means over log intervals and so differ around the stop.
  """
  losses = []
  train = agent_lib.Agent.train
  monkeypatch.setattr(agent_lib.Agent, 'train',
                      lambda self, batch: losses.append(train(self, batch)) or losses[-1])
  args = SMOKE + ['--run.script', 'train', '--run.save_every', '1000', '--run.log_every', '1000']
  load = lambda steps: cfg.load(['dreamerv3', 'debug'], args + ['--run.steps', str(steps)])
  run.run(load(80), tmp_path / 'whole', log=lambda *a: None)
  whole, losses[:] = list(losses), []
  first = run.run(load(70), tmp_path / 'split', log=lambda *a: None)['updates']
  messages = []
  run.run(load(80), tmp_path / 'split', log=messages.append)
  assert any('continuing episode' in m for m in messages)
  assert len(losses) == len(whole) and first < len(whole)
  assert losses[:first] == whole[:first]  # same seed, same start (Keras initialisers seeded)
  for a, b in zip(losses[first:], whole[first:]):
    assert a == b


@pytest.mark.parametrize('native', [False, None, True])
def test_bfloat16_without_cpu_instructions_is_announced(tmp_path, monkeypatch, native):
  monkeypatch.setattr(nets, 'native_bfloat16', lambda: native)
  config = cfg.load(['dreamerv3', 'debug'], SMOKE + ['--run.steps', '40', '--precision',
                                                     'bfloat16', '--run.eval_every', '0'])
  messages = []
  run.run(config, tmp_path, log=messages.append)
  warned = [m for m in messages if 'without bfloat16 instructions' in m]
  assert len(warned) == (native is False)
