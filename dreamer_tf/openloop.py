"""Open-loop prediction videos of the world model (dreamerv3@8fa35f8 agent.WorldModel.report).

For the first `count` sequences of a replay batch (B, T, ...) the model observes the first
`context` steps and imagines the rest from the batch's actions; every image key the decoder
models is decoded (vector keys are skipped). As the official report:

- steps 0 .. context-1: posterior states of rssm.observe from the initial state, each z_t a
  sample of q(z_t | h_t, x_t);
- steps context .. T-1: img_step from the last posterior state over the batch's actions
  (nets.RSSM.imagine), each z_t a sample of p(z_t | h_t), with no reset at an is_first;
- images: the decoder's mode (the mean image) of those states;
- rows truth, prediction, error = (prediction - truth + 1) / 2 stacked along the height, the
  sequences side by side (jaxutils.video_grid): one video (T, 3H, count * W, C) per key;
- values clipped to [0, 1] and scaled to uint8 (embodied/core/logger.py TensorBoardOutput).

Ours differs in three details. Actions: 8fa35f8 feeds data['action'][:, t] into the step of
x_t, whereas its loss (and ours) feeds a_{t-1} (a stored step holds x_t and the action chosen at
x_t); we feed a_{t-1}, as the model is trained. uint8: the truth rows are the batch's own bytes
and the other rows are rounded, where the official logger truncates 255 v (an error of zero is
127 there, 128 here). Randomness: the latent samples come from a stateless `seed`, not the
agent's RNG, so that reports leave training's random streams as they are.

`Reporter` writes reports during training (run.report_every seconds) or once from a finished
run: `python -m dreamer_tf.openloop LOGDIR [--out DIR]` restores the newest checkpoint, takes the
first `count` sequences of the batch the run's replay would give next (the replay the checkpoint
holds, loaded as a resume loads it) and writes `openloop_<key>_<step>.mp4` and `.png` (default
DIR: LOGDIR/report). A model without an image decoder has no report.

Cost per call (XS model, 64x64x3 images, 6 actions, batch 16 x 64, float32, 2 CPU cores shared
with other jobs at a load of ~8): OpenLoop in graph mode 2.9 s for the first call (tracing),
then 0.64 s (median of 10; 0.37 s the fastest); eager 1.1 s a call. A Reporter call adds the
files: mp4 0.7 s (smooth frames) to 2.4 s (noise, an untrained model), PNG 0.1-0.3 s,
TensorBoard image 0.05-0.2 s; at the default run.report_every of 300 s, under 1% of a run.
"""
import argparse
import pathlib
import re
import sys
import tempfile
import time

if __name__ == '__main__':  # before TensorFlow's import: its start-up lines stay off stderr
  from dreamer_tf import quiet
  quiet.quiet_tensorflow()

import imageio.v3 as iio  # noqa: E402
import numpy as np
import tensorflow as tf

from . import agent as agent_lib
from . import checkpoint as checkpoint_lib
from . import evaluate
from . import policy as policy_lib
from . import replay as replay_lib

FILE = re.compile(r'openloop_(.+)_(\d+)\.(mp4|gif|png)')  # key, step, kind
SAFE = re.compile(r'[^\w.-]')  # characters of a key that are replaced in file names


class OpenLoop:
  """The open-loop videos of one agent, compiled per the agent's `compile` mode (traced on the
  first call and again for a new batch shape)."""

  def __init__(self, agent, context=5, count=6):
    if context < 1 or count < 1:
      raise ValueError(f'context and count must be >= 1, got {context} and {count}.')
    self.agent, self.context, self.count = agent, context, count
    decoder = agent.wm.decoder  # None for DreamerPro's prototypes
    self.keys = tuple(decoder.cnn_shapes) if decoder is not None else ()
    self._videos = agent_lib._compile(self._graph, agent.config.compile)

  def __call__(self, batch, seed=0):
    """batch: replay arrays (B, T, ...). Returns {image key: uint8 (T, 3H, n W, C)} for the
    first n = min(count, B) sequences; {} when the decoder models no image."""
    if not self.keys:
      return {}
    missing = sorted(set(self.agent.data_space) - set(batch))
    if missing:
      raise KeyError(f'The batch lacks {missing}; it has {sorted(batch)}.')
    length = np.shape(batch['is_first'])[1]
    if self.context >= length:
      raise ValueError(f'context {self.context} leaves nothing to predict in sequences of '
                       f'{length} steps.')
    data = {k: np.asarray(batch[k])[:self.count] for k in self.agent.data_space}
    videos = self._videos(data, tf.constant([seed, 0], tf.int32))
    return {k: v.numpy() for k, v in videos.items()}

  def _graph(self, data, seed):
    wm, context = self.agent.wm, self.context
    seed_obs, seed_img = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    obs = wm.preprocess(data)
    prev_action = tf.concat([tf.zeros_like(obs['action'][:, :1]), obs['action'][:, :-1]], 1)
    embed = wm.encoder({k: v[:, :context] for k, v in obs.items()})
    post, _ = wm.rssm.observe(
        embed, prev_action[:, :context], obs['is_first'][:, :context], seed_obs)
    start = {k: v[:, -1] for k, v in post.items()}
    prior = imagine(wm.rssm, start, prev_action[:, context:], seed_img)
    dists = wm.decoder({k: tf.concat([post[k], prior[k]], 1) for k in post})
    videos = {}
    for key in self.keys:
      model = dists[key].mode()
      rows = [data[key], to_uint8(model), to_uint8((model - obs[key] + 1) / 2)]
      video = tf.transpose(tf.concat(rows, 2), [1, 2, 0, 3, 4])  # (T, 3H, n, W, C)
      shape = tf.shape(video)
      videos[key] = tf.reshape(video, [shape[0], shape[1], -1, shape[4]])
    return videos


def video(agent, batch, context=5, count=6, seed=0):
  """One report's videos (OpenLoop); repeated calls should reuse an OpenLoop, traced once."""
  return OpenLoop(agent, context, count)(batch, seed)


def imagine(rssm, start, actions, seed):
  """Prior states (N, L, ...) of img_step from `start` (N, ...) over `actions` (N, L, A)."""
  swap = lambda x: tf.transpose(x, [1, 0] + list(range(2, len(x.shape))))
  seeds = tf.random.experimental.stateless_split(seed, actions.shape[1])
  states = tf.scan(lambda prev, inputs: rssm.img_step(prev, *inputs), (swap(actions), seeds),
                   {k: start[k] for k in rssm.keys})
  return {k: swap(v) for k, v in states.items()}


def to_uint8(x):
  return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)


def frame_grid(video, width, context, stride=4, pad=1, gap=4):
  """A video (T, 3H, n W, C) as one image: per sequence the rows truth, prediction and error,
  one column per `stride`-th step (0, stride, ...). White lines of `pad` pixels separate the
  cells, of `pad + gap` the sequences and the context (steps < `context`) from the open loop."""
  height, count, channels = video.shape[1] // 3, video.shape[2] // width, video.shape[-1]
  white = lambda x, axis, size: np.pad(
      x, [(0, size * (i == axis)) for i in range(x.ndim)], constant_values=255)
  x = video[::stride].reshape(-1, 3, height, count, width, channels)
  x = white(white(x, 2, pad), 4, pad).transpose(3, 1, 2, 0, 4, 5)  # (n, 3, H', steps, W', C)
  x = white(x.reshape(count, 3 * (height + pad), *x.shape[3:]), 1, gap)
  split = -(-context // stride)  # columns of context steps
  parts = [x[:, :, :split], x[:, :, split:]]
  parts = [p.reshape(*p.shape[:2], p.shape[2] * p.shape[3], channels) for p in parts]
  x = np.concatenate([white(parts[0], 2, gap), parts[1]], 2)
  return x.reshape(-1, *x.shape[2:])


class Reporter:
  """Writes open-loop reports (OpenLoop) of replay batches: `openloop_<key>_<step>.mp4` (the
  video at `fps`; a GIF when mp4 writing fails, evaluate.write_video) and `.png` (frame_grid)
  in `directory`, keeping the files of the newest `keep` steps per key (None: all), and the
  frame grid to TensorBoard through `writer` (tag `openloop/<key>`, at step * `repeat` frames
  as logger.Logger's scalars). `due()` paces the reports every `every` seconds."""

  def __init__(self, agent, directory, writer=None, repeat=1, every=0, keep=5, stride=4,
               context=5, count=6, fps=20, seed=0, log=print):
    if keep is not None and keep < 1:
      raise ValueError(f'keep must be >= 1 or None, got {keep}.')
    self.openloop = OpenLoop(agent, context, count)
    self.directory = pathlib.Path(directory)
    self.writer, self.repeat, self.every, self.keep = writer, repeat, every, keep
    self.stride, self.fps, self.seed, self.log = stride, fps, seed, log
    self.widths = {k: agent.obs_space[k][0][1] for k in self.openloop.keys}
    self.prev = time.monotonic()

  def due(self):
    """True at most once every `every` seconds, never when `every` <= 0 (embodied.when.Clock).
    The official Clock is also true at its first call; here the first report waits `every`
    seconds, keeping its tracing out of the start-up and out of short runs."""
    now = time.monotonic()
    if self.every <= 0 or now < self.prev + self.every:
      return False
    self.prev = now
    return True

  def __call__(self, step, batch):
    """Writes the report of `batch` at agent step `step`; returns the paths written."""
    paths = []
    for key, frames in self.openloop(batch, self.seed).items():
      self.directory.mkdir(parents=True, exist_ok=True)
      grid = frame_grid(frames, self.widths[key], self.openloop.context, self.stride)
      stem = self.directory / f"openloop_{SAFE.sub('_', key)}_{step}"
      paths.append(evaluate.write_video(stem, frames, self.fps, self.log))
      paths.append(stem.with_suffix('.png'))
      iio.imwrite(paths[-1], grid[..., 0] if grid.shape[-1] == 1 else grid)
      if self.writer is not None:
        with self.writer.as_default(step=int(step * self.repeat)):
          tf.summary.image(f'openloop/{key}', grid[None])
    if self.writer is not None:
      self.writer.flush()
    self._prune()
    return paths

  def _prune(self):
    if self.keep is None or not self.directory.exists():
      return
    files = {}  # key -> step -> paths
    for path in self.directory.iterdir():
      match = FILE.fullmatch(path.name)
      if match:
        files.setdefault(match[1], {}).setdefault(int(match[2]), []).append(path)
    for steps in files.values():
      for step in sorted(steps)[:-self.keep]:
        for path in steps[step]:
          path.unlink(missing_ok=True)


def sample(logdir, config, state, count):
  """The first `count` sequences of the batch that the run's replay, as the checkpoint's replay
  `state` holds it, would give next. Its chunks are read through links in a temporary
  directory: Replay.load rewrites the step counter and removes *.tmp files, which must not
  touch a run that is still writing."""
  source = pathlib.Path(logdir) / 'replay'
  with tempfile.TemporaryDirectory() as tmp:
    for path in source.rglob('*.npz'):  # env_<i>/ per env stream (replay.Streams)
      link = pathlib.Path(tmp) / path.relative_to(source)
      link.parent.mkdir(parents=True, exist_ok=True)
      link.symlink_to(path.resolve())
    replay = replay_lib.make(len(state.get('streams', [state])), config.batch_length,
                             config.replay_size, config.replay_chunk, tmp)
    replay.load(state)
    return {k: v[:count] for k, v in replay.sample(config.batch_size).items()}


def report(logdir, out=None, seed=0, stride=4, log=print):
  """Writes the open-loop report of the run in `logdir` at its newest checkpoint to `out`
  (default LOGDIR/report), latents sampled with `seed`; returns the paths written."""
  logdir = pathlib.Path(logdir)
  policy = policy_lib.load_policy(logdir, log=log)
  reporter = Reporter(policy.agent, out or logdir / 'report', keep=None, stride=stride,
                      seed=seed, log=log)
  if not reporter.openloop.keys:
    raise ValueError(f'The run in {logdir} decodes no image (decoder.cnn_keys '
                     f'{policy.config.decoder.cnn_keys!r}); there is no video to make.')
  batch = sample(logdir, policy.config, policy.extra['replay'], reporter.openloop.count)
  paths = reporter(policy.step, batch)
  log(f"[openloop] step {policy.step:,}: {', '.join(str(p) for p in paths)}")
  return paths


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m dreamer_tf.openloop',
      description='Open-loop prediction video and frame grid of a run at its newest checkpoint.')
  parser.add_argument('logdir', help='run directory (config.yaml, checkpoints/, replay/)')
  parser.add_argument('--out', default=None, help='output directory (default: LOGDIR/report)')
  parser.add_argument('--seed', type=int, default=0, help='seed of the latent samples')
  parser.add_argument('--stride', type=int, default=4, help='steps between grid columns')
  parser.add_argument('--verbose', action='store_true',
                      help="show TensorFlow's start-up and C++ log lines (dreamer_tf/quiet.py)")
  args = parser.parse_args(argv)
  if args.stride < 1 or args.seed < 0:
    parser.error(f'--stride must be >= 1 and --seed >= 0, got {args.stride} and {args.seed}.')
  try:
    report(args.logdir, args.out, args.seed, args.stride)
  except (FileNotFoundError, ValueError, checkpoint_lib.CheckpointError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
