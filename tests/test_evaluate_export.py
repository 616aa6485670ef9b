"""A trained run's policy: load_policy, dreamer_tf.evaluate (returns, videos) and
dreamer_tf.export (a SavedModel that acts like the live agent without dreamer_tf)."""
import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from dreamer_tf import checkpoint as checkpoint_lib
from dreamer_tf import config as cfg
from dreamer_tf import envs
from dreamer_tf import evaluate
from dreamer_tf import export
from dreamer_tf import run
from dreamer_tf.envs import dummy
from dreamer_tf.policy import load_policy

LENGTH = 10  # env steps per episode
quiet = lambda *a: None


@pytest.fixture(scope='module')
def logdir(tmp_path_factory):
  """A tiny dummy_cont run: 48 random prefill steps, then 12 agent steps with 8 updates."""
  logdir = tmp_path_factory.mktemp('run')
  config = cfg.load(['dreamerv3', 'debug'], [
      '--task', 'dummy_cont', '--env.dummy.size', '16,16', '--env.dummy.length', str(LENGTH),
      '--run.steps', '60'])
  out = run.run(config, logdir, log=quiet)
  assert out['step'] == 60 and out['updates'] > 0
  return logdir


def batch(obs):
  return {k: np.asarray(v)[None] for k, v in obs.items()}


def test_load_policy_acts(logdir):
  policy = load_policy(logdir, log=quiet)
  assert policy.step == 60 and policy.config.task == 'dummy_cont'
  env = envs.make('dummy_cont', policy.config)
  obs, state = batch(env.reset()), policy.initial_state(1)
  for mode in ('eval', 'train', 'eval'):
    action, state = policy.act(obs, state, mode)
    # Both modes sample V3's Normal(tanh(mean), std) actor (run.eval_sample, as the official
    # 'eval' mode), so an action may leave [-1, 1]: the envs clip it.
    assert action.shape == (1, 1) and action.dtype == np.float32 and np.isfinite(action).all()
    obs = batch(env.step(action[0]))
  greedy = load_policy(logdir, eval_sample=False, log=quiet)  # the actor's mode, tanh(mean)
  action, _ = greedy.act(obs, greedy.initial_state(1), 'eval')
  assert abs(action[0, 0]) < 1
  with pytest.raises(ValueError, match="Unknown policy mode 'greedy'. Valid: train, eval"):
    policy.act(obs, state, 'greedy')
  # A run trained on an env built in code (dreamer_tf.train(env_fn)) loads with that env_fn.
  built = load_policy(logdir, env_fn=lambda: dummy.Dummy('cont', size=(16, 16)), log=quiet)
  assert built.step == 60
  np.testing.assert_array_equal(built.agent.wm.encoder.variables[0].numpy(),
                                policy.agent.wm.encoder.variables[0].numpy())


def test_evaluate_episodes_and_videos(logdir, tmp_path, capsys):
  files = lambda: {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in logdir.rglob('*')
                   if p.is_file() and p.name != 'evaluate.json'}
  before = files()
  assert evaluate.main([str(logdir), '--episodes', '2', '--video', str(tmp_path / 'v'),
                        '--seed', '3']) == 0
  assert files() == before  # the run's logs and checkpoints are untouched
  result = json.loads((logdir / 'evaluate.json').read_text())
  returns = [e['return'] for e in result['episodes']]
  assert [e['length'] for e in result['episodes']] == [LENGTH, LENGTH]
  assert all(0 <= r <= LENGTH for r in returns) and result['seed'] == 3
  assert result['mean'] == pytest.approx(np.mean(returns))
  assert result['std'] == pytest.approx(np.std(returns))
  printed = capsys.readouterr().out
  assert f'episode 2/2: return {returns[1]:.2f}, length {LENGTH}' in printed
  assert f"mean return {result['mean']:.2f} ± {result['std']:.2f} over 2 episodes" in printed
  for i, episode in enumerate(result['episodes']):
    assert episode['video'] == str(tmp_path / 'v' / f'episode_{i}.mp4')
    frames = iio.imread(episode['video'], plugin='FFMPEG', index=None)
    assert frames.shape == (LENGTH + 1, 16, 16, 3)  # the reset observation and one per step
    # Each dummy frame is one of 4 grey levels; H.264 keeps them within a few values.
    levels = np.array([0, 85, 170, 255])
    assert np.abs(frames.mean((1, 2, 3))[:, None] - levels).min(1).max() < 4


def test_video_falls_back_to_gif(tmp_path):
  # H.264 needs even sides: ffmpeg fails on 15 x 15 frames, so a GIF is written.
  frames = np.stack([np.full((15, 15, 1), 40 * i, np.uint8) for i in range(5)])
  messages = []
  path = evaluate.write_video(tmp_path / 'odd', frames, fps=10, log=messages.append)
  assert path == tmp_path / 'odd.gif' and not (tmp_path / 'odd.mp4').exists()
  assert 'mp4 writing failed for odd (15, 15, 3)' in messages[0]
  np.testing.assert_array_equal(iio.imread(path, index=None), np.repeat(frames, 3, -1))


PLAYER = textwrap.dedent("""
  import importlib.util, sys
  sys.path += sys.argv[3:]
  assert importlib.util.find_spec('dreamer_tf') is None, 'dreamer_tf is importable'
  import numpy as np
  import tensorflow as tf
  data = np.load(sys.argv[2])
  policy = tf.saved_model.load(sys.argv[1])
  state, actions = policy.initial_state(tf.constant(1)), []
  for t in range(len(data['seed'])):
    obs = {'image': data['image'][t], 'is_first': data['is_first'][t]}
    action, state = policy.step(obs, state, tf.constant(data['seed'][t]))
    actions.append(action.numpy())
  assert 'tensorflow_probability' not in sys.modules and 'tf_keras' not in sys.modules
  np.savez(sys.argv[2], action=np.stack(actions), **{k: v.numpy() for k, v in state.items()})
""")


def test_export_acts_like_the_live_agent_without_dreamer_tf(logdir, tmp_path):
  out = tmp_path / 'saved'
  # The live agent in the exported mode (run.eval_sample false): the actor's mode after a
  # sampled posterior, whose seeds (one per step from Agent.rng) a copy of its RNG predicts.
  live = export.export(logdir, out, log=quiet)
  assert not live.config.run.eval_sample
  rng = tf.random.Generator.from_state(live.agent.rng.state.numpy(), live.agent.rng.algorithm)
  env = envs.make('dummy_cont', live.config, seed=5)
  obs, state, steps = env.reset(), live.initial_state(1), []
  for _ in range(6):
    seed = rng.uniform_full_int([2], tf.int32).numpy()
    action, state = live.act(batch(obs), state, 'eval')
    steps.append({'image': obs['image'][None], 'is_first': np.array([obs['is_first']]),
                  'seed': seed, 'action': action})
    obs = env.step(action[0])
  data = tmp_path / 'steps.npz'
  np.savez(data, **{k: np.stack([s[k] for s in steps]) for k in steps[0]})
  paths = sorted({sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']})
  # -I: no PYTHONPATH, no cwd on sys.path; -S: no site-packages .pth files, so not the
  # editable install of dreamer_tf either; TensorFlow comes from the paths given.
  proc = subprocess.run([sys.executable, '-I', '-S', '-c', PLAYER, str(out), str(data), *paths],
                        cwd=tmp_path, capture_output=True, text=True, timeout=120,
                        env={'PATH': '/usr/bin:/bin', 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert proc.returncode == 0, proc.stderr[-3000:]
  got = np.load(data)
  expected = np.stack([s['action'] for s in steps])
  np.testing.assert_allclose(got['action'], expected, rtol=1e-5, atol=1e-6)
  assert len(np.unique(np.round(expected, 3))) > 1  # the actions vary over the steps
  latent, prev_action = state
  np.testing.assert_allclose(got['prev_action'], prev_action.numpy(), rtol=1e-5, atol=1e-6)
  for key in ('deter', 'stoch', 'logit'):
    np.testing.assert_allclose(got[key], latent[key].numpy(), rtol=1e-5, atol=1e-5)


def test_bad_logdirs_are_refused(logdir, tmp_path, capsys):
  with pytest.raises(FileNotFoundError, match='nowhere is not a directory'):
    load_policy(tmp_path / 'nowhere')
  with pytest.raises(FileNotFoundError, match='is not a run directory: it has no config.yaml'):
    load_policy(tmp_path)
  assert evaluate.main([str(tmp_path), '--episodes', '1']) == 2
  assert 'error:' in capsys.readouterr().err and not (tmp_path / 'evaluate.json').exists()
  (tmp_path / 'config.yaml').write_text((logdir / 'config.yaml').read_text())
  with pytest.raises(FileNotFoundError, match='has no checkpoint in .*: the run has not saved'):
    load_policy(tmp_path)
  assert not (tmp_path / 'checkpoints').exists()
  shutil.copytree(logdir / 'checkpoints', tmp_path / 'checkpoints')
  for path in (tmp_path / 'checkpoints').glob('ckpt-*'):
    path.write_bytes(b'truncated')
  with pytest.raises(checkpoint_lib.CheckpointError, match='No checkpoint in .* could be read'):
    load_policy(tmp_path, log=quiet)
  with pytest.raises(FileExistsError, match='is not an empty directory'):
    export.export(logdir, tmp_path)
  assert export.main([str(tmp_path / 'nowhere'), str(tmp_path / 'out')]) == 2
  assert not (tmp_path / 'out').exists()
