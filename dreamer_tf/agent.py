"""The Dreamer agent: world model + actor-critic, compiled policy and train step
(dreamerv3@8fa35f8 agent.Agent)."""
import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import behavior
from . import distribute
from . import distributions as dists
from . import nets
from . import optim
from . import world_model

COMPILE = ('auto', 'eager', 'graph', 'xla')
UPDATE_ORDERS = ('model_first', 'joint', 'one_loss')


def _compile(fn, mode, signature=None):
  if mode not in COMPILE:
    raise ValueError(f"Unknown compile mode '{mode}'. Valid: {', '.join(COMPILE)}.")
  if mode == 'auto':  # XLA where it pays: on a GPU (the official jit), not on this CPU
    mode = 'xla' if tf.config.list_physical_devices('GPU') else 'graph'
  if mode == 'eager':
    return fn
  # No autograph: the traced code has no tensor-dependent Python control flow (tf.scan and
  # tf.cond are explicit), and skipping the source conversion shortens tracing.
  return tf.function(fn, input_signature=signature, jit_compile=(mode == 'xla'),
                     reduce_retracing=False, autograph=False)


class Agent(tf.Module):
  """obs_space: {key: (shape, dtype)}; act_space: {'shape': (A,), 'discrete': bool}."""

  def __init__(self, obs_space, act_space, config):
    super().__init__(name='agent')
    self.strategy = distribute.make(config.run.strategy)   # first: multi_worker needs a fresh TF
    self.rng = tf.random.Generator.from_seed(config.seed)  # one stream, drawn outside replicas
    with distribute.scope(self.strategy):  # every variable mirrored over the replicas
      self._setup(obs_space, act_space, config)

  def _setup(self, obs_space, act_space, config):
    self.config = config
    self.context = config.replay_context
    self.obs_space = {k: (tuple(s), np.dtype(d)) for k, (s, d) in obs_space.items()}
    self.act_shape, self.discrete = tuple(act_space['shape']), act_space['discrete']
    self._check_spaces()
    if self.context and config.rssm.latent != 'categorical':
      raise ValueError('replay_context stores categorical latents; rssm.latent is '
                       f'{config.rssm.latent!r}.')
    if self.context and distribute.replicas(self.strategy) > 1:
      raise ValueError(f'replay_context with run.strategy {config.run.strategy!r} (several '
                       'replicas) is not supported; use replay_context 0.')
    if config.update_order not in UPDATE_ORDERS:
      raise ValueError(f"Unknown update_order '{config.update_order}'. "
                       f"Valid: {', '.join(UPDATE_ORDERS)}.")
    keras.utils.set_random_seed(config.seed)  # Python, NumPy and TF seeds: Keras draws unseeded
                                              # initializer seeds from Python's RNG
    shapes = {k: s for k, (s, _) in self.obs_space.items()}
    with nets.precision(config.precision):
      self.wm = world_model.WorldModel(shapes, self.act_shape[-1], config)
      self.ac = behavior.make(self.act_shape, self.discrete, config)
    self._build()
    scaling = config.precision == 'float16'
    model_vars = [v for m in self.wm.modules for v in m.trainable_variables]
    if config.update_order == 'one_loss':  # the rewrite: one optimiser (model_opt) for all
      self.opt = optim.make(model_vars + self.ac.actor.trainable_variables +
                            self.ac.critic.trainable_variables, scaling=scaling, name='opt',
                            **config.model_opt.to_dict())
    else:
      self.model_opt = optim.make(model_vars, scaling=scaling, name='model_opt',
                                  **config.model_opt.to_dict())
      self.actor_opt = optim.make(self.ac.actor.trainable_variables, scaling=scaling,
                                  name='actor_opt', **config.actor_opt.to_dict())
      self.critic_opt = optim.make(self.ac.critic.trainable_variables, scaling=scaling,
                                   name='critic_opt', **config.critic_opt.to_dict())
    B, T = config.batch_size, config.batch_length + self.context
    spec = lambda lead: {k: tf.TensorSpec((*lead, *s), d) for k, (s, d) in self.data_space.items()}
    if distribute.replicas(self.strategy) == 1:
      self._train = _compile(self._train_step, config.compile,
                             [spec((B, T)), tf.TensorSpec([2], tf.int32)])
    else:
      self._train = _compile(self._distributed_step, config.compile)
    self._policy_sample = _compile(lambda o, s, seed: self.policy_step(o, s, seed, True),
                                   config.compile)
    self._policy_mode = _compile(lambda o, s, seed: self.policy_step(o, s, seed, False),
                                 config.compile)

  # --- spaces ------------------------------------------------------------------------------------
  def _check_spaces(self):
    required = {'reward', 'is_first', 'is_last', 'is_terminal'}
    missing = required - set(self.obs_space)
    if missing:
      raise ValueError(f'Observation space lacks {sorted(missing)}; got {sorted(self.obs_space)}.')
    for key, (shape, dtype) in self.obs_space.items():
      if key in required:
        continue
      if len(shape) == 3 and dtype != np.uint8:
        raise ValueError(f"Image observation '{key}' must be uint8 (H, W, C), got {dtype}.")
      if len(shape) not in (0, 1, 3):
        raise ValueError(
            f"Observation '{key}' has shape {shape}: the agent handles images (H, W, C), "
            'vectors (N,) and scalars (), which the encoder leaves out as the official ones do.')
    if len(self.act_shape) != 1:
      raise ValueError(f'Action shape must be (A,), got {self.act_shape}.')

  @property
  def data_space(self):
    """Keys and dtypes of a replay step as the train step receives it."""
    space = {k: (s, d) for k, (s, d) in self.obs_space.items() if k != 'is_last'}
    space.update({'reward': ((), np.float32), 'is_first': ((), np.bool_),
                  'is_terminal': ((), np.bool_), 'action': (self.act_shape, np.float32)})
    if self.config.behavior == 'dreamerv3_2024':  # the replay value loss reads is_last
      space['is_last'] = ((), np.bool_)
    if self.context:  # the policy's latent at each step (replay_context): float16, one-hots
      rssm = self.config.rssm
      space['ctx_deter'] = ((rssm.deter,), np.float16)
      space['ctx_stoch'] = ((rssm.stoch, rssm.classes), np.uint8)
    return space

  def context_of(self, state):
    """The replay_context entries of a policy state (latent, action): {'ctx_deter',
    'ctx_stoch'} (N, ...) numpy arrays, stored with each step in the replay."""
    latent = state[0]
    return {'ctx_deter': np.asarray(latent['deter'], np.float16),
            'ctx_stoch': np.asarray(latent['stoch'], np.uint8)}

  def _split_context(self, batch):
    """(batch of the trained steps, context) for replay_context K: the steps after the first K,
    and the stored latent and action of step K - 1 to start from (the rewrite's
    Agent._apply_replay_context with consec_train 1); (batch, None) without."""
    if not self.context:
      return batch, None
    K = self.context
    last = lambda x: x[:, K - 1]
    stoch = tf.cast(last(batch['ctx_stoch']), tf.float32)
    state = {'deter': tf.cast(last(batch['ctx_deter']), tf.float32), 'stoch': stoch,
             'logit': tf.zeros_like(stoch)}  # the scan's carry; the step reads deter, stoch
    data = {k: v[:, K:] for k, v in batch.items() if not k.startswith('ctx_')}
    return data, {'state': state, 'action': last(batch['action'])}

  @staticmethod
  def _context_out(post):
    """The trained steps' posterior latents, written back into the replay (replay.update)."""
    return {'context/ctx_deter': tf.cast(post['deter'], tf.float16),
            'context/ctx_stoch': tf.cast(tf.round(post['stoch']), tf.uint8)}

  def _dummy(self, lead):
    return {k: tf.zeros((*lead, *s), d) for k, (s, d) in self.data_space.items()}

  def _build(self):
    """Creates every variable eagerly with known shapes."""
    data = self.wm.preprocess(self._dummy((1, 2)))
    seed = tf.constant([0, 0], tf.int32)
    _, post, _ = self.wm.loss(data, seed)
    start = {k: tf.reshape(v, [-1, *v.shape[2:]]) for k, v in post.items()}
    self.ac.critic(start), self.ac.slow_critic(start), self.ac.actor(start)
    if self.ac.slow_starts_as_copy:
      for src, dst in zip(self.ac.critic.weights, self.ac.slow_critic.weights):
        dst.assign(src)

  def set_draws(self, draws):
    """Where samples get their randomness (distributions.Draws; tests replay recorded draws).
    Takes effect for functions traced afterwards."""
    self.wm.rssm.draws = draws
    self.ac.draws = draws

  # --- acting ------------------------------------------------------------------------------------
  def initial_state(self, batch):
    latent = self.wm.rssm.initial(batch)
    return latent, tf.zeros((batch, *self.act_shape), tf.float32)

  def policy(self, obs, state, mode='train'):
    """obs: dict of (B, ...) arrays; state from initial_state or the previous call.

    mode 'train' samples; 'eval' samples when run.eval_sample else takes the mode.
    Returns (action (B, A) numpy, new state).
    """
    if mode not in ('train', 'eval'):
      raise ValueError(f"Unknown policy mode '{mode}'. Valid: train, eval.")
    sample = mode == 'train' or self.config.run.eval_sample
    fn = self._policy_sample if sample else self._policy_mode
    obs = {k: tf.convert_to_tensor(v) for k, v in obs.items()
           if k in self.obs_space and k != 'is_last'}
    seed = self.rng.uniform_full_int([2], tf.int32)
    action, state = fn(obs, state, seed)
    return action.numpy(), state

  def policy_step(self, obs, state, seed, sample):
    """One acting step as a pure function of (obs, state, stateless seed (2,)), uncompiled
    (`policy` runs it compiled; export.py traces it into a SavedModel)."""
    latent, prev_action = state
    obs = self.wm.preprocess({**obs, 'is_terminal': tf.zeros_like(obs['is_first'])})
    embed = self.wm.encoder({k: v[:, None] for k, v in obs.items()})[:, 0]
    seed_obs, seed_act = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    latent = self.wm.rssm.post_step(latent, prev_action, embed, obs['is_first'], seed_obs)
    dist = self.ac.actor(latent)
    if not sample:
      action = tf.cast(dist.mode(), tf.float32)
    elif not self.config.expl_noise:
      action = tf.cast(self.ac.draws.sample('action', dist, seed_act), tf.float32)
    else:
      seed_act, seed_noise = tf.unstack(tf.random.experimental.stateless_split(seed_act, 2))
      action = tf.cast(self.ac.draws.sample('action', dist, seed_act), tf.float32)
      action = self._explore(action, seed_noise)
    return action, (latent, action)

  def _explore(self, action, seed):
    """Training-time action noise `expl_noise` (dreamer@56d4d44 `additive_gaussian`,
    dreamerv2@07d906e common.action_noise): Normal(a, noise) clipped to [-1, 1], or for one-hot
    actions a uniformly random action with probability `noise`. Drawn at site 'explore'."""
    amount = self.config.expl_noise
    if self.discrete:
      probs = amount / action.shape[-1] + (1.0 - amount) * action
      return self.ac.draws.sample('explore', dists.OneHotST(probs=probs), seed)
    noisy = self.ac.draws.sample('explore', dists.tfd.Normal(action, amount), seed)
    return tf.clip_by_value(noisy, -1.0, 1.0)

  # --- learning ----------------------------------------------------------------------------------
  def train(self, batch, with_context=False):
    """One update of world model, actor and critic on a replay batch (B, T + replay_context,
    ...). Returns the metrics, and with `with_context` also the trained steps' latents
    {'ctx_deter', 'ctx_stoch'} (B, T, ...) for the replay (replay_context)."""
    seed = self.rng.uniform_full_int([2], tf.int32)
    batch = {k: batch[k] for k in self.data_space}
    if distribute.replicas(self.strategy) > 1:
      batch = distribute.split(self.strategy, batch)
    out = self._train(batch, seed)
    metrics = {k: float(v) for k, v in out.items() if not k.startswith('context/')}
    if not with_context:
      return metrics
    return metrics, {k.split('/', 1)[1]: v.numpy() for k, v in out.items()
                     if k.startswith('context/')}

  def _distributed_step(self, batch, seed):
    """_train_step on every replica's slice, each with its own draws; metrics averaged (maxima:
    the largest), which gives the global batch's means (gradient norms agree on every replica)."""
    def step(batch, seed):
      seed = tf.random.experimental.stateless_fold_in(seed, distribute.replica_id())
      metrics = self._train_step(batch, seed)
      return {k: tf.reduce_max(distribute.gather(v[None])) if '_max_' in k else v
              for k, v in metrics.items()}
    metrics = self.strategy.run(step, (batch, seed))
    return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in metrics.items()}

  def _train_step(self, batch, seed):
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    batch, context = self._split_context(batch)
    if self.config.update_order == 'one_loss':
      return self._one_loss_step(batch, seeds, context)
    start, metrics, grads = self._world_model_grads(batch, seeds[0], context)
    joint = self.config.update_order == 'joint'
    if not joint:
      metrics.update(self._apply_model(grads))
    metrics.update(self._train_behavior(start, seeds[1]))
    if joint:  # the program order of the variable ops keeps imagination on the old weights
      metrics.update(self._apply_model(grads))
    if context is not None:  # the posterior (B * T rows of `start`) back to (B, T)
      rows = tf.shape(batch['is_first'])[:2]
      metrics.update(self._context_out({k: tf.reshape(start[k], tf.concat(
          [rows, tf.shape(start[k])[1:]], 0)) for k in ('deter', 'stoch')}))
    return metrics

  def _one_loss_step(self, batch, seeds, context=None):
    """The rewrite's update (dreamerv3@e3f0224 Agent.train, Agent.loss): world-model, actor,
    critic and replay-value losses summed into one loss on the parameters before the update,
    one optimiser step on all of them, then the slow critic. Imagination starts from every
    posterior state and is not differentiated (REINFORCE actor, stopped features)."""
    data = self.wm.preprocess(batch)
    with tf.GradientTape() as tape:
      model_loss, post, metrics = self.wm.loss(data, seeds[0], context)
      with tape.stop_recording():
        start = {k: tf.reshape(tf.stop_gradient(v), [-1, *v.shape[2:]]) for k, v in post.items()}
        traj = self.ac.imagine(self.wm, start, seeds[1])
      actor_loss, targets, mets = self.ac.actor_loss(traj)
      metrics.update(mets)
      critic_loss, mets = self.ac.critic_loss(traj, targets)
      metrics.update(mets)
      repval_loss, mets = self.ac.replay_value_loss(post, data, targets['ret'])
      metrics.update(mets)
      loss = model_loss + actor_loss + critic_loss + repval_loss
      scaled = self.opt.scale_loss(loss)
    metrics['loss'] = loss
    metrics.update(self.opt.apply(tape.gradient(scaled, self.opt.variables_)))
    self.wm.after_update()
    self.ac.update_slow()
    if context is not None:
      metrics.update(self._context_out(post))
    return metrics

  def _apply_model(self, grads):
    metrics = self.model_opt.apply(grads)
    self.wm.after_update()
    return metrics

  def _world_model_grads(self, batch, seed, context=None):
    """World-model loss and gradients; the imagination starts: every posterior state (B * T)."""
    data = self.wm.preprocess(batch)
    with tf.GradientTape() as tape:
      model_loss, post, metrics = self.wm.loss(data, seed, context)
      scaled = self.model_opt.scale_loss(model_loss)
    grads = tape.gradient(scaled, self.model_opt.variables_)
    start = {k: tf.reshape(tf.stop_gradient(v), [-1, *v.shape[2:]]) for k, v in post.items()}
    # The posterior holds `views` copies of the batch along its rows (DreamerPro: two).
    start['is_terminal'] = tf.reshape(tf.tile(data['is_terminal'], [self.wm.views, 1]), [-1])
    return start, metrics, grads

  def _train_behavior(self, start, seed):
    ac = self.ac
    backprop = ac.rollout_grads
    if not backprop:  # REINFORCE needs no gradient through the imagined rollout.
      traj = ac.imagine(self.wm, start, seed)
    # The critic tape watches only the critic's weights, so the critic pass that the DreamerV3
    # actor loss makes on the imagined states also serves the critic loss.
    with tf.GradientTape(watch_accessed_variables=False) as critic_tape:
      critic_tape.watch(self.critic_opt.variables_)
      with tf.GradientTape() as actor_tape:
        if backprop:
          traj = ac.imagine(self.wm, start, seed)
        actor_loss, targets, metrics = ac.actor_loss(traj)
        actor_scaled = self.actor_opt.scale_loss(actor_loss)
      traj = {k: tf.stop_gradient(v) for k, v in traj.items()}
      critic_loss, mets = ac.critic_loss(traj, targets)
      critic_scaled = self.critic_opt.scale_loss(critic_loss)
    metrics.update(self.actor_opt.apply(
        actor_tape.gradient(actor_scaled, self.actor_opt.variables_)))
    metrics.update(mets)
    metrics.update(self.critic_opt.apply(
        critic_tape.gradient(critic_scaled, self.critic_opt.variables_)))
    ac.update_slow()
    return metrics

  # --- introspection -----------------------------------------------------------------------------
  def param_counts(self):
    """Trainable parameters per module, as in shared/reference/official_configs/README.md."""
    wm, ac = self.wm, self.ac
    count = lambda m: int(sum(np.prod(v.shape) for v in m.trainable_variables))
    counts = {'encoder': count(wm.encoder), 'rssm': count(wm.rssm),
              'decoder': count(wm.decoder) if wm.decoder else 0,
              'reward': count(wm.reward), 'cont': count(wm.cont) if wm.cont else 0,
              'actor': count(ac.actor), 'critic': count(ac.critic)}
    if wm.proto is not None:  # DreamerPro: prototypes and the two projections
      counts['proto'] = count(wm.proto)
    counts['total'] = sum(counts.values())
    return counts
