"""Everything a run needs to resume, in one tf.train.Checkpoint per save.

Holds the agent (models, optimiser moments and steps, slow critic, return normaliser, the
agent's RNG), counters (agent steps, updates, train-ratio position, evaluation position) and
the replay state (size and sampler RNG) as a JSON string, so the model and the replay always
match. tf.train.CheckpointManager writes data files before the index, keeps the last N, and
restore falls back to an older checkpoint if the newest one cannot be read.
"""
import json

import tensorflow as tf


class Checkpointer:

  COUNTERS = ('step', 'updates')

  def __init__(self, directory, agent, keep=3):
    self.counters = {k: tf.Variable(0, dtype=tf.int64, name=k) for k in self.COUNTERS}
    self.extra = tf.Variable('{}', dtype=tf.string, name='extra')
    self.ckpt = tf.train.Checkpoint(agent=agent, extra=self.extra, **self.counters)
    self.manager = tf.train.CheckpointManager(self.ckpt, str(directory), max_to_keep=keep)

  def save(self, step, updates, extra):
    self.counters['step'].assign(step)
    self.counters['updates'].assign(updates)
    self.extra.assign(json.dumps(extra))
    return self.manager.save(checkpoint_number=step)

  def restore(self, log=print):
    """Restores the newest readable checkpoint; returns (step, updates, extra) or None."""
    paths = list(reversed(self.manager.checkpoints))
    for i, path in enumerate(paths):
      try:
        self.ckpt.restore(path).assert_existing_objects_matched()
      except (tf.errors.OpError, ValueError, AssertionError) as e:
        log(f'Checkpoint {path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0]}); '
            + ('trying the previous one.' if i + 1 < len(paths) else 'no older checkpoint.'))
        continue
      if i:
        log(f'Resumed from the older checkpoint {path}; the newer files were kept untouched.')
      return (int(self.counters['step'].numpy()), int(self.counters['updates'].numpy()),
              json.loads(self.extra.numpy().decode()))
    if paths:
      raise RuntimeError(f'No checkpoint in {self.manager.directory} could be read.')
    return None
