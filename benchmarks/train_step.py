"""Train-step benchmark: seconds per update, compile time, start -> first update, peak RSS and
parameter counts, for any preset, on Pong-shaped data (64x64x3 uint8 images, 6 actions).

    python benchmarks/train_step.py --size xs                  # batch 16 x 64, float32
    python benchmarks/train_step.py --size size1m --flops --peak   # + achieved GFLOP/s vs peak
    python benchmarks/train_step.py --size s --compile xla --updates 10
    python benchmarks/train_step.py --agent dreamerv3_2024 --size size1m --precision float32

--flops counts the matmul/conv work of one update (benchmarks/flops.py) and reports the
achieved GFLOP/s at the median time; --peak measures the CPU's matmul peaks to compare against
(benchmarks/flops.py matmul_peaks).
"""
import argparse
import json
import os
import pathlib
import resource
import sys
import time

START = time.time()
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # benchmarks/flops.py

import dreamer_tf  # noqa: E402,F401  (before TensorFlow: the runtime defaults it sets)
from dreamer_tf import quiet  # noqa: E402

quiet.quiet_tensorflow(verbose=False)  # TensorFlow's start-up lines, as the entry points
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dreamer_tf import agent as agent_lib  # noqa: E402
from dreamer_tf import config as config_lib  # noqa: E402

import flops as flops_lib  # noqa: E402  (benchmarks/flops.py)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--agent', default='dreamerv3', choices=['dreamerv3', 'dreamerv3_2024'],
                      help='dreamerv3_2024: the rewrite (presets dreamerv3_2024, '
                      'dreamerv3_2024_atari100k, dreamerv3_2024_<size>)')
  parser.add_argument('--size', default='xs', help='dreamerv3: size1m, xs, s, m, l, xl; '
                      'dreamerv3_2024: size1m, size12m, ..., size400m')
  parser.add_argument('--preset', action='append', default=[])
  parser.add_argument('--updates', type=int, default=10, help='timed updates after the first')
  parser.add_argument('--json', default=None, help='also write the figures to this file')
  parser.add_argument('--phases', action='store_true',
                      help='also time the world-model and behaviour updates separately')
  parser.add_argument('--flops', action='store_true', help='count FLOPs of one update')
  parser.add_argument('--peak', action='store_true',
                      help='measure the matmul peaks (float32, bfloat16)')
  args, overrides = parser.parse_known_args()
  if args.agent == 'dreamerv3':
    presets = ['dreamerv3', 'atari100k', args.size, *args.preset]
  else:
    presets = ['dreamerv3_2024', 'dreamerv3_2024_atari100k', f'dreamerv3_2024_{args.size}',
               *args.preset]
    if args.phases:
      parser.error('--phases times the separate world-model and behaviour updates; '
                   'dreamerv3_2024 makes one (update_order one_loss).')
  try:
    config = config_lib.load(presets, overrides)
  except config_lib.ConfigError as e:
    parser.error(str(e))
  space = {'image': ((64, 64, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
           'is_last': ((), bool), 'is_terminal': ((), bool)}
  imported_s = time.time() - START
  agent = agent_lib.Agent(space, {'shape': (6,), 'discrete': True}, config)
  agent_s = time.time() - START
  B, T = config.batch_size, config.batch_length + config.replay_context
  rng = np.random.default_rng(0)
  batch = {'image': rng.integers(0, 256, (B, T, 64, 64, 3), dtype=np.uint8),
           'reward': rng.normal(size=(B, T)).astype(np.float32),
           'is_first': np.zeros((B, T), bool), 'is_terminal': np.zeros((B, T), bool),
           'action': np.eye(6, dtype=np.float32)[rng.integers(0, 6, (B, T))]}
  for key, (shape, dtype) in agent.data_space.items():  # is_last, replay_context latents
    batch.setdefault(key, np.zeros((B, T, *shape), dtype))
  batch['is_first'][:, 0] = True
  t = time.time()
  if config.compile != 'eager':
    agent._train.get_concrete_function()  # Python tracing alone (the signature is fixed)
  trace_s = time.time() - t
  agent.train(batch)
  compile_s = time.time() - t
  first_update_s = time.time() - START
  print(f'first update done: {compile_s:.1f} s (tracing, graph optimisation, the update), '
        f'{first_update_s:.1f} s after the start', flush=True)
  times = []
  for i in range(args.updates):
    t = time.time()
    agent.train(batch)
    times.append(time.time() - t)
    print(f'update {i + 1}/{args.updates}: {times[-1]:.3f} s', flush=True)
  phases = {}
  if args.phases:  # the two halves compiled alone, to see where the time goes
    def train_world_model(data, seed):
      start, metrics, grads = agent._world_model_grads(data, seed)
      metrics.update(agent.model_opt.apply(grads))
      return start, metrics
    wm = tf.function(train_world_model)
    behavior = tf.function(agent._train_behavior)
    tensors = {k: tf.constant(v) for k, v in batch.items()}
    seed = tf.constant([1, 2])
    start, _ = wm(tensors, seed)
    behavior(start, seed)
    for name, fn in (('world_model', lambda: wm(tensors, seed)),
                     ('behavior', lambda: behavior(start, seed))):
      ts = []
      for _ in range(max(3, args.updates // 2)):
        t = time.time()
        out = fn()
        tf.nest.map_structure(lambda x: x.numpy(), out)
        ts.append(time.time() - t)
      phases[name] = float(np.median(ts))
  work = {}
  if args.flops:  # a throwaway eager agent with the same weights' shapes
    eager = agent_lib.Agent(space, {'shape': (6,), 'discrete': True},
                            config.update({'compile': 'eager'}))
    work = flops_lib.count_update_flops(eager, batch)
    work['achieved_gflops'] = work['with_backward'] / np.median(times) / 1e9
  if args.peak:
    work['matmul_peaks_gflops'] = peaks = flops_lib.matmul_peaks()
    if 'achieved_gflops' in work:  # against this precision's matmul, and against the best one
      own = peaks['tf_bfloat16' if config.precision == 'bfloat16' else 'tf_float32']
      work['fraction_of_own_precision_peak'] = work['achieved_gflops'] / own
      work['fraction_of_peak'] = work['achieved_gflops'] / peaks['peak']
  counts = agent.param_counts()
  result = {
      'size': args.size, 'presets': presets,
      'batch': [B, T], 'precision': config.precision, 'compile': config.compile,
      'threads': [tf.config.threading.get_intra_op_parallelism_threads(),
                  tf.config.threading.get_inter_op_parallelism_threads()],
      'cpus': os.cpu_count(),
      'sec_per_update_median': float(np.median(times)),
      'sec_per_update_p10': float(np.percentile(times, 10)),
      'sec_per_update_p90': float(np.percentile(times, 90)),
      'imported_s': imported_s, 'agent_built_s': agent_s, 'trace_s': trace_s,
      'compile_and_first_update_s': compile_s,
      'start_to_first_update_s': first_update_s,
      'phase_sec_median': phases, 'flops': work,
      'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
      'peak_gpu_gb': (tf.config.experimental.get_memory_info('GPU:0')['peak'] / 1e9
                      if tf.config.list_physical_devices('GPU') else None),
      'params': counts}
  print(json.dumps(result, indent=1))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
  main()
