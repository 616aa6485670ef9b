"""Uniform replay of fixed-length sequences (dreamerv3@8fa35f8 embodied/replay Uniform + Generic).

Steps are appended in order (episodes back to back, as the official per-worker stream) into
chunks of `chunk` steps with images as uint8. Every window of `length` consecutive steps is one
item; sampling picks windows uniformly and sets `is_first` on the first step, as
`Generic._sample` does. The oldest chunk is dropped once more than `capacity` steps are held
(FIFO). Completed chunks are written to `directory` as they fill, the open one at `save`.

With N parallel envs each env's steps form their own stream (`Streams`: one Replay per env,
`directory/env_<i>`, capacity split evenly), so no window spans two envs, as the official replay
keeps one stream per worker; a batch picks each window uniformly over all streams' windows.

`online` (the 2024 rewrite's `replay.online`, embodied/core/replay.py): every `length`-th window
of a stream (those starting at 1, length + 1, 2 length + 1, ...: non-overlapping, each queued
when its last step arrives) also enters a FIFO queue, and a training batch takes its rows from
the queue first, so every step is trained on soon after it is collected; the remaining rows are
uniform. One queue over all streams, as the official one.

Every sampled batch carries `stepid` (B, 2): the env stream and the global index of each
window's first step, so that `update` can write values computed in training back into the steps
(replay_context: the latents the train step inferred, the rewrite's `replay.update`). Chunks
already on disk keep the values they were written with.

Crash safety: chunk files are written to a temporary name and renamed. `directory/total` is an
8-byte memory-mapped counter of steps ever added, updated every step for free and surviving a
`kill -9` (not a power loss); `load` restores the checkpointed state, appends the complete chunks
flushed after it, and returns how many steps the counter saw beyond that: the steps lost.
"""
import collections
import errno
import os
import pathlib

import numpy as np

from .checkpoint import fault_point


class Replay:

  def __init__(self, length, capacity, chunk=1024, directory=None, seed=0, online=False):
    if capacity < length:
      raise ValueError(f'replay_size {capacity} is smaller than batch_length {length}.')
    self.length, self.capacity, self.chunk = length, int(capacity), int(chunk)
    self.online = online
    self.queue = collections.deque()  # window starts (global step index), `online` only
    self.directory = directory and pathlib.Path(directory)
    self.chunks = []     # list of dicts of arrays (chunk, ...)
    self.first = 0       # global index of the first step held
    self.total = 0       # steps ever added
    self.saved = 0       # chunks written to disk (by global chunk id)
    self.rng = np.random.default_rng(seed)
    self._counter = None

  def __len__(self):
    """Steps held."""
    return self.total - self.first

  @property
  def num_items(self):
    return max(0, len(self) - self.length + 1)

  def add(self, step, worker=0):
    offset = self.total % self.chunk
    if offset == 0:
      self.chunks.append({k: np.zeros((self.chunk, *np.shape(v)), np.asarray(v).dtype)
                          for k, v in step.items()})
    for key, value in step.items():
      self.chunks[-1][key][offset] = value
    index = self.total
    self.total += 1
    if self.online and index >= self.length and index % self.length == 0:
      self.queue.append(index - self.length + 1)
    if self.directory:
      self._count()
    if self.total % self.chunk == 0:
      self._flush()
    self._evict()

  def _evict(self):
    while len(self) - self.chunk >= self.capacity:
      self.chunks.pop(0)
      self.first += self.chunk

  def sample(self, batch, train=True):
    """(batch, length, ...) arrays of windows, queued ones first (`online` and `train`), the rest
    chosen uniformly; is_first[:, 0] = True."""
    if self.num_items < 1:
      raise RuntimeError(f'Replay holds {len(self)} steps, fewer than one sequence of '
                         f'{self.length}.')
    queued = self.pop_queued(batch) if train else []
    return self.windows([*queued, *(self.first + self.rng.integers(
        0, self.num_items, batch - len(queued)))])

  def windows(self, starts, stream=0):
    """The windows at global step indices `starts`, stacked; is_first[:, 0] = True; `stepid`
    (B, 2) = (stream, start)."""
    seqs = [self._window(s) for s in starts]
    out = {k: np.stack([s[k] for s in seqs]) for k in seqs[0]}
    out['is_first'][:, 0] = True
    out['stepid'] = np.array([[stream, s] for s in starts], np.int64).reshape(-1, 2)
    return out

  def update(self, stepid, values, offset=0):
    """Writes values[k][i, j] (B, L, ...) into step start_i + offset + j of each window of a
    sampled batch (`stepid`), where that step is still held and in memory."""
    for row, (_, start) in enumerate(np.asarray(stepid)):
      self.update_window(int(start) + offset, {k: v[row] for k, v in values.items()})

  def update_window(self, start, values):
    """values[k][j] into step start + j, a slice per chunk, for the steps still held."""
    index = max(start, self.first)
    end = min(start + len(next(iter(values.values()))), self.total)
    while index < end:
      c, o = divmod(index - self.first, self.chunk)
      take = min(end - index, self.chunk - o)
      for key, value in values.items():
        self.chunks[c][key][o:o + take] = value[index - start:index - start + take]
      index += take

  def pop_queued(self, count):
    """Up to `count` queued window starts, oldest first."""
    return pop_held(self.queue, count, lambda start: start >= self.first)

  def _window(self, start):
    c, o = divmod(start - self.first, self.chunk)  # `first` is a multiple of `chunk`
    parts, need = [], self.length
    while need:
      take = min(need, self.chunk - o)
      parts.append({k: v[o:o + take] for k, v in self.chunks[c].items()})
      need -= take
      c, o = c + 1, 0
    return parts[0] if len(parts) == 1 else {
        k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  # --- persistence -------------------------------------------------------------------------------
  def _chunk_path(self, cid):
    return self.directory / f'chunk_{cid:08d}.npz'

  def _count(self):
    """Stores `total` in the memory-mapped counter file."""
    if self._counter is None:
      self._counter = self._open_counter()
    self._counter[0] = self.total

  def _open_counter(self):
    self.directory.mkdir(parents=True, exist_ok=True)
    path = self.directory / 'total'
    return np.memmap(path, np.int64, 'r+' if path.exists() else 'w+', shape=(1,))

  def _write(self, path, arrays):
    tmp = path.with_name(path.name + '.tmp')
    try:
      with open(tmp, 'wb') as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
      fault_point('replay_flush')
      os.replace(tmp, path)
    except OSError as e:
      tmp.unlink(missing_ok=True)
      raise OSError(e.errno, f'Could not write replay file {path}: '
                    f'{e.strerror or os.strerror(e.errno or errno.EIO)}') from e

  def _flush(self):
    """Writes every completed chunk not yet on disk."""
    if not self.directory:
      return
    self.directory.mkdir(parents=True, exist_ok=True)
    done = self.total // self.chunk
    first_cid = self.first // self.chunk
    for cid in range(max(self.saved, first_cid), done):
      self._write(self._chunk_path(cid), self.chunks[cid - first_cid])
    self.saved = done

  def state(self):
    """Small JSON-able state for the checkpoint; `save` must have run first."""
    return {'total': self.total, 'first': self.first,
            'rng': self.rng.bit_generator.state, 'queue': list(self.queue)}

  def save(self):
    """Flushes full chunks and the open one; returns the state to store in the checkpoint."""
    self._flush()
    if self.directory and self.total % self.chunk:
      n, cid = self.total % self.chunk, self.total // self.chunk
      self._write(self._open_path(cid), {k: v[:n] for k, v in self.chunks[-1].items()})
      for old in self.directory.glob('open_*.npz'):
        if old != self._open_path(cid) and old.exists():
          old.unlink()
    return self.state()

  def _open_path(self, cid):
    return self.directory / f'open_{cid:08d}.npz'

  def load(self, state):
    """Restores the checkpointed `state`, then appends complete chunks written after it.

    Returns the steps lost: those the counter file saw added beyond what could be loaded.
    """
    if 'streams' in state:
      raise ValueError(f"The checkpoint's replay has {len(state['streams'])} env streams, this "
                       'run 1 (envs.amount).')
    total, first = int(state['total']), int(state['first'])
    seen = int(self._open_counter()[0]) if (self.directory / 'total').exists() else total
    for tmp in self.directory.glob('*.tmp'):  # torn writes of a killed run
      tmp.unlink()
    self.chunks, self.total, self.first = [], first, first
    first_cid, done = first // self.chunk, total // self.chunk
    for cid in range(first_cid, done):
      path = self._chunk_path(cid)
      if not path.exists():
        raise FileNotFoundError(f'Replay chunk {path} is missing; cannot resume the replay.')
      self._append(self._read(path))
    rest = total - self.total
    if rest:  # the open chunk; a later run may have completed it since
      path = self._chunk_path(done)
      path = path if path.exists() else self._open_path(done)
      arrays = self._read(path)
      if len(next(iter(arrays.values()))) < rest:
        raise ValueError('Replay open chunk is shorter than the checkpoint says.')
      if len(next(iter(arrays.values()))) == self.chunk:
        self._append(arrays)
      else:
        for i in range(rest):
          self.add({k: v[i] for k, v in arrays.items()})
    while self.total % self.chunk == 0 and self._chunk_path(self.total // self.chunk).exists():
      self._append(self._read(self._chunk_path(self.total // self.chunk)))
    self.saved = self.total // self.chunk
    self.rng.bit_generator.state = state['rng']
    self.queue = collections.deque(state.get('queue', ()))  # not the re-added open chunk's
    self._count()
    return max(0, seen - self.total)

  def _read(self, path):
    with np.load(path) as data:
      return {k: data[k] for k in data.files}

  def _append(self, arrays):
    """Appends one complete chunk read from disk."""
    self.chunks.append(arrays)
    self.total += self.chunk
    self._evict()

  def stats(self):
    return {'replay_steps': len(self), 'replay_items': self.num_items}



class Streams:
  """One Replay per env (the official per-worker streams) behind Replay's interface."""

  def __init__(self, amount, length, capacity, chunk=1024, directory=None, seed=0,
               online=False):
    directory = directory and pathlib.Path(directory)
    self.streams = [Replay(length, -(-int(capacity) // amount), chunk,
                           directory and directory / f'env_{i}', seed=seed + i, online=online)
                    for i in range(amount)]
    self.length = length
    self.rng = np.random.default_rng(seed + amount)
    self.queue = collections.deque()  # (stream, window start) over all streams, `online`

  def __len__(self):
    return sum(len(s) for s in self.streams)

  @property
  def total(self):
    return sum(s.total for s in self.streams)

  @property
  def num_items(self):
    return sum(s.num_items for s in self.streams)

  def add(self, step, worker):
    stream = self.streams[worker]
    stream.add(step)
    while stream.queue:  # into the one queue, in the order the windows completed
      self.queue.append((worker, stream.queue.popleft()))

  def sample(self, batch, train=True):
    """Queued windows first (`online` and `train`), then windows chosen uniformly over every
    stream's windows (grouped by stream in the batch)."""
    items = np.array([s.num_items for s in self.streams], np.float64)
    if not items.sum():
      raise RuntimeError(f'Replay holds no sequence of {self.length} steps in any env stream.')
    held = lambda entry: entry[1] >= self.streams[entry[0]].first
    queued = pop_held(self.queue, batch, held) if train else []
    parts = [self.streams[w].windows([s], w) for w, s in queued]
    rest = batch - len(queued)
    counts = self.rng.multinomial(rest, items / items.sum())
    parts += [self._stream_sample(i, int(n)) for i, n in enumerate(counts) if n]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def _stream_sample(self, i, count):
    out = self.streams[i].sample(count, train=False)
    out['stepid'][:, 0] = i
    return out

  def update(self, stepid, values, offset=0):
    """Replay.update on the windows' own streams."""
    for row, (stream, start) in enumerate(np.asarray(stepid)):
      self.streams[int(stream)].update_window(int(start) + offset,
                                             {k: v[row] for k, v in values.items()})

  def state(self):
    return {'streams': [s.state() for s in self.streams], 'rng': self.rng.bit_generator.state,
            'queue': [list(x) for x in self.queue]}

  def save(self):
    for s in self.streams:
      s.save()
    return self.state()

  def load(self, state):
    """As Replay.load, per stream; returns the steps lost over all streams."""
    if len(state.get('streams', ())) != len(self.streams):
      raise ValueError(f"The checkpoint's replay has {len(state.get('streams', [state]))} env "
                       f'streams, this run {len(self.streams)} (envs.amount).')
    lost = sum(s.load(x) for s, x in zip(self.streams, state['streams']))
    self.rng.bit_generator.state = state['rng']
    self.queue = collections.deque(tuple(x) for x in state.get('queue', ()))
    return lost

  def stats(self):
    return {'replay_steps': len(self), 'replay_items': self.num_items}


def pop_held(queue, count, held):
  """Up to `count` entries popped from the front of `queue` for which `held(entry)` (the window
  is still in the replay); entries evicted meanwhile are dropped."""
  out = []
  while queue and len(out) < count:
    entry = queue.popleft()
    if held(entry):
      out.append(entry)
  return out


def make(amount, length, capacity, chunk=1024, directory=None, seed=0, online=False):
  """A Replay for one env (its chunks directly in `directory`), Streams for several."""
  if amount == 1:
    return Replay(length, capacity, chunk, directory, seed, online)
  return Streams(amount, length, capacity, chunk, directory, seed, online)
