"""Where the train step's time and memory go: runs a few updates under the TensorFlow profiler and
prints the op time summed by op type, by outer name scope and by op, or (--memory) the tensors
alive at the step's peak of allocated memory, by the op that made them.

    python benchmarks/profile_step.py --size xs                    # float32, graph mode
    python benchmarks/profile_step.py --size xs --precision bfloat16 --top 30
    python benchmarks/profile_step.py --size xs --memory           # the peak, tensor by tensor

Times are the profiler's per-op wall times on the executor threads, summed over --updates
updates and divided by their count: ops running in parallel on the 2 intra-op threads both
count, so the total can exceed the step's wall time. The step's own wall time is printed beside.

--memory replays the allocator's events of one update (TensorFlow's BFC allocators record each
allocation with its op, shape and requested bytes; on the CPU the oneDNN build's `mklcpu`
allocator does, or any with TF_CPU_ALLOCATOR_USE_BFC=true) and lists what is alive at the peak of
the bytes requested by the update's own tensors (the weights and optimizer state allocated
before it are printed as one line).
"""
import argparse
import collections
import glob
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import dreamer_tf  # noqa: E402,F401  (before TensorFlow: the runtime defaults it sets)
from dreamer_tf import quiet  # noqa: E402

quiet.quiet_tensorflow(verbose=False)  # TensorFlow's start-up lines, as the entry points
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from dreamer_tf import agent as agent_lib  # noqa: E402
from dreamer_tf import config as config_lib  # noqa: E402


def pong_batch(config, seed=0):
  B, T = config.batch_size, config.batch_length
  rng = np.random.default_rng(seed)
  batch = {'image': rng.integers(0, 256, (B, T, 64, 64, 3), dtype=np.uint8),
           'reward': rng.normal(size=(B, T)).astype(np.float32),
           'is_first': np.zeros((B, T), bool), 'is_terminal': np.zeros((B, T), bool),
           'action': np.eye(6, dtype=np.float32)[rng.integers(0, 6, (B, T))]}
  batch['is_first'][:, 0] = True
  return batch


def summarise(logdir, updates, type_filter=None):
  """{op type | outer name scope | op: seconds} per update, from the newest xplane.pb."""
  path = sorted(glob.glob(f'{logdir}/**/*.xplane.pb', recursive=True))[-1]
  space = xplane_pb2.XSpace()
  space.ParseFromString(pathlib.Path(path).read_bytes())
  by_type, by_part, by_name = (collections.Counter() for _ in range(3))
  for plane in space.planes:
    if plane.name != '/host:CPU':
      continue
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      if not line.name.startswith('tf_'):  # executor / oneDNN worker threads
        continue
      for event in line.events:
        name = names.get(event.metadata_id, '')
        if ':' not in name or '::' in name:  # graph ops are 'scope/name:Type'
          continue
        op_name, op_type = name.rsplit(':', 1)
        seconds = event.duration_ps * 1e-12 / updates
        if type_filter and op_type != type_filter:
          continue
        by_type[op_type] += seconds
        by_part[op_name.split('/')[0]] += seconds
        by_name[op_name] += seconds
  return by_type, by_part, by_name


def memory_peak(logdir):
  """(bytes before the update, peak bytes of the update's tensors, [(bytes, op, shape)] alive at
  the peak), from the allocator events of the newest xplane.pb."""
  path = sorted(glob.glob(f'{logdir}/**/*.xplane.pb', recursive=True))[-1]
  space = xplane_pb2.XSpace()
  space.ParseFromString(pathlib.Path(path).read_bytes())
  events = []
  for plane in space.planes:
    if plane.name != '/host:CPU':
      continue
    names = {k: v.name for k, v in plane.event_metadata.items()}
    stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
    for line in plane.lines:
      for event in line.events:
        kind = names.get(event.metadata_id, '')
        if kind in ('MemoryAllocation', 'MemoryDeallocation'):
          stats = {stat_names.get(s.metadata_id): (s.str_value or s.int64_value or s.uint64_value
                                                   or stat_names.get(s.ref_value))
                   for s in event.stats}  # repeated strings (op names) come as references
          events.append((line.timestamp_ns * 1000 + event.offset_ps, kind, stats))
  if not events:
    sys.exit('No allocator events were recorded: this TensorFlow build has no BFC allocator on '
             'the CPU; run again with TF_CPU_ALLOCATOR_USE_BFC=true.')
  events.sort(key=lambda e: e[0])
  before = events[0][2]['bytes_allocated'] - (
      events[0][2]['requested_bytes'] if events[0][1] == 'MemoryAllocation' else 0)
  live, total, peak, at_peak = {}, 0, 0, []
  for _, kind, stats in events:
    if kind == 'MemoryAllocation':
      live[stats['addr']] = (stats['requested_bytes'], stats.get('tf_op', '?'),
                             stats.get('shape', '?'))
      total += stats['requested_bytes']
      if total > peak:
        peak, at_peak = total, list(live.values())
    elif stats['addr'] in live:  # tensors of the update (not those allocated before the trace)
      total -= live.pop(stats['addr'])[0]
  return before, peak, sorted(at_peak, key=lambda tensor: -tensor[0])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--size', default='xs', choices=['size1m', 'xs', 's', 'm', 'l', 'xl'])
  parser.add_argument('--preset', action='append', default=[])
  parser.add_argument('--updates', type=int, default=3)
  parser.add_argument('--top', type=int, default=20)
  parser.add_argument('--type', default=None, help='list only the ops of this type, e.g. Cast')
  parser.add_argument('--memory', action='store_true',
                      help='profile one update and list the tensors alive at its memory peak')
  args, overrides = parser.parse_known_args()
  config = config_lib.load(['dreamerv3', 'atari100k', args.size, *args.preset], overrides)
  space = {'image': ((64, 64, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
           'is_last': ((), bool), 'is_terminal': ((), bool)}
  agent = agent_lib.Agent(space, {'shape': (6,), 'discrete': True}, config)
  batch = pong_batch(config)
  for _ in range(2):  # compile, then one warm update outside the trace
    agent.train(batch)
  logdir = tempfile.mkdtemp(prefix='profile_step_')
  if args.memory:
    tf.profiler.experimental.start(logdir)
    agent.train(batch)
    tf.profiler.experimental.stop()
    before, peak, alive = memory_peak(logdir)
    print(f'{config.precision}, {config.compile}: peak {(before + peak) / 1e9:.3f} GB = '
          f'{before / 1e9:.3f} GB allocated before the update (weights, optimizer state) + '
          f'{peak / 1e9:.3f} GB of its own tensors, {len(alive)} alive at the peak:')
    for size, op, shape in alive[:args.top]:
      print(f'{size / 1e6:9.1f} MB  {shape:>20}  {op[-80:]}')
    rest = sum(size for size, *_ in alive[args.top:])
    print(f'{rest / 1e6:9.1f} MB  in the other {max(0, len(alive) - args.top)} tensors')
    return
  tf.profiler.experimental.start(logdir)
  t = time.time()
  for _ in range(args.updates):
    agent.train(batch)
  wall = (time.time() - t) / args.updates
  tf.profiler.experimental.stop()
  by_type, by_part, by_name = summarise(logdir, args.updates, args.type)
  total = sum(by_type.values())
  print(f'{config.precision}, {config.compile}: {wall:.3f} s per update (wall), '
        f'{total:.3f} s of op time per update')
  for title, counter in (('op type', by_type), ('outer scope', by_part), ('op', by_name)):
    print(f'\n{title:>40}  s/update  share')
    for key, seconds in counter.most_common(args.top):
      print(f'{key[-40:]:>40}  {seconds:8.3f}  {seconds / total:5.1%}')


if __name__ == '__main__':
  main()
