"""Data-parallel training on tf.distribute (`run.strategy`).

`default`: one device, no tf.distribute machinery (the update is exactly the single-device one).
`mirrored`: MirroredStrategy over the local GPUs (or the logical CPU devices when there is no
GPU). `multi_worker`: MultiWorkerMirroredStrategy across the hosts named in `TF_CONFIG`.

The global batch (`batch_size`) is split evenly over the replicas. Each replica computes its
losses on its slice; `mean` all-reduces the gradients (the mean of equal-sized slices' mean
losses is the global mean loss), so every replica applies the same update to its copy of every
variable, optimiser state and slow critic included. The return normaliser's percentiles are
taken over the global batch (`gather`), as one device would. Variables are created with
aggregation ONLY_FIRST_REPLICA, which lets replicas assign them (their values agree anyway).
"""
import contextlib
import functools

import numpy as np
import tensorflow as tf

STRATEGIES = ('default', 'mirrored', 'multi_worker')
DISTRIBUTED = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)


@functools.lru_cache(maxsize=None)
def make(name):
  """The strategy, one per process (multi_worker must be created before TensorFlow runs any
  op, so a process runs at most one multi-worker job)."""
  if name not in STRATEGIES:
    raise ValueError(f"Unknown run.strategy '{name}'. Valid: {', '.join(STRATEGIES)}.")
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    devices = tf.config.list_logical_devices('GPU') or tf.config.list_logical_devices('CPU')
    return tf.distribute.MirroredStrategy([d.name for d in devices])
  return tf.distribute.MultiWorkerMirroredStrategy()


def replicas(strategy):
  return strategy.num_replicas_in_sync


@contextlib.contextmanager
def scope(strategy):
  """Creates variables mirrored over the strategy's replicas (a no-op for `default`)."""
  def creator(next_creator, **kwargs):
    kwargs['aggregation'] = tf.VariableAggregation.ONLY_FIRST_REPLICA
    return next_creator(**kwargs)
  if not isinstance(strategy, DISTRIBUTED):
    yield
    return
  with strategy.scope(), tf.variable_creator_scope(creator):
    yield


def _context():
  """The replica context of a multi-replica step, else None."""
  context = tf.distribute.get_replica_context()
  return context if context is not None and context.num_replicas_in_sync > 1 else None


def mean(values):
  """All-reduced mean of a list of tensors over the replicas (identity on one replica)."""
  context = _context()
  return values if context is None else context.all_reduce(tf.distribute.ReduceOp.MEAN, values)


def gather(x):
  """x of every replica concatenated along axis 0 (x itself on one replica)."""
  context = _context()
  return x if context is None else context.all_gather(x, axis=0)


def replica_id():
  context = tf.distribute.get_replica_context()
  return 0 if context is None else context.replica_id_in_sync_group


def split(strategy, batch):
  """Numpy batch of the global size (B, ...) -> per-replica slices of B / replicas rows."""
  count = replicas(strategy)
  size = len(next(iter(batch.values())))
  if size % count:
    raise ValueError(f'batch_size {size} does not split evenly over the {count} replicas of '
                     'run.strategy; use a multiple of the replica count.')
  rows = size // count

  def part(context):
    start = context.replica_id_in_sync_group * rows
    return {k: tf.constant(np.asarray(v)[start:start + rows]) for k, v in batch.items()}
  return strategy.experimental_distribute_values_from_function(part)


def worker_index(name):
  """This process's index among the workers of a multi_worker run (TF_CONFIG task index, the
  chief first), 0 otherwise. Worker 0 writes the run's logdir; worker i > 0 its own, below it."""
  if name != 'multi_worker':
    return 0
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  cluster = resolver.cluster_spec().as_dict()
  offset = len(cluster.get('chief', ())) if resolver.task_type == 'worker' else 0
  return offset + (resolver.task_id or 0)
