"""Recurrent state-space model (DreamerV3 eq. 1; dreamerv3@8fa35f8 nets.RSSM).

State per step: deter h_t (B, deter), stoch z_t (B, stoch, classes) one-hot, logit (B, stoch,
classes). One `obs_step` is the prior (img_step) plus the posterior from the embedding:

      a_{t-1}   z_{t-1} h_{t-1}            x_t
         \\        |      |                  |
          img_in -+- GRU ---> h_t ------ obs_out([h_t, embed_t]) -> q(z_t | h_t, x_t)  posterior
                                  \\----- img_out(h_t)             -> p(z_t | h_t)       prior
`observe` scans obs_step over T steps and `imagine` scans img_step, both with tf.scan.
"""
import tensorflow as tf
import tf_keras as keras

from . import distributions as dists
from . import nets

sg = tf.stop_gradient


def _batch(x):
  """Static batch size where known (XLA needs compile-time shapes), else dynamic."""
  return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


def _mask(x, keep):
  """Multiplies (B, ...) by keep (B,)."""
  return x * tf.reshape(tf.cast(keep, x.dtype), [-1] + [1] * (len(x.shape) - 1))


class RSSM(keras.layers.Layer):

  def __init__(self, action_dim, latent='categorical', deter=4096, units=1024, stoch=32,
               classes=32, act='silu', norm='layer', initial='learned', unimix=0.01,
               action_clip=1.0, winit='normal', fan='avg'):
    super().__init__()
    if latent != 'categorical':
      raise ValueError(f"Unknown rssm.latent '{latent}'. Valid: categorical.")
    if initial not in ('learned', 'zeros'):
      raise ValueError(f"Unknown rssm.initial '{initial}'. Valid: learned, zeros.")
    self.deter, self.stoch, self.classes = deter, stoch, classes
    self.unimix, self.action_clip, self.initial_kind = unimix, action_clip, initial
    self.action_dim = action_dim
    kw = dict(act=act, norm=norm, winit=winit, fan=fan)
    self.img_in = nets.Linear(units, **kw)
    self.gru = nets.Linear(3 * deter, act='none', norm=norm, winit=winit, fan=fan)
    self.img_out = nets.Linear(units, **kw)
    self.obs_out = nets.Linear(units, **kw)
    # The stats layers use the official Linear defaults (uniform init, bias, no norm).
    self.img_stats = keras.layers.Dense(stoch * classes, kernel_initializer=nets.initializer())
    self.obs_stats = keras.layers.Dense(stoch * classes, kernel_initializer=nets.initializer())
    if initial == 'learned':
      self.init_deter = self.add_weight('initial', (deter,), tf.float32, 'zeros')

  # --- distributions -----------------------------------------------------------------------------
  def _logits(self, layer, x):
    logit = tf.reshape(tf.cast(layer(x), tf.float32), [-1, self.stoch, self.classes])
    return dists.unimix_logits(logit, self.unimix)

  def get_dist(self, state):
    """Independent one-hot categoricals over `stoch` variables: event shape (stoch, classes)."""
    return dists.onehot(state['logit'], 0.0, 1)

  # --- steps -------------------------------------------------------------------------------------
  def initial(self, batch):
    """Learned initial state: h_0 = tanh(w), z_0 = mode of the prior at h_0."""
    zeros = tf.zeros([batch, self.stoch, self.classes])
    if self.initial_kind == 'zeros':
      return {'deter': tf.zeros([batch, self.deter]), 'stoch': zeros, 'logit': zeros}
    deter = tf.zeros([batch, self.deter]) + tf.tanh(self.init_deter)
    logit = self._logits(self.img_stats, self.img_out(deter))
    stoch = tf.cast(self.get_dist({'logit': logit}).mode(), tf.float32)
    return {'deter': deter, 'stoch': stoch, 'logit': logit}

  def _clip(self, action):
    action = tf.cast(action, tf.float32)
    if self.action_clip > 0.0:
      action *= sg(self.action_clip / tf.maximum(self.action_clip, tf.abs(action)))
    return action

  def img_step(self, prev, action, seed):
    """Prior step: (state_{t-1}, a_{t-1}) -> state_t with z_t ~ p(z_t | h_t)."""
    stoch = tf.reshape(prev['stoch'], [-1, self.stoch * self.classes])
    x = self.img_in(tf.concat([stoch, self._clip(action)], -1))
    deter = self._gru(x, prev['deter'])
    logit = self._logits(self.img_stats, self.img_out(deter))
    stoch = self.get_dist({'logit': logit}).sample(seed=seed)
    return {'deter': deter, 'stoch': stoch, 'logit': logit}

  def obs_step(self, prev, action, embed, is_first, seed):
    """Posterior step; resets to the initial state where is_first (B,) is true."""
    keep = 1.0 - tf.cast(is_first, tf.float32)
    init = self.initial(_batch(is_first))
    prev = {k: _mask(v, keep) + _mask(init[k], 1.0 - keep) for k, v in prev.items()}
    action = _mask(self._clip(action), keep)
    seed_prior, seed_post = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    prior = self.img_step(prev, action, seed_prior)
    x = self.obs_out(tf.concat([prior['deter'], tf.cast(embed, tf.float32)], -1))
    logit = self._logits(self.obs_stats, x)
    stoch = self.get_dist({'logit': logit}).sample(seed=seed_post)
    return {'deter': prior['deter'], 'stoch': stoch, 'logit': logit}, prior

  def _gru(self, x, deter):
    """Layer-normed GRU of nets.RSSM._gru (update gate biased by -1)."""
    x = tf.cast(self.gru(tf.concat([tf.cast(deter, x.dtype), x], -1)), tf.float32)
    reset, cand, update = tf.split(x, 3, -1)
    reset = tf.sigmoid(reset)
    cand = tf.tanh(reset * cand)
    update = tf.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * tf.cast(deter, tf.float32)

  # --- sequences ---------------------------------------------------------------------------------
  def observe(self, embed, action, is_first, seed, state=None):
    """embed (B, T, E), prev actions (B, T, A), is_first (B, T) -> post, prior dicts (B, T, ...)."""
    swap = lambda x: tf.transpose(x, [1, 0] + list(range(2, len(x.shape))))
    state = self.initial(_batch(is_first)) if state is None else state
    length = is_first.shape[1]
    seeds = tf.random.experimental.stateless_split(seed, length)

    def step(carry, inputs):
      post, _ = carry
      return self.obs_step(post, *inputs)

    post, prior = tf.scan(step, (swap(action), swap(embed), swap(is_first), seeds),
                          (state, state))
    return ({k: swap(v) for k, v in post.items()}, {k: swap(v) for k, v in prior.items()})

  def imagine(self, start, policy, horizon, seed):
    """Rolls out `policy(state, seed) -> action` for `horizon` steps from `start` (N, ...).

    Returns the trajectory (H + 1, N, ...) including the start state, with the action taken in
    each state under key 'action'.
    """
    seeds = tf.random.experimental.stateless_split(seed, horizon + 1)
    start = {k: start[k] for k in ('deter', 'stoch', 'logit')}
    start['action'] = policy(start, seeds[0])

    def step(prev, seed):
      seed_img, seed_act = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      state = self.img_step(prev, prev['action'], seed_img)
      return {**state, 'action': policy(state, seed_act)}

    traj = tf.scan(step, seeds[1:], start)
    return {k: tf.concat([start[k][None], v], 0) for k, v in traj.items()}

  def kl(self, lhs, rhs):
    return self.get_dist(lhs).kl_divergence(self.get_dist(rhs))

  def dyn_loss(self, post, prior, impl='kl', free=1.0):
    """DreamerV3 eq. 5: max(free, KL[sg(post) || prior]) trains the prior."""
    if impl != 'kl':
      raise ValueError(f"Unknown dyn_loss.impl '{impl}'. Valid: kl.")
    loss = self.kl(sg_state(post), prior)
    return tf.maximum(loss, free) if free else loss

  def rep_loss(self, post, prior, impl='kl', free=1.0):
    """DreamerV3 eq. 5: max(free, KL[post || sg(prior)]) trains the representation."""
    if impl != 'kl':
      raise ValueError(f"Unknown rep_loss.impl '{impl}'. Valid: kl.")
    loss = self.kl(post, sg_state(prior))
    return tf.maximum(loss, free) if free else loss


def sg_state(state):
  return {k: sg(v) for k, v in state.items()}
