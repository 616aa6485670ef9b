"""Any gymnasium env: spaces, flags, seeding, the `python -m dreamer_tf.train` command and the
`dreamer_tf.train` Python API."""
import json
import os
import pathlib
import subprocess
import sys

import cv2
import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import dreamer_tf
from dreamer_tf import config as cfg
from dreamer_tf import envs, run
from dreamer_tf.envs import gym

ROOT = pathlib.Path(__file__).resolve().parent.parent


class DictEnv(gymnasium.Env):
  """Image (32, 24, 3) + vector (2, 3) + Discrete(5, start=2) observations; terminates after
  `terminate_at` steps; records every action and reset seed it receives."""
  metadata = {'render_modes': ['rgb_array']}

  def __init__(self, action_space=None, terminate_at=3, render_mode=None):
    self.observation_space = spaces.Dict({
        'image': spaces.Box(0, 255, (32, 24, 3), np.uint8),
        'vector': spaces.Box(-1, 1, (2, 3), np.float32),
        'pos': spaces.Discrete(5, start=2)})
    self.action_space = action_space or spaces.Discrete(3)
    self.render_mode, self.terminate_at = render_mode, terminate_at
    self.actions, self.seeds, self.t = [], [], 0

  def _obs(self):
    image = (np.arange(32 * 24 * 3).reshape(32, 24, 3) * (self.t + 1) % 256).astype(np.uint8)
    vector = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3) * (self.t % 2)
    return {'image': image, 'vector': vector, 'pos': 2 + self.t % 5}

  def reset(self, seed=None, options=None):
    super().reset(seed=seed)
    self.seeds.append(seed)
    self.t = 0
    return self._obs(), {}

  def step(self, action):
    self.actions.append(action)
    self.t += 1
    return self._obs(), 0.5 * self.t, self.t >= self.terminate_at, False, {}

  def render(self):
    return np.full((8, 8, 3), 7, np.uint8)


class SingleEnv(DictEnv):
  def __init__(self, observation_space, **kw):
    super().__init__(**kw)
    self.observation_space = observation_space

  def _obs(self):
    return self.observation_space.sample()


def test_dict_observations_resized_flattened_and_one_hot():
  inner = DictEnv()
  env = gym.Gym(inner, size=(16, 16), seed=3)
  assert env.obs_space == {
      'image': ((16, 16, 3), np.uint8), 'vector': ((6,), np.float32),
      'pos': ((5,), np.float32), 'reward': ((), np.float32), 'is_first': ((), bool),
      'is_last': ((), bool), 'is_terminal': ((), bool)}
  obs = env.reset()
  raw = inner._obs()
  np.testing.assert_array_equal(
      obs['image'], cv2.resize(raw['image'], (16, 16), interpolation=cv2.INTER_AREA))
  assert obs['vector'].dtype == np.float32 and obs['vector'].shape == (6,)
  np.testing.assert_array_equal(obs['pos'], [1, 0, 0, 0, 0])   # value 2 = start
  assert obs['is_first'] and not obs['is_last'] and obs['reward'] == 0.0
  obs = env.step(np.eye(3)[1])
  np.testing.assert_array_equal(obs['vector'], np.linspace(-1, 1, 6, dtype=np.float32))
  np.testing.assert_array_equal(obs['pos'], [0, 1, 0, 0, 0])
  assert obs['reward'].dtype == np.float32 and obs['reward'] == 0.5
  assert env.act_space == {'shape': (3,), 'discrete': True} and inner.actions == [1]


def test_single_spaces_are_named_by_kind():
  image = gym.Gym(SingleEnv(spaces.Box(0, 255, (16, 16, 1), np.uint8)), size=(16, 16))
  assert image.obs_space['image'] == ((16, 16, 1), np.uint8)
  assert image.reset()['image'].shape == (16, 16, 1)
  resized = gym.Gym(SingleEnv(spaces.Box(0, 255, (40, 40, 1), np.uint8)), size=(8, 8))
  assert resized.reset()['image'].shape == (8, 8, 1)   # OpenCV's dropped channel restored
  onehot = gym.Gym(SingleEnv(spaces.Discrete(4)))
  assert onehot.obs_space['vector'] == ((4,), np.float32)
  assert onehot.reset()['vector'].sum() == 1.0
  scalar = gym.Gym(SingleEnv(spaces.Box(-1, 1, (), np.float64)))
  assert scalar.obs_space['vector'] == ((), np.float32)
  assert scalar.reset()['vector'].shape == () and scalar.reset()['vector'].dtype == np.float32


def test_box_action_maps_to_bounds_and_back():
  space = spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 10.0]), dtype=np.float64)
  inner = DictEnv(action_space=space)
  env = gym.Gym(inner)
  assert env.act_space == {'shape': (2,), 'discrete': False}
  for agent, expected in (([-1, 1], [-2, 10]), ([0, 0], [0, 5]), ([0.5, -0.5], [1, 2.5]),
                          ([5, -5], [2, 0])):
    env.reset()
    env.step(np.array(agent, np.float32))
    np.testing.assert_allclose(inner.actions[-1], expected)
    back = (inner.actions[-1] - space.low) / (space.high - space.low) * 2 - 1
    np.testing.assert_allclose(back, np.clip(agent, -1, 1))
  assert inner.actions[-1].dtype == np.float64


def test_discrete_and_multi_discrete_actions():
  inner = DictEnv(action_space=spaces.Discrete(3, start=1))
  env = gym.Gym(inner)
  env.reset()
  env.step(np.eye(3)[2])
  assert inner.actions == [3]
  inner = DictEnv(action_space=spaces.MultiDiscrete([2, 3]))
  env = gym.Gym(inner)
  assert env.act_space == {'shape': (6,), 'discrete': True}
  env.reset()
  env.step(np.eye(6)[4])
  np.testing.assert_array_equal(inner.actions[-1], [1, 1])   # 4 = 1 * 3 + 1
  env = gym.Gym(DictEnv(action_space=spaces.MultiBinary(3)))
  assert env.act_space == {'shape': (8,), 'discrete': True}


def test_terminated_and_truncated_flags_and_repeat():
  env = gym.Gym(DictEnv(terminate_at=3), repeat=2)
  env.reset()
  obs = env.step(np.eye(3)[0])
  assert (obs['reward'], obs['is_last'], obs['is_terminal']) == (0.5 + 1.0, False, False)
  obs = env.step(np.eye(3)[0])   # terminated after its first repeat
  assert (obs['reward'], obs['is_last'], obs['is_terminal']) == (1.5, True, True)
  truncated = gym.Gym(gymnasium.wrappers.TimeLimit(DictEnv(terminate_at=9), 2))
  truncated.reset()
  assert not truncated.step(np.eye(3)[0])['is_last']
  obs = truncated.step(np.eye(3)[0])
  assert obs['is_last'] and not obs['is_terminal']


def test_seed_on_first_reset_only_and_render():
  inner = DictEnv(render_mode='rgb_array')
  env = gym.Gym(inner, seed=7)
  env.reset(), env.reset()
  assert inner.seeds == [7, None]
  assert env.render().shape == (8, 8, 3)
  assert gym.Gym(DictEnv()).render() is None


@pytest.mark.parametrize('obs_space, act_space, match', [
    (spaces.Tuple([spaces.Discrete(2)]), spaces.Discrete(2),
     r'Unsupported observation space Tuple\(Discrete\(2\)\). Supported: Box, Discrete'),
    (spaces.Dict({'inner': spaces.Dict({'x': spaces.Discrete(2)})}), spaces.Discrete(2),
     r"Unsupported observation space Dict\('x': Discrete\(2\)\) at key 'inner'"),
    (spaces.Dict({'reward': spaces.Discrete(2)}), spaces.Discrete(2),
     r"Observation keys \['reward'\] clash"),
    (spaces.Discrete(2), spaces.Dict({'a': spaces.Discrete(2)}),
     r"Unsupported action space Dict\('a': Discrete\(2\)\) \(the agent has a single action "
     r'head\). Supported: Discrete, Box with finite bounds, MultiDiscrete or MultiBinary'),
    (spaces.Discrete(2), spaces.Box(-np.inf, np.inf, (2,), np.float32),
     r'Unsupported action space Box\(-inf, inf, \(2,\), float32\) \(infinite bounds'),
    (spaces.Discrete(2), spaces.Box(0, 3, (2,), np.int64), r'integer Box: use Discrete'),
    (spaces.Discrete(2), spaces.MultiDiscrete([64, 64]),
     r'MultiDiscrete\(\[64 64\]\) \(4,096 joint actions, more than 1,024'),
])
def test_unsupported_spaces_are_named(obs_space, act_space, match):
  with pytest.raises(ValueError, match=match):
    gym.Gym(SingleEnv(obs_space, action_space=act_space))


def test_task_names_and_registry():
  assert envs.split('atari_pong') == ('atari', 'pong')
  assert envs.split('dmc_walker_walk') == ('dmc', 'walker_walk')
  assert envs.split('dummy_disc') == ('dummy', 'disc')
  assert envs.split('gym:CartPole-v1') == ('gym', 'CartPole-v1')
  assert envs.split('gym:my_pkg.envs:make_env') == ('gym', 'my_pkg.envs:make_env')
  with pytest.raises(ValueError, match=r"Unknown task 'gym_CartPole-v1'.*or gym:<gymnasium id"):
    envs.split('gym_CartPole-v1')
  config = cfg.load(['dreamerv3', 'gym'])
  env = envs.make('gym:CartPole-v1', config, seed=0)
  assert env.obs_space['vector'] == ((4,), np.float32) and env._env.render_mode == 'rgb_array'
  factory = envs.make('gym:gymnasium.envs.classic_control.cartpole:CartPoleEnv', config)
  assert factory.act_space == {'shape': (2,), 'discrete': True} and factory.render() is None
  with pytest.raises(ValueError, match=r"Unknown gymnasium env id 'CartPol-v1'.*CartPole"):
    envs.make('gym:CartPol-v1', config)
  with pytest.raises(ValueError, match=r"nor is 'CartPoleEnvv' an attribute of module 'gymnasium"):
    envs.make('gym:gymnasium.envs.classic_control.cartpole:CartPoleEnvv', config)
  with pytest.raises(TypeError, match='Expected a gymnasium.Env or a dreamer_tf env'):
    envs.adapt(object(), config)


def test_package_import_leaves_tensorflow_out():
  code = ('import sys, dreamer_tf; assert callable(dreamer_tf.train); '
          "print('tensorflow' in sys.modules)")
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
  assert result.stdout.strip() == 'False', result.stderr


def _train_cli(logdir):
  cmd = [sys.executable, '-m', 'dreamer_tf.train', '--task', 'gym:CartPole-v1', '--preset',
         'debug', '--run.steps=300', '--logdir', str(logdir)]
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}
  result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_cli_cartpole_runs_to_the_end_and_resumes(tmp_path):
  out = _train_cli(tmp_path)
  assert 'Presets: dreamerv3, gym, s, debug' in out
  assert 'Training dreamerv3 on gym:CartPole-v1 for 300 agent steps' in out
  summary = json.loads((tmp_path / 'summary.json').read_text())
  assert summary['step'] == 300 and summary['task'] == 'gym:CartPole-v1'
  scores = json.loads((tmp_path / 'scores.json').read_text())[0]
  assert scores['task'] == 'gym:CartPole-v1' and len(scores['ys']) >= 1
  assert all(y == int(y) and 8 <= y <= 500 for y in scores['ys'])   # CartPole: +1 per step
  assert (tmp_path / 'checkpoints' / 'checkpoint').exists()
  line = out.strip().splitlines()[-1]
  assert line.startswith(f"SUMMARY gym:CartPole-v1: 300 agent steps (300 frames), "
                         f"{summary['updates']:,} updates, {len(scores['ys'])} episodes; last ")
  again = _train_cli(tmp_path)
  assert f'Resumed {tmp_path} at step 300' in again and 'SUMMARY' in again.splitlines()[-1]
  assert json.loads((tmp_path / 'summary.json').read_text())['updates'] == summary['updates']


def test_python_api_on_dict_env(tmp_path):
  out = dreamer_tf.train(DictEnv, ['dreamerv3', 'debug'], logdir=tmp_path, log=lambda *a: None,
                         run={'steps': 80}, env={'gym': {'size': [16, 16]}})
  assert out['step'] == 80 and out['updates'] > 0 and out['task'] == 'gym:DictEnv'
  assert len(out['episodes']) == 80 // 4   # terminate_at 3: 4 steps per episode with the first
  assert [e['score'] for e in out['episodes']][:2] == [3.0, 3.0]   # 0.5 + 1.0 + 1.5
  assert (tmp_path / 'checkpoints' / 'checkpoint').exists()


def test_pendulum_box_actions_run(tmp_path):
  config = cfg.load(['dreamerv3', 'gym', 'debug'], ['--task', 'gym:Pendulum-v1',
                                                    '--run.steps', '70'])
  out = run.run(config, tmp_path, log=lambda *a: None)
  assert out['step'] == 70 and out['updates'] > 0
  assert json.loads((tmp_path / 'summary.json').read_text())['frames'] == 70
