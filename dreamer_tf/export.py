"""Exports a run's policy (encoder, RSSM posterior step, actor) as a TensorFlow SavedModel that
loads with plain TensorFlow, without dreamer_tf, TFP or Keras:

    python -m dreamer_tf.export runs/pong/seed0 pong_policy

    policy = tf.saved_model.load('pong_policy')
    state = policy.initial_state(tf.constant(1))
    action, state = policy.step(obs, state, tf.constant([0, 0]))   # obs: {key: (B, ...)}

`initial_state(batch)` (int32 scalar) -> state: dict of float32 tensors, the latent (`deter`,
`stoch` and `logit` or `mean`, `std`) and `prev_action` (B, A).
`step(obs, state, seed)`: obs holds `is_first` (B,) bool and the observations the encoder reads
(e.g. `image` (B, H, W, C) uint8); seed is an int32 (2,) stateless seed. Returns the action
(B, A) float32 and the next state. The step is the agent's acting step with mode 'eval' and
`run.eval_sample: false` (Agent.policy_step with sample=False): the actor's mode (one-hot argmax
for discrete actions), after a posterior latent drawn from `seed` as the world model was trained
on. The same seeds the live agent draws (Agent.rng, one per step) give its actions. Exception:
the DreamerV1 tanh-Normal actor's mode is the best of 100 unseeded samples
(distributions.SampleDist), so its exported action varies from call to call as the live one does.
"""
import argparse
import pathlib
import sys

if __name__ == '__main__':  # before TensorFlow's import: its start-up lines stay off stderr
  from dreamer_tf import quiet
  quiet.quiet_tensorflow()

import tensorflow as tf  # noqa: E402

from . import checkpoint as checkpoint_lib
from . import config as config_lib
from . import policy as policy_lib


class ExportedPolicy(tf.Module):
  """The acting step of `agent` as two tf.functions with explicit input signatures.

  Only the variables of the encoder, the RSSM and the actor are tracked, so the SavedModel holds
  neither the decoder, critic and optimisers nor the Keras layer objects.
  """

  def __init__(self, agent):
    super().__init__(name='dreamer_policy')
    wm = agent.wm
    self.weights = [*wm.encoder.variables, *wm.rssm.variables, *agent.ac.actor.variables]
    self.obs_keys = sorted({*wm.encoder.cnn_shapes, *wm.encoder.mlp_shapes, 'is_first'})
    obs_spec = {k: tf.TensorSpec((None, *agent.obs_space[k][0]), agent.obs_space[k][1])
                for k in self.obs_keys}
    example = self._flatten(agent.initial_state(1))
    state_spec = {k: tf.TensorSpec((None, *v.shape[1:]), v.dtype) for k, v in example.items()}

    def initial_state(batch):
      return self._flatten(agent.initial_state(batch))

    def step(obs, state, seed):
      obs = {**obs, 'reward': tf.zeros(tf.shape(obs['is_first']), tf.float32)}
      prev = ({k: v for k, v in state.items() if k != 'prev_action'}, state['prev_action'])
      action, new = agent.policy_step(obs, prev, seed, sample=False)
      return action, self._flatten(new)

    self.initial_state = tf.function(
        initial_state, input_signature=[tf.TensorSpec([], tf.int32)], autograph=False)
    self.step = tf.function(
        step, input_signature=[obs_spec, state_spec, tf.TensorSpec([2], tf.int32)],
        autograph=False)

  @staticmethod
  def _flatten(state):
    latent, prev_action = state
    return {**latent, 'prev_action': prev_action}


def export(logdir, out, log=print):
  """Writes the SavedModel of the run's newest readable checkpoint to `out` (a new or empty
  directory); returns the Policy it was made from, with run.eval_sample false: its mode 'eval'
  acts as the export does."""
  out = pathlib.Path(out)
  if out.exists() and (not out.is_dir() or any(out.iterdir())):
    raise FileExistsError(f'{out} exists and is not an empty directory; choose another OUT.')
  policy = policy_lib.load_policy(logdir, eval_sample=False, log=log)
  module = ExportedPolicy(policy.agent)
  tf.saved_model.save(module, str(out))
  log(f'Exported the policy of {logdir} at step {policy.step:,} to {out} '
      f"(obs keys: {', '.join(module.obs_keys)}; actions {policy.agent.act_shape}, "
      f"{'one-hot' if policy.agent.discrete else 'continuous'}).")
  return policy


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('logdir', help='run directory (config.yaml, checkpoints/)')
  parser.add_argument('out', help='SavedModel directory to create')
  parser.add_argument('--verbose', action='store_true',
                      help="show TensorFlow's start-up and C++ log lines (dreamer_tf/quiet.py)")
  args = parser.parse_args(argv)
  try:
    export(args.logdir, args.out)
  except (FileNotFoundError, FileExistsError, checkpoint_lib.CheckpointError,
          config_lib.ConfigError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
