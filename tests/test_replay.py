import errno
import os

import numpy as np
import pytest

from dreamer_tf import replay as replay_lib


def fill(replay, n, start=0):
  for i in range(start, start + n):
    replay.add({'x': np.int64(i), 'image': np.full((2, 2, 1), i % 256, np.uint8),
                'is_first': i % 10 == 0})


def test_windows_are_contiguous_and_marked_first():
  replay = replay_lib.Replay(length=5, capacity=1000, chunk=4, seed=1)
  fill(replay, 23)
  assert len(replay) == 23 and replay.num_items == 19
  batch = replay.sample(64)
  assert batch['x'].shape == (64, 5) and batch['image'].dtype == np.uint8
  np.testing.assert_array_equal(np.diff(batch['x'], axis=1), 1)  # across chunk borders too
  assert batch['is_first'][:, 0].all()
  assert batch['x'].min() >= 0 and batch['x'].max() <= 22
  assert set(batch['x'][:, 0]) == set(range(19)) or len(set(batch['x'][:, 0])) > 10


def test_capacity_drops_oldest_chunks():
  replay = replay_lib.Replay(length=3, capacity=10, chunk=4)
  fill(replay, 30)
  assert 10 <= len(replay) < 14 and replay.first % 4 == 0
  assert replay.sample(200)['x'].min() >= replay.first


def test_too_small_replay_and_capacity_errors():
  with pytest.raises(ValueError, match='smaller than batch_length'):
    replay_lib.Replay(length=64, capacity=10)
  replay = replay_lib.Replay(length=5, capacity=100)
  fill(replay, 4)
  with pytest.raises(RuntimeError, match='fewer than one sequence'):
    replay.sample(1)


def test_save_load_round_trip_including_sampler_state(tmp_path):
  replay = replay_lib.Replay(length=5, capacity=1000, chunk=8, directory=tmp_path, seed=3)
  fill(replay, 21)
  state = replay.save()
  expected = replay.sample(7)
  again = replay_lib.Replay(length=5, capacity=1000, chunk=8, directory=tmp_path, seed=99)
  assert again.load(state) == 0
  assert len(again) == 21 and again.total == 21
  got = again.sample(7)
  for key in expected:
    np.testing.assert_array_equal(got[key], expected[key])


def test_load_recovers_flushed_chunks_and_counts_lost_steps(tmp_path):
  replay = replay_lib.Replay(length=5, capacity=1000, chunk=8, directory=tmp_path, seed=3)
  fill(replay, 21)
  state = replay.save()
  fill(replay, 22, start=21)   # a run that then died: chunks up to step 40 flushed, 3 not
  (tmp_path / 'chunk_00000005.npz.tmp').write_bytes(b'torn')
  again = replay_lib.Replay(length=5, capacity=1000, chunk=8, directory=tmp_path, seed=99)
  assert again.load(state) == 3
  assert again.total == 40 and not list(tmp_path.glob('*.tmp'))
  np.testing.assert_array_equal(again.sample(50)['x'].max() <= 39, True)
  fill(again, 8, start=40)     # continues; the counter now follows the resumed run
  assert replay_lib.Replay(5, 1000, 8, tmp_path).load(state) == 0


def test_disk_full_names_the_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
  def full(f, **arrays):
    f.write(b'partial')
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  monkeypatch.setattr(replay_lib.np, 'savez_compressed', full)
  replay = replay_lib.Replay(length=5, capacity=1000, chunk=8, directory=tmp_path)
  with pytest.raises(OSError, match='Could not write replay file .*chunk_00000000.npz: No space'):
    fill(replay, 8)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['total']


def test_online_queue_trains_on_every_non_overlapping_window_first(tmp_path):
  """replay.online of the 2024 rewrite: the window ending at step n is queued when n is a
  positive multiple of the length (starts 1, 5, 9 for length 4), and training rows take the
  queue first, oldest first; the rest are uniform. The queue survives a checkpoint."""
  replay = replay_lib.Replay(length=4, capacity=1000, chunk=8, directory=tmp_path, seed=0,
                             online=True)
  fill(replay, 13)
  assert list(replay.queue) == [1, 5, 9]
  assert list(replay.sample(2)['x'][:, 0]) == [1, 5]
  state = replay.save()
  again = replay_lib.Replay(length=4, capacity=1000, chunk=8, directory=tmp_path, seed=0,
                            online=True)
  again.load(state)
  assert list(again.queue) == [9]
  assert list(again.sample(3, train=False)['x'][:, 0]) != [9] * 3 and list(again.queue) == [9]
  batch = again.sample(3)
  assert batch['x'][0, 0] == 9 and not again.queue
  np.testing.assert_array_equal(np.diff(batch['x'], axis=1), 1)
  plain = replay_lib.Replay(length=4, capacity=1000, chunk=8)
  fill(plain, 13)
  assert not plain.queue


def test_online_queue_is_one_fifo_over_env_streams():
  streams = replay_lib.Streams(2, length=2, capacity=1000, chunk=4, seed=0, online=True)
  for i in range(6):  # env 1 completes its windows one step ahead of env 0
    streams.add({'x': np.int64(100 + i), 'is_first': False}, 1)
    streams.add({'x': np.int64(i), 'is_first': False}, 0)
  assert list(streams.queue) == [(1, 1), (0, 1), (1, 3), (0, 3)]
  batch = streams.sample(5)
  assert list(batch['x'][:4, 0]) == [101, 1, 103, 3] and not streams.queue


def test_update_writes_values_back_into_the_sampled_windows():
  """replay.update (the rewrite's, for replay_context): values of the steps after the first
  `offset` of each sampled window go back to those steps, in whichever env stream."""
  replay = replay_lib.Replay(length=4, capacity=1000, chunk=8, seed=0)
  fill(replay, 20)
  assert replay.sample(3)['stepid'].shape == (3, 2)
  batch = replay.windows([0, 8, 14])   # windows that do not overlap
  np.testing.assert_array_equal(batch['stepid'], [[0, 0], [0, 8], [0, 14]])
  new = {'x': batch['x'][:, 1:] + 1000}
  replay.update(batch['stepid'], new, offset=1)
  again = replay.windows(batch['stepid'][:, 1])
  np.testing.assert_array_equal(again['x'][:, 1:], new['x'])
  np.testing.assert_array_equal(again['x'][:, 0], batch['x'][:, 0])
  streams = replay_lib.Streams(2, length=2, capacity=100, chunk=4, seed=0)
  for i in range(6):
    streams.add({'x': np.int64(i), 'is_first': False}, 0)
    streams.add({'x': np.int64(100 + i), 'is_first': False}, 1)
  batch = streams.sample(6)
  assert set(batch['stepid'][:, 0]) == {0, 1}
  streams.update(batch['stepid'], {'x': -np.abs(batch['x'])})
  for (stream, start), xs in zip(batch['stepid'], batch['x']):
    np.testing.assert_array_equal(
        streams.streams[stream].windows([start])['x'][0], -np.abs(xs))
