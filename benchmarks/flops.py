"""Floating-point work of one update and the CPU's measured matmul peak, for the "achieved
GFLOP/s" figure of the benchmarks.

`count_update_flops` runs one update eagerly (tf.scan then calls its step function per step) with
the Keras Dense, Conv2D, Conv2DTranspose and GRUCell calls instrumented: a call costs 2 x its
multiply-adds forward, and 3x that when a gradient tape records it (the backward pass is two
products of the same size), except the slow critic, which is never differentiated. Element-wise
ops, norms and the twohot/softmax heads' non-matmul work are not counted, and input gradients of
first layers are counted although not needed, so the figure is the matmul work to within a few
percent.
"""
import os
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorflow.python.eager import record


def _macs(layer, x, y):
  if isinstance(layer, keras.layers.Dense):
    return np.prod(x.shape[:-1]) * x.shape[-1] * layer.units
  k = int(np.prod(layer.kernel_size))
  if isinstance(layer, keras.layers.Conv2DTranspose):
    return np.prod(x.shape[:-1]) * k * x.shape[-1] * y.shape[-1]
  return np.prod(y.shape[:-1]) * k * x.shape[-1] * y.shape[-1]  # Conv2D


def count_update_flops(agent, batch):
  """FLOPs of `agent._train_step(batch)` run eagerly (weights change: use a throwaway agent)."""
  total = {'forward': 0.0, 'with_backward': 0.0}
  frozen = {id(layer) for layer in agent.ac.slow_critic.submodules}
  patched = []

  def add(layer, macs):
    flops = 2.0 * float(macs)
    total['forward'] += flops
    taped = record.could_possibly_record() and id(layer) not in frozen
    total['with_backward'] += flops * (3 if taped else 1)

  def wrap(cls, macs):
    original = cls.call

    def call(self, inputs, *args, **kwargs):
      out = original(self, inputs, *args, **kwargs)
      add(self, macs(self, inputs, out))
      return out
    cls.call = call
    patched.append((cls, original))

  for cls in (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose):
    wrap(cls, _macs)
  wrap(keras.layers.GRUCell,  # input and recurrent kernels, 3 gates each
       lambda layer, x, y: np.prod(x.shape[:-1]) * (x.shape[-1] + layer.units) * 3 * layer.units)
  try:
    seed = tf.constant([0, 1], tf.int32)
    agent._train_step({k: tf.constant(v) for k, v in batch.items()}, seed)
  finally:
    for cls, original in patched:
      cls.call = original
  return total


def matmul_peak(n=4096, repeats=10, dtype=tf.float32):
  """GFLOP/s of the fastest of `repeats` n x n matmuls in `dtype` (compiled, warm)."""
  a = tf.cast(tf.random.normal([n, n]), dtype)
  b = tf.cast(tf.random.normal([n, n]), dtype)
  fn = tf.function(lambda: tf.matmul(a, b))
  fn().numpy()
  best = np.inf
  for _ in range(repeats):
    t = time.time()
    fn().numpy()
    best = min(best, time.time() - t)
  return 2.0 * n ** 3 / best / 1e9


NUMPY_PEAK = """
import time
import numpy as np
a, b = (np.random.rand(4096, 4096).astype(np.float32) for _ in range(2))
a @ b
best = float('inf')
for _ in range(5):
  t = time.perf_counter()
  a @ b
  best = min(best, time.perf_counter() - t)
print(2 * 4096 ** 3 / best / 1e9)
"""


def matmul_peaks():
  """The CPU's matmul peaks (GFLOP/s): TensorFlow's float32 and bfloat16, and numpy's float32
  with OPENBLAS_CORETYPE unset (a machine setting of Haswell halves OpenBLAS's speed on AVX-512),
  for reference. `peak` is the best of TensorFlow's two, the ceiling for any fraction of peak."""
  env = {k: v for k, v in os.environ.items() if k != 'OPENBLAS_CORETYPE'}
  done = subprocess.run([sys.executable, '-c', NUMPY_PEAK], env=env, capture_output=True,
                        text=True)
  peaks = {'tf_float32': matmul_peak(dtype=tf.float32),
           'tf_bfloat16': matmul_peak(dtype=tf.bfloat16),
           'numpy_float32': float(done.stdout) if done.returncode == 0 else None}
  peaks['peak'] = max(peaks['tf_float32'], peaks['tf_bfloat16'])
  return peaks
