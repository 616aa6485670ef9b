"""Everything a run needs to resume, in one tf.train.Checkpoint per save.

Holds the agent (models, optimiser moments and steps, slow critic, return normaliser, the
agent's RNG), counters (agent steps, updates, train-ratio position, evaluation position) and
the replay and driver state (replay size and sampler RNG; the env, observation and policy state
mid-episode) as a JSON string, so the model and the replay always match.
tf.train.CheckpointManager writes the data files (through a temporary directory) before it
rewrites the index atomically and keeps the last N; restore falls back to an older checkpoint
if the newest cannot be read (corrupt, truncated or from another model), leaving its files.

Test hooks (fault injection, tests/test_faults.py): `DREAMER_TF_FAULT=<point>[:<n>]` makes the
process SIGKILL itself the n-th time (default 1st) it reaches <point>:
  ckpt_write    checkpoint data files written, index not yet updated (checkpoint.py)
  replay_flush  replay chunk written to its temporary file, not yet renamed (replay.py)
Unset, a hook costs one dictionary lookup per checkpoint or chunk.
"""
import json
import os
import signal

import tensorflow as tf

_FAULT = os.environ.get('DREAMER_TF_FAULT', '')
_FAULT_HITS = {}


def fault_point(name):
  """SIGKILLs this process at the n-th arrival at `name` when DREAMER_TF_FAULT asks for it."""
  if not _FAULT:
    return
  point, _, n = _FAULT.partition(':')
  if point != name:
    return
  _FAULT_HITS[name] = _FAULT_HITS.get(name, 0) + 1
  if _FAULT_HITS[name] == int(n or 1):
    os.kill(os.getpid(), signal.SIGKILL)


class CheckpointError(RuntimeError):
  pass


class Checkpointer:

  COUNTERS = ('step', 'updates')

  def __init__(self, directory, agent, keep=3):
    self.counters = {k: tf.Variable(0, dtype=tf.int64, name=k) for k in self.COUNTERS}
    self.extra = tf.Variable('{}', dtype=tf.string, name='extra')
    self.ckpt = tf.train.Checkpoint(agent=agent, extra=self.extra, **self.counters)
    self.manager = tf.train.CheckpointManager(self.ckpt, str(directory), max_to_keep=keep)
    self.options = tf.train.CheckpointOptions(
        experimental_write_callbacks=[lambda: fault_point('ckpt_write')])

  @property
  def latest(self):
    return self.manager.latest_checkpoint

  def save(self, step, updates, extra):
    """Writes a checkpoint; on an I/O error (disk full) raises CheckpointError, index untouched."""
    self.counters['step'].assign(step)
    self.counters['updates'].assign(updates)
    self.extra.assign(json.dumps(extra))
    try:
      return self.manager.save(checkpoint_number=step, options=self.options)
    except (OSError, tf.errors.OpError) as e:
      raise CheckpointError(
          f'Could not write the checkpoint at step {step:,} in {self.manager.directory} '
          f'({type(e).__name__}: {str(e).splitlines()[0]}). The previous checkpoint '
          f'{self.latest} is intact.') from e

  def restore(self, log=print):
    """Restores the newest readable checkpoint; returns (step, updates, extra) or None."""
    paths = list(reversed(self.manager.checkpoints))
    for i, path in enumerate(paths):
      try:
        self.ckpt.restore(path).assert_existing_objects_matched()
        extra = json.loads(self.extra.numpy().decode())
      except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as e:
        log(f'Checkpoint {path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0]}); '
            + ('trying the previous one.' if i + 1 < len(paths) else 'no older checkpoint.'))
        continue
      if i:
        log(f'Resumed from the older checkpoint {path}; the newer files were kept untouched.')
      return int(self.counters['step'].numpy()), int(self.counters['updates'].numpy()), extra
    if paths:
      raise CheckpointError(
          f'No checkpoint in {self.manager.directory} could be read ({len(paths)} tried; files '
          'kept). Move them away to start afresh, or use another --logdir.')
    return None
