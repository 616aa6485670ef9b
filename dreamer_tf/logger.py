"""Run outputs: progress line, metrics.jsonl, TensorBoard scalars, episodes.jsonl and scores.json.

`scores.json` is the published format, a list with one run `{task, method, seed, xs, ys}` where
xs are environment frames (agent steps x action repeat, as the official loggers count) and ys
training episode returns; `eval_scores.json` the same for evaluation episodes (xs: the frame
count when the evaluation ran). Both are rewritten atomically from episodes.jsonl.
"""
import collections
import json
import os
import pathlib
import sys
import time

import numpy as np


def _write_atomic(path, text):
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(text)
  os.replace(tmp, path)


def _fmt_time(seconds):
  seconds = int(max(0, seconds))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class Logger:

  def __init__(self, logdir, task, method, seed, repeat, total_steps, tensorboard=True,
               stream=sys.stdout):
    self.logdir = pathlib.Path(logdir)
    self.task, self.method, self.seed, self.repeat = task, method, seed, repeat
    self.total_steps = total_steps
    self.stream = stream
    self.metrics = collections.defaultdict(list)
    self.writer = None
    if tensorboard:
      import tensorflow as tf
      self.writer = tf.summary.create_file_writer(str(self.logdir / 'tensorboard'))
    self.start = time.time()
    self.start_step = None
    self.last_return = None
    self.last_write = -1  # step of the last metrics row; no row is written twice for a step
    self.episodes = self._read_episodes()

  # --- episodes ----------------------------------------------------------------------------------
  def _read_episodes(self):
    path = self.logdir / 'episodes.jsonl'
    if not path.exists():
      return []
    rows = []
    for line in path.read_text().splitlines():
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        break  # a torn last line from a crash; everything before it is kept
    return rows

  def truncate(self, step):
    """Forgets rows after agent step `step` (those of a run resumed from an older checkpoint)."""
    self.episodes = [r for r in self.episodes if r['step'] <= step]
    _write_atomic(self.logdir / 'episodes.jsonl',
                  ''.join(json.dumps(r) + '\n' for r in self.episodes))
    path = self.logdir / 'metrics.jsonl'
    if path.exists():
      rows = []
      for line in path.read_text().splitlines():
        try:
          row = json.loads(line)
        except json.JSONDecodeError:
          break
        if row['step'] <= step:
          rows.append(line + '\n')
          self.last_write = max(self.last_write, row['step'])
      _write_atomic(path, ''.join(rows))
    self._write_scores()

  def episode(self, step, score, length, mode='train'):
    row = {'step': int(step), 'frames': int(step * self.repeat), 'score': float(score),
           'length': int(length), 'mode': mode, 'time': round(time.time(), 3)}
    self.episodes.append(row)
    with open(self.logdir / 'episodes.jsonl', 'a') as f:
      f.write(json.dumps(row) + '\n')
    if mode == 'train':
      self.last_return = score
    self._write_scores()
    self.scalars(step, {f'{mode}_episode/score': score, f'{mode}_episode/length': length})

  def _write_scores(self):
    for mode, name in (('train', 'scores.json'), ('eval', 'eval_scores.json')):
      rows = [r for r in self.episodes if r['mode'] == mode]
      if mode == 'eval' and not rows:
        continue
      run = {'task': self.task, 'method': self.method, 'seed': self.seed,
             'xs': [r['frames'] for r in rows], 'ys': [r['score'] for r in rows]}
      _write_atomic(self.logdir / name, json.dumps([run]))

  # --- metrics -----------------------------------------------------------------------------------
  def add(self, metrics):
    for key, value in metrics.items():
      self.metrics[key].append(float(value))

  def write(self, step, extra=None):
    """Writes the means of the metrics added since the last write."""
    row = {k: float(np.nanmean(v)) for k, v in self.metrics.items()}
    row.update(extra or {})
    self.metrics.clear()
    if not row or step <= self.last_write:
      return
    self.last_write = int(step)
    with open(self.logdir / 'metrics.jsonl', 'a') as f:
      f.write(json.dumps({'step': int(step), 'frames': int(step * self.repeat), **row}) + '\n')
    self.scalars(step, row)

  def scalars(self, step, values):
    if self.writer is None:
      return
    import tensorflow as tf
    with self.writer.as_default(step=int(step * self.repeat)):
      for key, value in values.items():
        tf.summary.scalar(key, value)
    self.writer.flush()

  # --- progress ----------------------------------------------------------------------------------
  def progress(self, step, updates, phase='train'):
    now = time.time()
    if self.start_step is None:
      self.start_step, self.start_updates, self.start = step, updates, now
    elapsed = now - self.start
    ret = '-' if self.last_return is None else f'{self.last_return:.1f}'
    if step > self.start_step and elapsed > 0:
      rate = (step - self.start_step) / elapsed
      urate = (updates - self.start_updates) / elapsed
      speed = (f'{rate * self.repeat:.1f} fps {urate:.2f} updates/s | '
               f'ETA {_fmt_time((self.total_steps - step) / rate)}')
    else:
      speed = 'fps - updates/s - | ETA -'
    line = (f'[{phase}] step {step:,}/{self.total_steps:,} ({100 * step / self.total_steps:.1f}%) '
            f'frames {step * self.repeat:,} | {speed} | return {ret}')
    print(line, file=self.stream, flush=True)
