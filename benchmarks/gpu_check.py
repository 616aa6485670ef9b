"""GPU check: the S preset's train step in float32 and float16, graph and XLA (seconds per update,
peak GPU memory), then a two-minute Pong run (agent steps per second); under 8 minutes.

    python benchmarks/gpu_check.py                      # the figures for the README
    python benchmarks/gpu_check.py --learn-minutes 6    # then Pong as far as 6 minutes allow

`--learn-minutes M` is the first real learning check: the published 2023 Pong curve leaves -20
near 40k frames and is at about -16.5 (5 seeds) by 60k, where a random policy (-20.7) falls
outside the band. It prints the projected time to 60k frames at the measured speed and runs
`reproduce/atari100k.py --game pong --size s` (paper settings) to the largest frame count that
fits in M minutes, in `--logdir` (a later call resumes it), ending with the verdict. Without a
GPU it says so and exits with status 2.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}
PREFILL = 1024   # agent steps of random prefill before the first update (one batch of windows)
REPEAT = 4       # Atari frames per agent step


def gpus():
  out = subprocess.run([sys.executable, '-c', 'import tensorflow as tf; print(len('
                        'tf.config.list_physical_devices("GPU")))'], capture_output=True,
                       text=True, env=ENV, timeout=300)
  return int(out.stdout.strip() or 0)


def train_step(precision, compile_mode, updates):
  """benchmarks/train_step.py at size S; returns its JSON figures."""
  with tempfile.NamedTemporaryFile(suffix='.json') as f:
    cmd = [sys.executable, str(ROOT / 'benchmarks' / 'train_step.py'), '--size', 's',
           '--updates', str(updates), '--json', f.name, f'--precision={precision}',
           f'--compile={compile_mode}']
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    if proc.returncode:
      return {'error': proc.stderr.strip().splitlines()[-1]}
    return json.loads(pathlib.Path(f.name).read_text())


def pong(seconds, logdir):
  """Trains Pong (S, paper settings) for `seconds`; returns agent steps/s after the prefill."""
  cmd = [sys.executable, str(ROOT / 'reproduce' / 'atari100k.py'), '--game', 'pong', '--size',
         's', '--logdir', str(logdir), '--run.log_every=10']
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=ENV, cwd=ROOT)
  start, marks = time.time(), []
  for line in proc.stdout:
    match = re.search(r'\[train\] step ([\d,]+)/', line)
    if match:
      marks.append((time.time(), int(match.group(1).replace(',', ''))))
    if time.time() - start > seconds:
      break
  proc.terminate()
  proc.wait(60)
  if len(marks) < 2:
    return {'agent_steps_per_s': None, 'note': 'fewer than two progress lines'}
  (t0, s0), (t1, s1) = marks[0], marks[-1]
  return {'agent_steps_per_s': (s1 - s0) / (t1 - t0), 'steps_reached': s1}


def learn(minutes, sec_per_update, steps_per_s, logdir):
  """Projects the time to 60k frames and runs Pong to the frame count that fits."""
  target = 60000 // REPEAT
  # Ratio 1024 / (16 x 64): one update per agent step after the prefill, plus acting.
  per_step = sec_per_update + 1.0 / max(steps_per_s, 1e-9) if steps_per_s else sec_per_update
  projected = (target - PREFILL) * per_step
  print(f'Projected time to 60k frames ({target:,} agent steps): {projected / 60:.1f} min at '
        f'{per_step:.3f} s per agent step.', flush=True)
  steps = min(target, PREFILL + int(minutes * 60 * 0.9 / per_step))
  steps -= steps % 1000
  if steps <= PREFILL:
    print(f'{minutes} minutes do not reach past the prefill; not started.')
    return None
  print(f'Running Pong to {steps:,} agent steps ({steps * REPEAT:,} frames) in {logdir}.',
        flush=True)
  cmd = [sys.executable, str(ROOT / 'reproduce' / 'atari100k.py'), '--game', 'pong', '--size',
         's', '--logdir', str(logdir), '--steps', str(steps)]
  return subprocess.run(cmd, env=ENV, cwd=ROOT, timeout=int(minutes * 60) + 300).returncode


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--updates', type=int, default=10, help='timed updates per variant')
  parser.add_argument('--pong-seconds', type=int, default=120)
  parser.add_argument('--learn-minutes', type=float, default=0.0)
  parser.add_argument('--logdir', default='runs/gpu_check/pong')
  parser.add_argument('--json', default=None, help='also write the figures to this file')
  args = parser.parse_args(argv)
  count = gpus()
  if not count:
    print('No GPU visible to TensorFlow: nothing measured (install .[cuda] on a GPU machine).')
    return 2
  figures = {'gpus': count, 'train_step': {}}
  for precision in ('float32', 'float16'):
    for mode in ('graph', 'xla'):
      out = train_step(precision, mode, args.updates)
      figures['train_step'][f'{precision}/{mode}'] = {
          k: out.get(k) for k in ('sec_per_update_median', 'peak_gpu_gb',
                                  'compile_and_first_update_s', 'error')}
      print(f'S {precision:8s} {mode:5s}: {out.get("sec_per_update_median")} s/update, '
            f'peak GPU memory {out.get("peak_gpu_gb")} GB', flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    figures['pong'] = pong(args.pong_seconds, pathlib.Path(tmp) / 'pong')
  print(f"Pong (S, float32, paper settings): {figures['pong']['agent_steps_per_s']} agent "
        'steps/s', flush=True)
  print(json.dumps(figures, indent=1))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(figures, indent=1))
  if args.learn_minutes:
    best = figures['train_step']['float32/xla'].get('sec_per_update_median') or \
        figures['train_step']['float32/graph']['sec_per_update_median']
    learn(args.learn_minutes, best, figures['pong']['agent_steps_per_s'], args.logdir)
  return 0


if __name__ == '__main__':
  sys.exit(main())
