"""Evaluates a trained run: N episodes of its own task with the restored policy, optionally
recorded as videos.

    python -m dreamer_tf.evaluate runs/pong/seed0 --episodes 10 --video videos/

Prints each episode's return and length and the mean and std (population, ddof 0) of the
returns, and writes them to `LOGDIR/evaluate.json` (replaced by each evaluation); the run's
training logs (episodes.jsonl, scores.json, metrics, checkpoints) are left untouched.
`--seed` seeds the evaluation env and the policy's RNG (default: the run's seed + 10000, the
seed of the evaluation env of run.script train_eval). `--video DIR` writes
`episode_<i>.mp4` per episode (H.264 through imageio-ffmpeg), or `episode_<i>.gif` when mp4
writing fails; one frame per observation from the reset to the last one, so an episode of
length L (env steps) has L + 1 frames. Frames are the `image` observation, else `env.render()`.
"""
import argparse
import json
import pathlib
import sys

if __name__ == '__main__':  # before TensorFlow's import: its start-up lines stay off stderr
  from dreamer_tf import quiet
  quiet.quiet_tensorflow()

import imageio.v3 as iio  # noqa: E402
import imageio_ffmpeg
import numpy as np

from . import checkpoint as checkpoint_lib
from . import driver as driver_lib
from . import logger as logger_lib
from . import policy as policy_lib

MODES = ('eval', 'train')


def frame_source(env):
  """Function of a transition returning its (H, W, 3) uint8 frame."""
  if 'image' in env.obs_space:
    return lambda obs: obs['image']
  if hasattr(env, 'render'):
    return lambda obs: env.render()
  raise ValueError(
      f"--video needs an 'image' observation or an env with render(); this env has neither "
      f"(observations: {', '.join(sorted(env.obs_space))}).")


def write_video(stem, frames, fps, log=print):
  """Writes frames (T, H, W, C) uint8 to `stem`.mp4, or to `stem`.gif if mp4 writing fails;
  returns the path written. Grey frames (C = 1) are written as RGB. A GIF (Pillow) merges
  identical consecutive frames into one of their summed duration."""
  frames = np.asarray(frames, np.uint8)
  if frames.shape[-1] == 1:
    frames = np.repeat(frames, 3, -1)
  path = stem.with_suffix('.mp4')
  try:
    # macro_block_size 1: no resizing, frames keep their size. ffmpeg can fail without an
    # exception here (H.264 needs even sides), so the written frames are counted.
    iio.imwrite(path, frames, plugin='FFMPEG', fps=fps, macro_block_size=1)
    written = imageio_ffmpeg.count_frames_and_secs(str(path))[0]
    if written == len(frames):
      return path
    reason = f'{written} of {len(frames)} frames readable'
  except (ImportError, OSError, RuntimeError, ValueError) as e:
    reason = f'{type(e).__name__}: {str(e).splitlines()[0]}'
  path.unlink(missing_ok=True)
  log(f'mp4 writing failed for {stem.name} {frames.shape[1:]} ({reason}); writing a GIF.')
  path = stem.with_suffix('.gif')
  iio.imwrite(path, frames, plugin='pillow', duration=1000 / fps, loop=0)
  return path


def evaluate(logdir, episodes, video=None, mode='eval', seed=None, fps=30, env_fn=None,
             log=print):
  """Runs `episodes` episodes of the run's task (or of `env_fn()`, policy.make_env); returns
  the dict written to evaluate.json."""
  if mode not in MODES:
    raise ValueError(f"Unknown mode '{mode}'. Valid: {', '.join(MODES)}.")
  if episodes < 1:
    raise ValueError(f'--episodes must be at least 1, got {episodes}.')
  logdir = pathlib.Path(logdir)
  policy = policy_lib.load_policy(logdir, env_fn=env_fn, log=log)
  config = policy.config
  seed = config.seed + 10000 if seed is None else seed
  policy.reseed(seed)
  env = policy_lib.make_env(config, seed, env_fn)
  rows, frames = [], []
  try:
    driver = driver_lib.Driver(env, policy.initial_state)
    if video:
      frame = frame_source(env)
      video = pathlib.Path(video)
      video.mkdir(parents=True, exist_ok=True)
      driver.on_step.append(lambda tr, _: frames.append(np.asarray(frame(tr), np.uint8)))

    def on_episode(ep, _):
      row = {'return': ep['score'], 'length': ep['length']}
      if video:
        row['video'] = str(write_video(video / f'episode_{len(rows)}', frames, fps, log))
        frames.clear()
      rows.append(row)
      log(f"[evaluate] episode {len(rows)}/{episodes}: return {ep['score']:.2f}, "
          f"length {ep['length']}" + (f", video {row['video']}" if video else ''))
    driver.on_episode.append(on_episode)
    driver(lambda obs, state: policy.act(obs, state, mode), episodes=episodes)
  finally:
    env.close()
  returns = [r['return'] for r in rows]
  result = {'logdir': str(logdir), 'task': config.task, 'method': config.method,
            'step': policy.step, 'mode': mode, 'eval_sample': config.run.eval_sample,
            'seed': seed, 'episodes': rows, 'mean': float(np.mean(returns)),
            'std': float(np.std(returns))}
  logger_lib._write_atomic(logdir / 'evaluate.json', json.dumps(result, indent=1))
  log(f'[evaluate] {config.task} at step {policy.step:,}, mode {mode}: mean return '
      f"{result['mean']:.2f} ± {result['std']:.2f} over {len(rows)} episodes "
      f"({logdir / 'evaluate.json'}).")
  return result


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('logdir', help='run directory (config.yaml, checkpoints/)')
  parser.add_argument('--episodes', type=int, default=10)
  parser.add_argument('--video', default=None, help='directory for one video per episode')
  parser.add_argument('--mode', default='eval', choices=MODES,
                      help="policy mode: 'eval' samples the actor when run.eval_sample, "
                      "else takes its mode; 'train' samples (with the run's expl_noise)")
  parser.add_argument('--seed', type=int, default=None,
                      help="env and policy seed (default: the run's seed + 10000)")
  parser.add_argument('--fps', type=int, default=30, help='video frames per second')
  parser.add_argument('--verbose', action='store_true',
                      help="show TensorFlow's start-up and C++ log lines (dreamer_tf/quiet.py)")
  args = parser.parse_args(argv)
  for name in ('episodes', 'fps'):
    if getattr(args, name) < 1:
      parser.error(f'--{name} must be >= 1, got {getattr(args, name)}.')
  try:
    evaluate(args.logdir, args.episodes, args.video, args.mode, args.seed, args.fps)
  except (FileNotFoundError, ValueError, checkpoint_lib.CheckpointError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
