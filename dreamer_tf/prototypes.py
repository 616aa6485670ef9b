"""DreamerPro's reconstruction-free representation objective (world-model `representation:
prototypes`): Deng, Jang and Ahn, "DreamerPro: Reconstruction-Free Model-Based Reinforcement
Learning with Prototypical Representations" (ICML 2022); official code fdeng18/dreamer-pro@809b417
DreamerPro/dreamerv2/agent.py (WorldModel), common/nets.py (RSSM.sinkhorn, RSSM.proto_loss),
common/other.py (random_translate), dreamerv2/configs.yaml (keys in brackets below).

The algorithm as the official code computes it, for a replay batch of B sequences of T steps:

1. Two views. The batch is doubled to [x; x] (2B rows) and each row is shifted by its own
   translation (dx, dy) ~ U(-3, 3)^2, the same for all T frames, sampled bilinearly with the
   edge pixels repeated outside the image ([aug] max_delta 3, same_across_time, bilinear;
   tfa.image.translate fill_mode 'nearest'). Rows b and B + b are two views of one sequence.
   The whole world model (RSSM, KL, reward head) and the imagination starts use the 2B rows.
2. Online projections. The embedding e_t of a view is projected by a Dense layer (no activation)
   to u_t (32 = [rssm] proto), the posterior feature f_t = [z_t, h_t] (RSSM.get_feat) by another
   to v_t; both are L2-normalised: u^_t, v^_t.
3. Prototypes C (K = [rssm] num_prototypes 2500 rows of 32), initialised N(0, 1). Each loss
   call first normalises C's rows in place (C.assign(C / |C|)); the loss then reads C, so the
   gradient reaches C as used, not through the normalisation. C's gradient is zeroed for the
   first [freeze_prototypes_iters] 10,000 updates (inside the optimiser's global norm and with
   Adam and weight decay still applied).
4. Targets. A momentum encoder and momentum obs projection map the same views to w^_t (unit,
   stop-gradient). Their scores against C, with the first [rssm] warm_up = 1 step of every
   sequence dropped, go through Sinkhorn-Knopp per view (K x N, N = B (T - 1) frames):
   Q = softmax over all K N entries of scores / eps, then [rssm] sinkhorn_iters = 3 times rows
   to sum 1/K and columns to sum 1/N, finally times N: each frame's column sums to 1.
   eps: [rssm] sinkhorn_eps 0.05 in `defaults`, 0.0125 in `dmc`. Q is a stop-gradient target.
5. Losses over the steps t >= warm_up, means over rows and steps, tau = [rssm] temperature 0.1:
     swav = -1/2 mean sum_k Q2 log softmax(C u^1 / tau) - 1/2 mean sum_k Q1 log softmax(C u^2 / tau)
            (swapped prediction: each view's embedding predicts the other view's assignment);
     temp = -mean sum_k Q log softmax(C v^ / tau): the posterior state f_t of each view predicts
            its own view's assignment of the same step t (the official `temp_loss`; temporal in
            that f_t = [z_t, h_t] carries the recurrent history h_t, not a shifted target);
     norm = mean (|u| - 1)^2 + mean (|v| - 1)^2 over all T steps.
   [loss_scales] swav 1, temp 1, norm 1 (0 in `norm_off`, the standard-DMC runs), added to the
   KL (balance 0.8) and reward terms; there is no decoder.
6. Momentum update after every model update ([ema_update_every] 1): theta' <- 0.05 theta +
   0.95 theta' ([ema_update_fraction]) for the encoder and the obs projection; the first update
   copies (mix 1), before it the momentum nets keep their own random init.
"""
import math

import tensorflow as tf
import tf_keras as keras

from . import nets

sg = tf.stop_gradient


# --- augmentation --------------------------------------------------------------------------------
def shift(images, delta, bilinear=True):
  """images (N, H, W, C), delta (N, 2) = (dx, dy) in pixels: out(x, y) = in(x - dx, y - dy),
  outside pixels take the nearest edge pixel (tfa.image.translate, fill_mode 'nearest')."""
  ones, zeros = tf.ones_like(delta[:, 0]), tf.zeros_like(delta[:, 0])
  transforms = tf.stack([ones, zeros, -delta[:, 0], zeros, ones, -delta[:, 1], zeros, zeros], 1)
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
      fill_value=tf.constant(0.0, images.dtype), interpolation='BILINEAR' if bilinear else
      'NEAREST', fill_mode='NEAREST')


def random_shift(images, max_delta, seed, same_across_time=True, bilinear=True):
  """images (B, T, H, W, C) float: each sequence (each frame unless same_across_time) shifted
  by (dx, dy) ~ U(-max_delta, max_delta)^2, or integers floor(U(-max_delta, max_delta + 1))
  without `bilinear` (other.random_translate). Returns (shifted images, delta (B, T, 2))."""
  B, T = images.shape[0], images.shape[1]
  high = max_delta if bilinear else max_delta + 1
  delta = tf.random.stateless_uniform([B, 1 if same_across_time else T, 2], seed, -max_delta, high)
  delta = tf.broadcast_to(delta if bilinear else tf.floor(delta), [B, T, 2])
  flat = tf.reshape(images, [B * T, *images.shape[2:]])
  out = shift(flat, tf.reshape(delta, [B * T, 2]), bilinear)
  return tf.reshape(out, tf.shape(images)), delta


# --- maths ---------------------------------------------------------------------------------------
def sinkhorn(scores, eps, iters):
  """Sinkhorn-Knopp cluster assignments (RSSM.sinkhorn) of scores (N, K) for N samples and K
  prototypes: Q = softmax(scores / eps) over all N K entries, then `iters` times the prototype
  sums set to 1/K and the sample sums to 1/N (in log space), returned times N: each sample's
  assignment sums to 1, each prototype gets about N / K."""
  n, k = scores.shape
  log_q = tf.reshape(tf.nn.log_softmax(tf.reshape(scores / eps, [-1])), [n, k])
  for _ in range(iters):
    log_q -= tf.reduce_logsumexp(log_q, 0, keepdims=True) + math.log(k)
    log_q -= tf.reduce_logsumexp(log_q, 1, keepdims=True) + math.log(n)
  return tf.exp(log_q + math.log(n))


def cross_entropy(targets, logp):
  """-mean over samples of sum_k targets_k logp_k; both (..., K)."""
  return -tf.reduce_mean(tf.reduce_sum(targets * logp, -1))


def swapped_loss(logp1, logp2, targets1, targets2):
  """SwAV's swapped prediction (the official `swav_loss`): view 1 predicts view 2's targets
  and view 2 view 1's, averaged."""
  return 0.5 * cross_entropy(targets2, logp1) + 0.5 * cross_entropy(targets1, logp2)


def normalize(x):
  """(x / |x|, |x|) over the last axis in float32 (tf.math.l2_normalize, eps 1e-12)."""
  x = tf.cast(x, tf.float32)
  return tf.math.l2_normalize(x, -1), tf.norm(x, axis=-1)


# --- the objective -------------------------------------------------------------------------------
class Prototypes(keras.layers.Layer):
  """Projections, prototypes and momentum encoder of DreamerPro; `loss` gives swav, temp and
  norm (scalars), `update` the momentum step. `make_encoder()` builds an encoder like the
  world model's, for the momentum copy."""

  def __init__(self, make_encoder, prototypes=2500, dim=32, temperature=0.1, sinkhorn_eps=0.05,
               sinkhorn_iters=3, warm_up=1, freeze=10000, ema_every=1, ema_fraction=0.05,
               aug_max_delta=3.0, aug_same_across_time=True, aug_bilinear=True,
               inputs=('stoch', 'deter')):
    super().__init__(dtype='float32')  # prototypes and counter: plain float32 variables
    self.temperature, self.eps, self.iters = temperature, sinkhorn_eps, sinkhorn_iters
    self.warm_up, self.freeze, self.inputs = warm_up, freeze, tuple(inputs)
    self.ema_every, self.ema_fraction = ema_every, ema_fraction
    self.max_delta, self.same_across_time, self.bilinear = (
        aug_max_delta, aug_same_across_time, aug_bilinear)
    self.prototypes = self.add_weight(
        'prototypes', (prototypes, dim), tf.float32,
        keras.initializers.RandomNormal(0.0, 1.0), trainable=True)
    # tfkl.Dense(proto, None): glorot uniform kernel, zero bias.
    self.obs_proj = keras.layers.Dense(dim, kernel_initializer=nets.initializer())
    self.feat_proj = keras.layers.Dense(dim, kernel_initializer=nets.initializer())
    self.ema_encoder = make_encoder()
    self.ema_proj = keras.layers.Dense(dim, kernel_initializer=nets.initializer())
    self.ema_encoder.trainable = self.ema_proj.trainable = False
    self.step = self.add_weight('step', (), tf.int64, 'zeros', trainable=False)

  def views(self, data, seed, image_keys):
    """Step 1: every key doubled along the batch, images shifted per row."""
    data = {k: tf.concat([v, v], 0) for k, v in data.items()}
    for key in image_keys:  # the same shift for every image key of a row (one seed)
      data[key], _ = random_shift(data[key], self.max_delta, seed, self.same_across_time,
                                  self.bilinear)
    return data

  def _prototypes(self):
    """Step 3: rows normalised in place; no gradient during the first `freeze` updates."""
    self.prototypes.assign(tf.math.l2_normalize(self.prototypes, -1))
    protos = tf.identity(self.prototypes)
    return tf.where(self.step < self.freeze, sg(protos), protos)

  def _scores(self, unit, protos):
    """(2B, T, D) unit vectors -> scores against the prototypes, warm-up steps dropped."""
    return tf.einsum('btd,kd->btk', unit[:, self.warm_up:], protos)

  def targets(self, scores):
    """Step 4: Sinkhorn-Knopp per view on (2B, T', K) scores; stop-gradient."""
    out = []
    for view in tf.split(scores, 2, 0):
      flat = tf.reshape(view, [-1, view.shape[-1]])
      out.append(tf.reshape(sinkhorn(flat, self.eps, self.iters), tf.shape(view)))
    return sg(tf.concat(out, 0))

  def loss(self, data, embed, post):
    """Step 5 on the views `data` (2B, T, ...), their embeddings (2B, T, E) and posterior.
    Returns {'swav', 'temp', 'proj_norm'} (the official 'norm') scalars."""
    protos = self._prototypes()
    obs, obs_norm = normalize(self.obs_proj(tf.cast(embed, self.compute_dtype)))
    feat, feat_norm = normalize(self.feat_proj(nets.features(post, self.inputs)))
    ema, _ = normalize(self.ema_proj(self.ema_encoder(data)))
    targets = self.targets(self._scores(sg(ema), protos))
    logp = lambda unit: tf.nn.log_softmax(self._scores(unit, protos) / self.temperature, -1)
    obs1, obs2 = tf.split(logp(obs), 2, 0)
    target1, target2 = tf.split(targets, 2, 0)
    return {
        'swav': swapped_loss(obs1, obs2, target1, target2),
        'temp': cross_entropy(targets, logp(feat)),
        'proj_norm': (tf.reduce_mean(tf.square(obs_norm - 1.0))
                 + tf.reduce_mean(tf.square(feat_norm - 1.0))),
    }

  def update(self, encoder):
    """Step 6, after a model update: momentum step of the encoder and obs projection."""
    n = self.step
    mix = tf.where(tf.equal(n, 0), 1.0, self.ema_fraction)
    mix *= tf.cast(tf.equal(n % self.ema_every, 0), tf.float32)
    pairs = zip(encoder.weights + self.obs_proj.weights,
                self.ema_encoder.weights + self.ema_proj.weights)
    for src, dst in pairs:
      dst.assign(mix * src + (1.0 - mix) * dst)
    self.step.assign_add(1)

