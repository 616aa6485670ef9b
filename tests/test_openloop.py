"""Open-loop prediction videos (dreamer_tf/openloop.py; dreamerv3@8fa35f8 WorldModel.report)."""
import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from conftest import random_batch
from dreamer_tf import agent as agent_lib
from dreamer_tf import config as cfg
from dreamer_tf import openloop
from dreamer_tf import run

quiet = lambda *a: None
H = W = 16
T, CONTEXT = 12, 5  # the debug preset's batch_length; the official context


def space(size=H, vector=False, image=True):
  out = {'reward': ((), np.float32), 'is_first': ((), bool), 'is_last': ((), bool),
         'is_terminal': ((), bool)}
  if image:
    out['image'] = ((size, size, 3), np.uint8)
  if vector:
    out['vector'] = ((5,), np.float32)
  return out


def make_agent(presets=('dreamerv3', 'debug'), overrides=None, obs=None, actions=4):
  config = cfg.load(list(presets), overrides or {})
  return agent_lib.Agent(obs or space(), {'shape': (actions,), 'discrete': True}, config)


def rows(video, count):
  """(T, 3H, n W, C) -> truth, prediction, error, each (n, T, H, W, C)."""
  steps, height, _, channels = video.shape
  x = video.reshape(steps, 3, height // 3, count, -1, channels)
  return tuple(x[:, i].transpose(2, 0, 1, 3, 4) for i in range(3))


@pytest.fixture(scope='module')
def gaussian():
  """Gaussian latents: every change of a latent's statistics changes its sample (a categorical
  sample can keep its class), so the tests below can see which inputs a prediction reads."""
  return make_agent(overrides={'rssm.latent': 'gaussian'})


def test_video_layout_truth_rows_and_error(gaussian):
  batch = random_batch(gaussian, 4, T)
  videos = openloop.video(gaussian, batch)  # count 6 > B 4: all four sequences
  assert list(videos) == ['image']
  video = videos['image']
  assert video.shape == (T, 3 * H, 4 * W, 3) and video.dtype == np.uint8
  truth, pred, error = rows(video, 4)
  np.testing.assert_array_equal(truth, batch['image'])  # the batch's own bytes
  report = openloop.OpenLoop(gaussian)  # traced once for the calls below
  np.testing.assert_array_equal(video, report(batch)['image'])  # seeded
  assert not np.array_equal(video, report(batch, seed=1)['image'])
  # Images after the context do not enter the prediction; a batch that shows the predicted
  # images there gives the error of a perfect prediction: 0.5, i.e. 127.5 rounded to 127/128
  # (where the prediction is inside [0, 1]: the error is of the unclipped prediction).
  batch['image'][:, CONTEXT:] = pred[:, CONTEXT:]
  again = rows(report(batch)['image'], 4)
  np.testing.assert_array_equal(again[1], pred)
  inside = (pred[:, CONTEXT:] > 0) & (pred[:, CONTEXT:] < 255)
  assert inside.mean() > 0.5 and set(np.unique(again[2][:, CONTEXT:][inside])) <= {127, 128}
  assert np.abs(error.astype(int) - 127.5).max() > 1  # the random model errs in the context
  first = openloop.video(gaussian, batch, count=1)['image']
  assert first.shape == (T, 3 * H, W, 3)
  np.testing.assert_array_equal(rows(first, 1)[0], batch['image'][:1])


def test_context_is_posterior_then_open_loop(gaussian):
  batch = random_batch(gaussian, 2, T)
  report = openloop.OpenLoop(gaussian)
  pred = rows(report(batch)['image'], 2)[1]
  # An image inside the context changes the prediction from its own step on: x_t enters
  # q(z_t | h_t, x_t), the posterior, which the prior p(z_t | h_t) would not read.
  changed = {**batch, 'image': batch['image'].copy()}
  changed['image'][:, 2] = 255 - changed['image'][:, 2]
  other = rows(report(changed)['image'], 2)[1]
  np.testing.assert_array_equal(other[:, :2], pred[:, :2])
  assert all(not np.array_equal(other[:, t], pred[:, t]) for t in range(2, T))
  # Images from the context on change nothing; the action a_t (stored with x_t) moves the
  # prediction of x_{t+1} and later ones: the model steps with the previous action.
  changed = {**batch, 'image': batch['image'].copy(), 'action': batch['action'].copy()}
  changed['image'][:, CONTEXT:] = 0
  t = CONTEXT + 1
  changed['action'][:, t] = np.roll(changed['action'][:, t], 1, -1)
  other = rows(report(changed)['image'], 2)[1]
  np.testing.assert_array_equal(other[:, :t + 1], pred[:, :t + 1])
  assert all(not np.array_equal(other[:, s], pred[:, s]) for s in range(t + 1, T))


@pytest.mark.parametrize('presets, overrides, size', [
    (('dreamerv1', 'debug'), {}, 64),                          # Gaussian, kernel CNNs, Normal
    (('dreamerv2', 'dreamerv2_dmc_vision', 'debug'), {}, 64),  # categorical V2
    (('dreamerv3', 'debug'), {'precision': 'float16'}, H),
    (('dreamerv3', 'debug'), {'precision': 'bfloat16', 'compile': 'eager'}, H),
])
def test_every_version_and_precision(presets, overrides, size):
  agent = make_agent(presets, overrides, space(size))
  batch = random_batch(agent, 3, T)
  video = openloop.video(agent, batch, count=2)['image']
  assert video.shape == (T, 3 * size, 2 * size, 3) and video.dtype == np.uint8
  np.testing.assert_array_equal(rows(video, 2)[0], batch['image'][:2])


def test_vector_keys_are_skipped_and_no_image_gives_nothing():
  agent = make_agent(obs=space(vector=True))
  assert list(openloop.video(agent, random_batch(agent, 2, T))) == ['image']
  agent = make_agent(obs=space(vector=True, image=False))
  assert openloop.video(agent, random_batch(agent, 2, T)) == {}


def test_bad_arguments_are_named(gaussian):
  batch = random_batch(gaussian, 2, T)
  with pytest.raises(ValueError, match='context 12 leaves nothing to predict in sequences of 12'):
    openloop.video(gaussian, batch, context=T)
  with pytest.raises(ValueError, match='context and count must be >= 1, got 0 and 6'):
    openloop.video(gaussian, batch, context=0)
  with pytest.raises(KeyError, match=r"The batch lacks \['action'\]"):
    openloop.video(gaussian, {k: v for k, v in batch.items() if k != 'action'})


def test_frame_grid_layout():
  video = np.arange(8 * 6 * 4 * 1).reshape(8, 6, 4, 1).astype(np.uint8)  # T 8, H 2, n 2, W 2
  grid = openloop.frame_grid(video, width=2, context=3, stride=4, pad=1, gap=2)
  # Per sequence 3 rows of 2 + 1 pixels and a gap of 2; the columns of steps 0 (context) and 4.
  assert grid.shape == (2 * (3 * 3 + 2), 3 + 2 + 3, 1)
  # Sequence 1, its error row, the column of step 4: the video's frame 4 there.
  np.testing.assert_array_equal(grid[11 + 2 * 3:][:2, 5:7], video[4, 4:6, 2:4])
  np.testing.assert_array_equal(grid[:2, :2], video[0, :2, :2])
  for lines in (grid[2], grid[9:11], grid[:, 2], grid[:, 3:5]):  # cell, sequence and context
    assert (lines == 255).all()


def test_reporter_writes_prunes_and_paces(gaussian, tmp_path, monkeypatch):
  writer = tf.summary.create_file_writer(str(tmp_path / 'tb'))
  reporter = openloop.Reporter(gaussian, tmp_path / 'report', writer, repeat=4, keep=2,
                               stride=2, log=quiet)
  batch = random_batch(gaussian, 4, T)
  for step in (10, 20, 30):
    paths = reporter(step, batch)
  assert [p.name for p in paths] == ['openloop_image_30.mp4', 'openloop_image_30.png']
  assert sorted(p.name for p in (tmp_path / 'report').iterdir()) == [
      'openloop_image_20.mp4', 'openloop_image_20.png', 'openloop_image_30.mp4',
      'openloop_image_30.png']
  frames = iio.imread(paths[0], plugin='FFMPEG', index=None)
  assert frames.shape == (T, 3 * H, 4 * W, 3)
  grid = iio.imread(paths[1])
  assert grid.shape == (4 * (3 * (H + 1) + 4), T // 2 * (W + 1) + 4, 3)
  writer.close()
  images = [(e.step, v.tag) for path in (tmp_path / 'tb').iterdir()
            for e in tf.compat.v1.train.summary_iterator(str(path)) for v in e.summary.value]
  assert images == [(40, 'openloop/image'), (80, 'openloop/image'), (120, 'openloop/image')]
  # Pacing: never for every 0; else every `every` seconds, the first after `every` seconds.
  assert not openloop.Reporter(gaussian, tmp_path, every=0).due()
  now = [1000.0]
  monkeypatch.setattr(openloop.time, 'monotonic', lambda: now[0])
  paced = openloop.Reporter(gaussian, tmp_path, every=60)
  due = []
  for now[0] in (1000.0, 1059.0, 1060.0, 1061.0, 1120.0):
    due.append(paced.due())
  assert due == [False, False, True, False, True]


@pytest.fixture(scope='module')
def logdir(tmp_path_factory):
  """A tiny dummy_disc run: 48 random prefill steps, then 12 agent steps with 8 updates."""
  logdir = tmp_path_factory.mktemp('run')
  config = cfg.load(['dreamerv3', 'debug'], [
      '--task', 'dummy_disc', '--env.dummy.size', '16,16', '--env.dummy.length', '10',
      '--run.steps', '60'])
  assert run.run(config, logdir, log=quiet)['step'] == 60
  return logdir


def test_cli_reports_a_finished_run(logdir, capsys):
  out = logdir / 'report'  # the default directory
  files = lambda: {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in logdir.rglob('*')
                   if out not in p.parents and p != out}
  before = files()
  assert openloop.main([str(logdir), '--seed', '3', '--stride', '1']) == 0
  assert files() == before  # the run's checkpoints and replay are untouched
  assert sorted(p.name for p in out.iterdir()) == ['openloop_image_60.mp4', 'openloop_image_60.png']
  assert 'openloop_image_60.png' in capsys.readouterr().out
  frames = iio.imread(out / 'openloop_image_60.mp4', plugin='FFMPEG', index=None)
  assert frames.shape == (T, 3 * H, 4 * W, 3)  # batch_size 4 < count 6
  grid = iio.imread(out / 'openloop_image_60.png')  # every step a column
  assert grid.shape == (4 * (3 * (H + 1) + 4), T * (W + 1) + 4, 3)
  # The truth rows are uniform grey levels of dummy_disc (the mp4 is lossy; the PNG is not).
  assert set(np.unique(grid[:H, :W])) <= {0, 85, 170, 255}
  assert openloop.main([str(out)]) == 2
  assert 'is not a run directory' in capsys.readouterr().err
