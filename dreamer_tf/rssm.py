"""Recurrent state-space model (DreamerV3 eq. 1; dreamerv3@8fa35f8 nets.RSSM, dreamerv2@07d906e
common/nets.EnsembleRSSM with ensemble 1, dreamer@56d4d44 models.RSSM).

State per step: deter h_t (B, deter) and stoch z_t with its statistics. Latents by name
(`rssm.latent`): `categorical` z_t (B, stoch, classes) one-hot with `logit` (V2, V3);
`gaussian` z_t (B, stoch) with `mean`, `std` = std_act(x) + min_std (V1 softplus, V2 sigmoid2).
Recurrent cells by name (`rssm.gru`): `norm` layer-normed GRU without bias (V3), `norm_bias` the
same with a bias (V2 GRUCell(norm=True)), `keras` the plain Keras GRUCell (V1), `blocks` the
2024 rewrite's block-diagonal GRU (`BlockCore`, dreamerv3@e3f0224 rssm.RSSM._core) with
`img_layers` prior layers.
One `obs_step` is the recurrent step, the prior and the posterior from the embedding:

      a_{t-1}   z_{t-1} h_{t-1}            x_t
         \\        |      |                  |
          img_in -+- GRU ---> h_t ------ obs_out([h_t, embed_t]) -> q(z_t | h_t, x_t)  posterior
                                  \\----- img_out(h_t)             -> p(z_t | h_t)       prior
`observe` scans the posterior half (post_step) over T steps and forms the T priors in one batch;
`imagine` scans img_step. Both use tf.scan.
"""
import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import distributions as dists
from . import nets

sg = tf.stop_gradient


def _batch(x):
  """Static batch size where known (XLA needs compile-time shapes), else dynamic."""
  return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


class RSSM(keras.layers.Layer):

  LATENTS = ('categorical', 'gaussian')
  draws = dists.Draws()  # randomness of the latent samples (sites 'post', 'prior'); see Draws
  GRUS = ('norm', 'norm_bias', 'keras', 'blocks')
  STD_ACTS = {'softplus': tf.nn.softplus, 'sigmoid2': lambda x: 2 * tf.sigmoid(x / 2)}

  def __init__(self, action_dim, latent='categorical', deter=4096, units=1024, stoch=32,
               classes=32, act='silu', norm='layer', initial='learned', unimix=0.01,
               action_clip=1.0, winit='normal', fan='avg', gru='norm', std_act='sigmoid2',
               min_std=0.1, blocks=8, dyn_layers=1, img_layers=1, bias='auto',
               outinit='uniform_avg'):
    super().__init__()
    for key, value, valid in (('latent', latent, self.LATENTS), ('gru', gru, self.GRUS),
                              ('initial', initial, ('learned', 'zeros')),
                              ('std_act', std_act, tuple(self.STD_ACTS)),
                              ('bias', bias, tuple(nets.MLP.BIAS)),
                              ('outinit', outinit, nets.MLP.OUTINITS)):
      if value not in valid:
        raise ValueError(f"Unknown rssm.{key} '{value}'. Valid: {', '.join(valid)}.")
    self.latent, self.deter, self.stoch, self.classes = latent, deter, stoch, classes
    self.unimix, self.action_clip, self.initial_kind = unimix, action_clip, initial
    self.std_act, self.min_std = self.STD_ACTS[std_act], min_std
    self.action_dim = action_dim
    self.keys = ('deter', 'stoch') + (('logit',) if latent == 'categorical' else ('mean', 'std'))
    kw = dict(act=act, norm=norm, winit=winit, fan=fan, bias=nets.MLP.BIAS[bias])
    self.gru_kind = gru
    if gru == 'blocks':
      self.core = BlockCore(deter, units, blocks, dyn_layers, **kw)
    else:
      self.img_in = nets.Linear(units, **kw)
    if gru == 'keras':
      self.gru = keras.layers.GRUCell(deter)
    elif gru == 'norm_bias':
      self.gru = nets.Linear(3 * deter, act='none', norm='layer', winit=winit, fan=fan, bias=True)
    elif gru == 'norm':
      self.gru = nets.Linear(3 * deter, act='none', norm=norm, winit=winit, fan=fan)
    self.img_out = nets.Linear(units, **kw)  # the first prior layer; img_more: the rest
    self.img_more = [nets.Linear(units, **kw) for _ in range(img_layers - 1)]
    self.obs_out = nets.Linear(units, **kw)
    # 2023: the stats layers use the official Linear defaults (uniform init, bias, no norm); the
    # rewrite's logit layers take the RSSM's winit (rssm.outscale 1).
    size = stoch * classes if latent == 'categorical' else 2 * stoch
    init = lambda: nets.initializer(*(('uniform', 'avg') if outinit == 'uniform_avg' else (
        winit, fan)))
    self.img_stats = keras.layers.Dense(size, kernel_initializer=init())
    self.obs_stats = keras.layers.Dense(size, kernel_initializer=init())
    if initial == 'learned':
      self.init_deter = self.add_weight('initial', (deter,), tf.float32, 'zeros')

  # --- distributions -----------------------------------------------------------------------------
  def _stats(self, layer, x):
    x = tf.cast(layer(x), tf.float32)
    if self.latent == 'categorical':
      logit = tf.reshape(x, [-1, self.stoch, self.classes])
      return {'logit': dists.unimix_logits(logit, self.unimix)}
    mean, std = tf.split(x, 2, -1)
    return {'mean': mean, 'std': self.std_act(std) + self.min_std}

  def get_dist(self, state):
    """Categorical: independent one-hots, event (stoch, classes). Gaussian: diagonal, (stoch,)."""
    if self.latent == 'categorical':
      return dists.onehot(state['logit'], 0.0, 1)
    return dists.tfd.MultivariateNormalDiag(state['mean'], state['std'])

  # --- steps -------------------------------------------------------------------------------------
  def initial(self, batch):
    """Learned initial state: h_0 = tanh(w), z_0 = mode of the prior at h_0."""
    if self.initial_kind == 'zeros':
      shape = [batch, self.stoch, self.classes] if self.latent == 'categorical' else [
          batch, self.stoch]
      return {k: tf.zeros([batch, self.deter] if k == 'deter' else shape) for k in self.keys}
    deter = tf.zeros([batch, self.deter]) + tf.tanh(self.init_deter)
    stats = self._stats(self.img_stats, self._prior_hidden(deter))
    # A plain one-hot mode without a straight-through gradient (nets.RSSM.get_stoch takes
    # OneHotDist.mode, which OneHotDist does not override).
    stoch = sg(tf.cast(self.get_dist(stats).mode(), tf.float32))
    return {'deter': deter, 'stoch': stoch, **stats}

  def _clip(self, action):
    action = tf.cast(action, tf.float32)
    if self.action_clip > 0.0:
      action *= sg(self.action_clip / tf.maximum(self.action_clip, tf.abs(action)))
    return action

  def img_step(self, prev, action, seed):
    """Prior step: (state_{t-1}, a_{t-1}) -> state_t with z_t ~ p(z_t | h_t)."""
    deter = self._recur(prev, self._clip(action))
    stats = self._stats(self.img_stats, self._prior_hidden(deter))
    stoch = self.draws.sample('prior', self.get_dist(stats), seed)
    return {'deter': deter, 'stoch': stoch, **stats}

  def post_step(self, prev, action, embed, is_first, seed, init=None):
    """Posterior step; resets to the initial state `init` (default: initial()) where is_first
    (B,) is true. The prior p(z_t | h_t) is not formed: see obs_step."""
    init = self.initial(_batch(is_first)) if init is None else init
    kernel_deter, kernel_embed = self.obs_out.split_kernel(self.deter, embed.shape[-1])
    share = self.obs_out.partial(embed, kernel_embed)
    return self._post_step(prev, self._prev_action(action, is_first), share, is_first, seed,
                           init, kernel_deter)

  def _prev_action(self, action, is_first):
    """a_{t-1} clipped, and zero where the episode starts (the reset state has no action)."""
    return self._clip(action) * (1.0 - tf.cast(is_first, tf.float32))[..., None]

  def _post_step(self, prev, action, embed_share, is_first, seed, init, kernel_deter):
    """post_step on a prepared action and the embedding's share of obs_out([h_t, embed_t])
    (nets.Linear.partial). The step reads h_{t-1} and z_{t-1} only."""
    first = lambda x: tf.reshape(tf.cast(is_first, tf.bool), [-1] + [1] * (len(x.shape) - 1))
    prev = {k: tf.where(first(prev[k]), init[k], prev[k]) for k in ('deter', 'stoch')}
    _, seed_post = tf.unstack(tf.random.experimental.stateless_split(seed, 2))  # (prior, post)
    deter = self._recur(prev, action)
    x = self.obs_out.complete(deter, embed_share, kernel_deter)
    stats = self._stats(self.obs_stats, x)
    stoch = self.draws.sample('post', self.get_dist(stats), seed_post)
    return {'deter': deter, 'stoch': stoch, **stats}

  def obs_step(self, prev, action, embed, is_first, seed):
    """Posterior step and the prior of the same h_t: (post, prior) with prior z_t ~ p(z_t | h_t)
    drawn from the first half of `seed` (the posterior uses the second)."""
    post = self.post_step(prev, action, embed, is_first, seed)
    seed_prior, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    stats = self._stats(self.img_stats, self._prior_hidden(post['deter']))
    prior = self.draws.sample('prior', self.get_dist(stats), seed_prior)
    return post, {'deter': post['deter'], 'stoch': prior, **stats}

  def _prior_hidden(self, deter):
    """The layers from h_t to the prior's statistics layer (img_layers of them)."""
    x = self.img_out(deter)
    for layer in self.img_more:
      x = layer(x)
    return x

  def _recur(self, prev, action):
    """h_t = f(h_{t-1}, z_{t-1}, a_{t-1}) for a clipped action: img_in then the recurrent cell."""
    stoch = tf.reshape(prev['stoch'], [-1, np.prod(prev['stoch'].shape[1:])])
    if self.gru_kind == 'blocks':
      return self.core(prev['deter'], stoch, action)
    x = self.img_in(tf.concat([stoch, action], -1))
    return self._gru(x, prev['deter'])

  def _gru(self, x, deter):
    """Layer-normed GRU of nets.RSSM._gru (update gate biased by -1), or Keras' GRUCell."""
    if self.gru_kind == 'keras':
      return tf.cast(self.gru(x, [tf.cast(deter, x.dtype)])[0], tf.float32)
    x = tf.cast(self.gru(tf.concat([tf.cast(deter, x.dtype), x], -1)), tf.float32)
    reset, cand, update = tf.split(x, 3, -1)
    reset = tf.sigmoid(reset)
    cand = tf.tanh(reset * cand)
    update = tf.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * tf.cast(deter, tf.float32)

  # --- sequences ---------------------------------------------------------------------------------
  def observe(self, embed, action, is_first, seed, state=None):
    """embed (B, T, E), prev actions (B, T, A), is_first (B, T) -> post, prior dicts (B, T, ...).

    Only the posterior is on the recurrent path (z_t feeds h_{t+1}), so the scan carries
    post_step and the prior statistics of all h_t are one batched pass after it; the initial
    state, the clipped actions and the embeddings' share of obs_out are computed once. The prior
    dict holds `deter` and the statistics (no sample).
    """
    swap = lambda x: tf.transpose(x, [1, 0] + list(range(2, len(x.shape))))
    init = self.initial(_batch(is_first))
    state = init if state is None else state
    length = is_first.shape[1]
    seeds = tf.random.experimental.stateless_split(seed, length)

    # Per-step inputs that do not depend on the carry, prepared for all T steps at once.
    action = self._prev_action(action, is_first)
    kernel_deter, kernel_embed = self.obs_out.split_kernel(self.deter, embed.shape[-1])
    shares = self.obs_out.partial(embed, kernel_embed)

    def step(prev, inputs):
      return self._post_step(prev, *inputs, init=init, kernel_deter=kernel_deter)

    post = tf.scan(step, (swap(action), swap(shares), swap(is_first), seeds),
                   {k: state[k] for k in self.keys})
    post = {k: swap(v) for k, v in post.items()}
    deter = post['deter']
    flat = tf.reshape(deter, [-1, self.deter])
    stats = self._stats(self.img_stats, self._prior_hidden(flat))
    lead = tf.shape(deter)[:2]
    stats = {k: tf.reshape(v, tf.concat([lead, tf.shape(v)[1:]], 0)) for k, v in stats.items()}
    return post, {'deter': deter, **stats}

  def imagine(self, start, policy, horizon, seed):
    """Rolls out `policy(state, seed) -> action` for `horizon` steps from `start` (N, ...).

    Returns the trajectory (H + 1, N, ...) including the start state, with the action taken in
    each state under key 'action'.
    """
    seeds = tf.random.experimental.stateless_split(seed, horizon + 1)
    start = {k: start[k] for k in self.keys}
    start['action'] = policy(start, seeds[0])

    def step(prev, seed):
      seed_img, seed_act = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      state = self.img_step(prev, prev['action'], seed_img)
      return {**state, 'action': policy(state, seed_act)}

    traj = tf.scan(step, seeds[1:], start)
    return {k: tf.concat([start[k][None], v], 0) for k, v in traj.items()}

  def kl(self, lhs, rhs):
    return self.get_dist(lhs).kl_divergence(self.get_dist(rhs))

  def dyn_loss(self, post, prior, impl='kl', free=1.0, free_avg=False):
    """DreamerV3 eq. 5: max(free, KL[sg(post) || prior]) trains the prior.

    With scale alpha = 0.8 this is DreamerV2's KL-balancing term (`kl.balance`), which clips
    the batch mean (`free_avg`). impl `kl_joint` is DreamerV1's max(free_nats, mean KL[post ||
    prior]) with gradients into both sides (models.RSSM + dreamer.py _train); use it with
    `rep_loss.impl: none`.
    """
    if impl == 'kl_joint':
      return _free(self.kl(post, prior), free, free_avg)
    if impl != 'kl':
      raise ValueError(f"Unknown dyn_loss.impl '{impl}'. Valid: kl, kl_joint.")
    return _free(self.kl(sg_state(post), prior), free, free_avg)

  def rep_loss(self, post, prior, impl='kl', free=1.0, free_avg=False):
    """DreamerV3 eq. 5: max(free, KL[post || sg(prior)]) trains the representation (scale
    1 - alpha = 0.2 in DreamerV2). Returns None for impl `none`."""
    if impl == 'none':
      return None
    if impl != 'kl':
      raise ValueError(f"Unknown rep_loss.impl '{impl}'. Valid: kl, none.")
    return _free(self.kl(post, sg_state(prior)), free, free_avg)


class BlockCore(keras.layers.Layer):
  """The rewrite's recurrent cell (dreamerv3@e3f0224 rssm.RSSM._core): h_{t-1}, z_{t-1} and
  a_{t-1} each through a Linear (dynin0-2), their concatenation given to each of `blocks` groups
  beside that group's slice of h_{t-1}, `dyn_layers` block-diagonal layers (dynhid) and the
  block-diagonal GRU gates (dyngru), then the GRU update with the update gate biased by -1."""

  def __init__(self, deter, units, blocks, dyn_layers, act, norm, winit, fan, bias):
    super().__init__()
    if deter % blocks:
      raise ValueError(f'rssm.deter {deter} is not a multiple of rssm.blocks {blocks}.')
    self.deter, self.blocks = deter, blocks
    kw = dict(act=act, norm=norm, winit=winit, fan=fan, bias=bias)
    self.dynin = [nets.Linear(units, **kw) for _ in range(3)]  # deter, stoch, action
    self.hidden = [nets.BlockLinear(deter, blocks, winit, fan) for _ in range(dyn_layers)]
    self.norms = [nets.Norm(norm) for _ in range(dyn_layers)]
    self.act = nets.get_act(act)
    self.gates = nets.BlockLinear(3 * deter, blocks, winit, fan)

  def call(self, deter, stoch, action):
    deter = tf.cast(deter, tf.float32)
    x = tf.concat([layer(v) for layer, v in zip(self.dynin, (deter, stoch, action))], -1)
    g = self.blocks
    x = tf.tile(x[:, None], [1, g, 1])
    x = tf.concat([tf.cast(tf.reshape(deter, [-1, g, self.deter // g]), x.dtype), x], -1)
    x = tf.reshape(x, [-1, g * x.shape[-1]])
    for layer, norm in zip(self.hidden, self.norms):
      x = self.act(tf.cast(norm(layer(x)), self.compute_dtype))
    x = tf.cast(tf.reshape(self.gates(x), [-1, g, 3 * self.deter // g]), tf.float32)
    reset, cand, update = [tf.reshape(v, [-1, self.deter]) for v in tf.split(x, 3, -1)]
    reset = tf.sigmoid(reset)
    cand = tf.tanh(reset * cand)
    update = tf.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * deter


def _free(loss, free, free_avg):
  """Free bits / nats: max(free, KL) per element, or max(free, mean KL) broadcast (free_avg)."""
  if not free:
    return loss
  if free_avg:
    return tf.zeros_like(loss) + tf.maximum(tf.reduce_mean(loss), free)
  return tf.maximum(loss, free)


def sg_state(state):
  return {k: sg(v) for k, v in state.items()}
