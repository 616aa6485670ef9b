"""Parallel envs (envs.amount): the env batch, the driver's per-env accounting, the per-env replay
streams, and whole runs with several envs."""
import functools
import json

import numpy as np
import pytest

from dreamer_tf import config as cfg
from dreamer_tf import driver as driver_lib
from dreamer_tf import replay as replay_lib
from dreamer_tf import run
from dreamer_tf.envs import dummy, vector

make_dummy = functools.partial(dummy.Dummy, 'disc', size=(8, 8), length=5)


class Broken(dummy.Dummy):

  def step(self, action):
    raise ValueError('broken on purpose')


@pytest.mark.parametrize('parallel', ['none', 'process'])
def test_batch_steps_and_resets_each_env(parallel):
  batch = vector.Batch([functools.partial(make_dummy, seed=s) for s in (0, 1, 2)], parallel)
  try:
    assert len(batch) == 3 and batch.savable and batch.act_space['shape'] == (4,)
    first = batch.step([None] * 3, [True] * 3)
    assert [o['is_first'] for o in first] == [True] * 3
    # Each env is the one built with its seed: same images as a local env of that seed.
    for seed, obs in enumerate(first):
      np.testing.assert_array_equal(obs['image'], make_dummy(seed=seed).reset()['image'])
    action = np.eye(4, dtype=np.float32)[[0, 1, 2]]
    out = batch.step(action, [False, True, False])
    assert [o['is_first'] for o in out] == [False, True, False]
    states = batch.get_state()
    after = batch.step(action, [False] * 3)
    batch.set_state(states)
    again = batch.step(action, [False] * 3)
    for a, b in zip(after, again):
      np.testing.assert_array_equal(a['image'], b['image'])
      assert a['reward'] == b['reward']
  finally:
    batch.close()


def test_worker_errors_name_the_env_and_bad_settings_are_refused():
  ctors = [make_dummy, functools.partial(Broken, 'disc', size=(8, 8))]
  batch = vector.Batch(ctors, 'process')
  try:
    batch.step([None] * 2, [True] * 2)
    with pytest.raises(RuntimeError, match=r'Env worker 1 failed:[\s\S]*broken on purpose'):
      batch.step(np.zeros((2, 4), np.float32), [False, False])
  finally:
    batch.close()
  with pytest.raises(ValueError, match=r"Unknown envs.parallel 'thread'. Valid: none, process"):
    vector.Batch([make_dummy], 'thread')
  with pytest.raises(ValueError, match='all envs of a batch must match'):
    vector.Batch([make_dummy, functools.partial(dummy.Dummy, 'cont', size=(8, 8))])
  with pytest.raises(cfg.ConfigError, match=r'envs.amount.*0.*integer >= 1'):
    cfg.load(['dreamerv3', 'debug'], ['--envs.amount', '0'])
  with pytest.raises(cfg.ConfigError, match=r"envs.parallel.*'thread'.*'none', 'process'"):
    cfg.load(['dreamerv3', 'debug'], ['--envs.parallel', 'thread'])


def test_driver_calls_policy_once_per_step_of_all_envs():
  """Envs of lengths 2, 3, 5 run their own episodes; the policy sees all three each call and
  the state is reset by is_first per env (the previous action is zeroed where an episode ends)."""
  ctors = [functools.partial(dummy.Dummy, 'disc', size=(8, 8), length=n) for n in (2, 3, 5)]
  driver = driver_lib.Driver(vector.Batch(ctors), lambda b: ('init', b))
  calls, steps, episodes = [], [], []

  def policy(obs, state):
    calls.append((obs['is_first'].tolist(), obs['is_last'].tolist(), state))
    return np.ones((3, 4), np.float32), 'next'
  driver.on_step.append(lambda tr, i: steps.append((i, bool(tr['is_last']), tr['action'].sum())))
  driver.on_episode.append(lambda ep, i: episodes.append((i, ep['length'])))
  done = driver(policy, steps=18)
  assert done == (18, 4) and len(calls) == 6 and calls[0][2] == ('init', 3)
  assert [c[0] for c in calls[:4]] == [[True, True, True], [False, False, False],
                                       [False, False, False], [True, False, False]]
  assert calls[2][1] == [True, False, False] and calls[3][1] == [False, True, False]
  assert [s[0] for s in steps] == [0, 1, 2] * 6
  assert all(total == (0.0 if last else 4.0) for _, last, total in steps)
  assert calls[5][1] == [True, False, True]
  assert episodes == [(0, 2), (1, 3), (0, 2), (2, 5)]


def test_streams_keep_envs_apart_and_sample_uniformly(tmp_path):
  replay = replay_lib.Streams(2, 4, 100, chunk=8, directory=tmp_path, seed=0)
  for t in range(40):
    for worker in (0, 1):
      replay.add({'x': np.float32(1000 * worker + t), 'is_first': t == 0}, worker)
  batch = replay.sample(400)['x']
  # Every window is 4 consecutive steps of one env; both envs are drawn about equally.
  np.testing.assert_array_equal(np.diff(batch, axis=1), 1)
  assert 150 < (batch[:, 0] >= 1000).sum() < 250
  state = replay.save()
  loaded = replay_lib.Streams(2, 4, 100, chunk=8, directory=tmp_path, seed=5)
  assert loaded.load(json.loads(json.dumps(state))) == 0 and loaded.total == 80
  np.testing.assert_array_equal(loaded.sample(6)['x'], replay.sample(6)['x'])
  with pytest.raises(ValueError, match='2 env streams, this run 1'):
    replay_lib.Replay(4, 100, 8, tmp_path).load(state)


def test_run_with_four_envs_counts_every_env_step(tmp_path):
  """Updates per env step equal the train ratio's with 4 envs; the run resumes with its
  four episodes in progress."""
  overrides = ['--task', 'dummy_disc', '--env.dummy.size', '16,16', '--env.dummy.length', '30',
               '--envs.amount', '4', '--run.train_ratio', '16']
  config = cfg.load(['dreamerv3', 'debug'], overrides + ['--run.steps', '200'])
  out = run.run(config, tmp_path, log=lambda *a: None)
  # Prefill until the 4 streams hold 48 windows of 12: 23 calls (4 x (23 - 11) = 48), 92 steps;
  # then Ratio(16 / 48): 1 update at step 93 and one per 3 env steps after it.
  updates = lambda steps: 1 + (steps - 93) * 16 // 48
  assert out['step'] == 200 and len(out['episodes']) == 4  # 50 steps per env, 31 per episode
  assert out['updates'] == updates(200)
  assert sorted(p.name for p in (tmp_path / 'replay').iterdir()) == [f'env_{i}' for i in range(4)]
  messages = []
  more = cfg.load(['dreamerv3', 'debug'], overrides + ['--run.steps', '260'])
  out2 = run.run(more, tmp_path, log=messages.append)
  assert any('Resumed' in m and 'step 200' in m and 'continuing episode' in m for m in messages)
  assert out2['step'] == 260 and out2['updates'] == updates(260)


def test_presets_set_the_official_env_counts():
  amount = lambda *presets: cfg.load(['dreamerv3', *presets]).envs.amount
  assert amount('dmc_proprio') == amount('dmc_vision') == 4
  assert amount('atari') == 8 and amount('atari100k') == 1
  assert cfg.load(['dreamerv2', 'dreamerv2_atari']).envs.amount == 1
  assert cfg.load(['dreamerv1']).envs.amount == 1


def test_python_api_sends_a_closure_to_env_workers(tmp_path):
  """dreamer_tf.train(env_fn) with 2 subprocess envs: env_fn, a closure over a local, travels
  by cloudpickle."""
  import gymnasium
  import dreamer_tf
  limit = 6

  def env_fn():
    return gymnasium.wrappers.TimeLimit(gymnasium.make('CartPole-v1'), limit)
  out = dreamer_tf.train(env_fn, ['dreamerv3', 'debug'], logdir=tmp_path, log=lambda *a: None,
                         run={'steps': 100}, envs={'amount': 2})
  assert out['step'] == 100 and out['updates'] > 0
  assert all(e['length'] <= limit for e in out['episodes']) and len(out['episodes']) >= 2 * 7
