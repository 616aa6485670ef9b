"""Adam with global-norm clipping as optax composes it in dreamerv3@8fa35f8 jaxutils.Optimizer:
clip_by_global_norm(clip) -> scale_by_adam(eps) -> [additive weight decay on kernels] -> scale(-lr).

Written out rather than using Keras' Adam because Keras adds eps to the un-corrected sqrt(v)
("epsilon hat"), which differs from optax for the eps 1e-8 / 1e-5 that Dreamer uses. `opt:
adam_keras` is that Keras form, which DreamerV1 (tools.Adam, tf.optimizers.Adam defaults, eps
1e-7) and DreamerV2 (common.Optimizer) train with; DreamerV2's weight decay multiplies every
variable by (1 - wd) before the step (not scaled by the learning rate). Under float16
compute the loss is scaled dynamically as in the official optimizer (x2 after 1000 finite steps,
/2 on overflow, clipped to [1e-4, 1e4]) and non-finite updates are skipped.

`opt: laprop` is the 2024 rewrite's optimiser (`LaProp`). `make` builds either from a config
block `{opt, lr, eps, clip, wd, agc, warmup}`.
"""
import tensorflow as tf

from . import distribute


class Adam(tf.Module):

  def __init__(self, variables, lr, eps, clip, wd=0.0, opt='adam', scaling=False, name='opt',
               beta1=0.9, beta2=0.999):
    super().__init__(name=name)
    if opt not in ('adam', 'adam_keras'):
      raise ValueError(f"Unknown optimizer '{opt}' for {name}. Valid: adam, adam_keras.")
    self.keras = opt == 'adam_keras'
    self.variables_ = list(variables)
    self.lr, self.eps, self.clip, self.wd = lr, eps, clip, wd
    self.beta1, self.beta2 = beta1, beta2
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.m = [tf.Variable(tf.zeros_like(v), trainable=False, name='m') for v in self.variables_]
    self.v = [tf.Variable(tf.zeros_like(v), trainable=False, name='v') for v in self.variables_]
    self.decay = [wd > 0 and (self.keras or 'kernel' in v.name) for v in self.variables_]
    self.scaling = scaling
    self.grad_scale = tf.Variable(1e4 if scaling else 1.0, trainable=False, name='grad_scale')
    self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='good_steps')

  @property
  def count(self):
    return sum(int(tf.size(v)) for v in self.variables_)

  def scale_loss(self, loss):
    return loss * self.grad_scale if self.scaling else loss

  def apply(self, grads):
    """Applies raw gradients of the (scaled) loss; returns metrics."""
    grads = [tf.zeros_like(v) if g is None else tf.cast(g, tf.float32)
             for g, v in zip(grads, self.variables_)]
    grads = distribute.mean(grads)  # over the replicas of run.strategy (identity on one)
    if self.scaling:
      grads = [g / self.grad_scale for g in grads]
    norm = tf.linalg.global_norm(grads)
    finite = tf.math.is_finite(norm)
    metrics = {f'{self.name}_grad_norm': norm}
    if self.scaling:
      self._update_scale(finite)
      metrics[f'{self.name}_grad_scale'] = tf.identity(self.grad_scale)
      metrics[f'{self.name}_grad_overflow'] = 1.0 - tf.cast(finite, tf.float32)
    if self.clip:
      factor = self.clip / tf.maximum(norm, self.clip)  # optax.clip_by_global_norm
      grads = [g * factor for g in grads]
    step = self.step + tf.cast(finite, tf.int64)
    tf.cond(finite, lambda: self._step(grads, tf.cast(step, tf.float32)), lambda: None)
    self.step.assign(step)
    return metrics

  def _step(self, grads, t):
    """One fused Adam kernel per variable (ResourceApplyAdam: m, v and the variable in one pass).

    The kernel computes var -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps'), which is the
    Keras form for eps' = eps and optax's m_hat / (sqrt(v_hat) + eps) for eps' = eps sqrt(1 - b2^t).
    Weight decay first scales the variable: by (1 - wd) in the Keras form (DreamerV2) and by
    (1 - lr wd) for optax.add_decayed_weights, whose wd * var joins the update before -lr.
    """
    beta1_power, beta2_power = self.beta1 ** t, self.beta2 ** t
    eps = self.eps if self.keras else self.eps * tf.sqrt(1.0 - beta2_power)
    shrink = 1.0 - (self.wd if self.keras else self.lr * self.wd)
    lr = tf.constant(self.lr, tf.float32)
    for var, g, m, v, decay in zip(self.variables_, grads, self.m, self.v, self.decay):
      if decay:
        var.assign(var * shrink)
      tf.raw_ops.ResourceApplyAdam(
          var=var.handle, m=m.handle, v=v.handle, beta1_power=beta1_power,
          beta2_power=beta2_power, lr=lr, beta1=self.beta1,
          beta2=self.beta2, epsilon=eps, grad=g)

  def _update_scale(self, finite):
    grow = tf.logical_and(finite, self.good_steps >= 1000)
    keep = tf.logical_and(finite, self.good_steps < 1000)
    self.good_steps.assign(tf.where(keep, self.good_steps + 1, tf.zeros_like(self.good_steps)))
    scale = tf.where(grow, self.grad_scale * 2.0,
                     tf.where(finite, self.grad_scale, self.grad_scale / 2.0))
    self.grad_scale.assign(tf.clip_by_value(scale, 1e-4, 1e4))


class LaProp(Adam):
  """The rewrite's optimiser chain (dreamerv3@e3f0224 agent.Agent._make_opt, embodied/jax/opt.py):
  clip_by_agc(agc) -> scale_by_rms(beta2, eps) -> scale_by_momentum(beta1) -> [decayed weights on
  kernels] -> learning rate with a linear warmup from 0 over `warmup` updates.

  Per variable with gradient g (adaptive gradient clipping, then LaProp: momentum of the
  normalised gradient):
      g <- g / max(1, |g| / (agc max(1e-3, |w|)))
      v <- beta2 v + (1 - beta2) g^2;  u = g / (sqrt(v / (1 - beta2^t)) + eps)
      m <- beta1 m + (1 - beta1) u;    w <- w - lr_t (m / (1 - beta1^t) + wd w)
  with lr_t = lr min(1, (t - 1) / warmup): optax evaluates the schedule at the count of previous
  updates, so the first update has learning rate 0.
  """

  def __init__(self, variables, lr, eps, agc=0.3, warmup=1000, wd=0.0, scaling=False, name='opt',
               beta1=0.9, beta2=0.999, pmin=1e-3):
    super().__init__(variables, lr, eps, 0.0, wd, 'adam', scaling, name, beta1, beta2)
    self.agc, self.warmup, self.pmin = agc, warmup, pmin

  def _step(self, grads, t):
    lr = self.lr * tf.minimum(1.0, (t - 1.0) / self.warmup) if self.warmup else self.lr
    for var, g, m, v, decay in zip(self.variables_, grads, self.m, self.v, self.decay):
      if self.agc:
        upper = self.agc * tf.maximum(self.pmin, tf.norm(var))
        g = g / tf.maximum(1.0, tf.norm(g) / upper)
      v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(g))
      u = g / (tf.sqrt(v / (1.0 - self.beta2 ** t)) + self.eps)
      m.assign(self.beta1 * m + (1.0 - self.beta1) * u)
      update = m / (1.0 - self.beta1 ** t)
      if decay:
        update += self.wd * var
      var.assign_sub(lr * update)


OPTIMIZERS = ('adam', 'adam_keras', 'laprop')


def make(variables, opt, lr, eps, clip=0.0, wd=0.0, agc=0.0, warmup=0, **kw):
  """The optimiser of a config block (`model_opt`, `actor_opt`, `critic_opt`)."""
  name = kw.get('name', 'opt')
  if opt == 'laprop':
    if clip:
      raise ValueError(f'{name}: laprop clips per variable (agc), not by the global norm; '
                       f'set clip 0, got {clip}.')
    return LaProp(variables, lr, eps, agc, warmup, wd, **kw)
  if opt not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer '{opt}' for {name}. Valid: {', '.join(OPTIMIZERS)}.")
  if agc or warmup:
    raise ValueError(f'{name}: agc and warmup are laprop settings; opt {opt} takes 0, got agc '
                     f'{agc}, warmup {warmup}.')
  return Adam(variables, lr, eps, clip, wd, opt, **kw)
