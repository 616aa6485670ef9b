"""Output distributions (DreamerV3 paper Sec. 2-3; dreamerv3@8fa35f8 jaxutils.py, nets.py Dist;
dreamerv2@07d906e common/dists.py; dreamer@56d4d44 tools.py).

All maths in float32 whatever the compute dtype. `OneHotST`, `Bernoulli` and the actor's
`Normal` are TFP distributions, as are the DreamerV1 tanh-Normal (wrapped in `SampleDist`) and the
DreamerV2 truncated Normal actors; `TwoHot`, `MSE` and `SymlogMSE` are regression "distributions"
with the same `mean` / `mode` / `log_prob` interface (the negative log_prob is the loss), as in
the official code, because they are not normalised densities.
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions
sg = tf.stop_gradient


def symlog(x):
  """DreamerV3 eq. 9: sign(x) ln(|x| + 1)."""
  return tf.sign(x) * tf.math.log1p(tf.abs(x))


def symexp(x):
  """Inverse of symlog: sign(x) (exp(|x|) - 1)."""
  return tf.sign(x) * tf.math.expm1(tf.abs(x))


class TwoHot:
  """Discrete regression over `bins` evenly spaced in transformed space (DreamerV3 eq. 10-11).

  logits: (..., bins). The target y is encoded as twohot(symlog(y)): weight on the two
  neighbouring bins, proportional to closeness; prediction is symexp(sum softmax(logits) * bins).
  """

  def __init__(self, logits, low=-20.0, high=20.0, fwd=symlog, bwd=symexp):
    self.logits = tf.cast(logits, tf.float32)
    self.bins = tf.linspace(float(low), float(high), self.logits.shape[-1])
    self.fwd, self.bwd = fwd, bwd

  @property
  def probs(self):
    return tf.nn.softmax(self.logits, -1)

  def mean(self):
    return self.bwd(tf.reduce_sum(self.probs * self.bins, -1))

  mode = mean

  def target(self, x):
    """Twohot encoding of values `x` (...) -> (..., bins); each row sums to 1."""
    x = self.fwd(tf.cast(x, tf.float32))
    nbins = self.bins.shape[0]
    below = tf.reduce_sum(tf.cast(self.bins <= x[..., None], tf.int32), -1) - 1
    above = nbins - tf.reduce_sum(tf.cast(self.bins > x[..., None], tf.int32), -1)
    below = tf.clip_by_value(below, 0, nbins - 1)
    above = tf.clip_by_value(above, 0, nbins - 1)
    equal = tf.equal(below, above)
    dist_below = tf.where(equal, 1.0, tf.abs(tf.gather(self.bins, below) - x))
    dist_above = tf.where(equal, 1.0, tf.abs(tf.gather(self.bins, above) - x))
    total = dist_below + dist_above
    return (tf.one_hot(below, nbins) * (dist_above / total)[..., None] +
            tf.one_hot(above, nbins) * (dist_below / total)[..., None])

  def log_prob(self, x):
    return tf.reduce_sum(self.target(x) * tf.nn.log_softmax(self.logits, -1), -1)


class MSE:
  """Squared error summed over the last `dims` axes; log_prob = -loss (images: dims=3)."""

  def __init__(self, mode, dims):
    self._mode = tf.cast(mode, tf.float32)
    self._axes = list(range(-dims, 0))

  def mode(self):
    return self._mode

  mean = mode

  def log_prob(self, value):
    return -tf.reduce_sum(tf.square(self._mode - tf.cast(value, tf.float32)), self._axes)


class SymlogMSE(MSE):
  """MSE against symlog(target) (DreamerV3 eq. 8); predictions are symexp(output)."""

  def __init__(self, mode, dims, tol=1e-8):
    super().__init__(mode, dims)
    self._tol = tol

  def mode(self):
    return symexp(self._mode)

  mean = mode

  def log_prob(self, value):
    distance = tf.square(self._mode - symlog(tf.cast(value, tf.float32)))
    distance = tf.where(distance < self._tol, 0.0, distance)
    return -tf.reduce_sum(distance, self._axes)


class OneHotST(tfd.OneHotCategorical):
  """One-hot categorical whose samples carry straight-through gradients (DreamerV2 Alg. 1)."""

  def __init__(self, logits=None, probs=None, dtype=tf.float32, **kwargs):
    super().__init__(logits=logits, probs=probs, dtype=dtype, **kwargs)

  @classmethod
  def _parameter_properties(cls, dtype, num_classes=None):
    return super()._parameter_properties(dtype)

  def sample(self, sample_shape=(), seed=None, **kwargs):
    sample = sg(super().sample(sample_shape, seed=seed, **kwargs))
    probs = self.probs_parameter()
    return sample + tf.cast(probs - sg(probs), sample.dtype)

  def mode(self, **kwargs):
    mode = sg(super().mode(**kwargs))
    probs = self.probs_parameter()
    return mode + tf.cast(probs - sg(probs), mode.dtype)


def unimix_logits(logits, unimix):
  """Mixes softmax(logits) with `unimix` of the uniform distribution (DreamerV3 Sec. 2)."""
  if not unimix:
    return logits
  probs = tf.nn.softmax(logits, -1)
  probs = (1.0 - unimix) * probs + unimix / probs.shape[-1]
  return tf.math.log(probs)


def onehot(logits, unimix, event_dims=0):
  """Categorical over the last axis with unimix; `event_dims` extra axes made independent."""
  dist = OneHotST(logits=unimix_logits(tf.cast(logits, tf.float32), unimix))
  return tfd.Independent(dist, event_dims) if event_dims else dist


def normal(mean, std_logit, minstd, maxstd, event_dims):
  """Bounded-std Normal actor of dreamerv3 nets.Dist 'normal': tanh mean, sigmoid std."""
  mean = tf.tanh(tf.cast(mean, tf.float32))
  std = (maxstd - minstd) * tf.sigmoid(tf.cast(std_logit, tf.float32) + 2.0) + minstd
  return tfd.Independent(tfd.Normal(mean, std), event_dims)


def unit_normal(mean, event_dims):
  """Normal(mean, 1): the 'mse' heads of DreamerV1/V2 (DistLayer 'mse', decoders)."""
  return tfd.Independent(tfd.Normal(tf.cast(mean, tf.float32), 1.0), event_dims)


def bernoulli(logits, event_dims):
  return tfd.Independent(tfd.Bernoulli(logits=tf.cast(logits, tf.float32), dtype=tf.float32),
                         event_dims)


class TanhBijector(tfp.bijectors.Bijector):
  """tanh with the inverse clipped inside (-1, 1) so atanh stays finite (dreamer@56d4d44
  tools.TanhBijector); log|det J| = 2 (log 2 - x - softplus(-2x)) is the stable form."""

  def __init__(self, name='tanh'):
    super().__init__(forward_min_event_ndims=0, name=name)

  def _forward(self, x):
    return tf.tanh(x)

  def _inverse(self, y):
    bound = 1.0 - np.finfo(np.float32).eps  # dreamer@56d4d44 clips |y| at 0.99999997
    return tf.atanh(tf.clip_by_value(y, -bound, bound))

  def _forward_log_det_jacobian(self, x):
    return 2.0 * (np.log(2.0) - x - tf.nn.softplus(-2.0 * x))


class SampleDist:
  """Sample-based mean, mode and entropy of a distribution without closed forms (DreamerV1's
  tanh-Normal actor; dreamer@56d4d44 tools.SampleDist, 100 samples).

  mode: the sample with the highest log-probability, chosen per batch element (the original
  gathers the index of batch element 0 for all; the same for the single acting env).
  """

  def __init__(self, dist, samples=100):
    self.dist, self.samples = dist, samples

  def __getattr__(self, name):  # sample, log_prob, ... of the wrapped distribution
    return getattr(self.dist, name)

  def _draw(self, seed):
    samples = self.dist.sample(self.samples, seed=seed)
    return samples, self.dist.log_prob(samples)

  def mean(self, seed=None):
    return tf.reduce_mean(self._draw(seed)[0], 0)

  def mode(self, seed=None):
    samples, logp = self._draw(seed)
    best = tf.one_hot(tf.argmax(logp, 0), self.samples, axis=0, dtype=samples.dtype)
    return tf.reduce_sum(samples * best[..., None], 0)

  def entropy(self, seed=None):
    return -tf.reduce_mean(self._draw(seed)[1], 0)


def tanh_normal(mean, std_logit, init_std, minstd, event_dims, mean_scale=5.0):
  """DreamerV1 actor (models.ActionDecoder 'tanh_normal'): mean 5 tanh(x / 5), std
  softplus(x + softplus^-1(init_std)) + min_std, squashed by tanh, statistics by sampling."""
  mean = mean_scale * tf.tanh(tf.cast(mean, tf.float32) / mean_scale)
  raw_init = float(np.log(np.expm1(init_std)))
  std = tf.nn.softplus(tf.cast(std_logit, tf.float32) + raw_init) + minstd
  dist = tfd.TransformedDistribution(tfd.Normal(mean, std), TanhBijector())
  return SampleDist(tfd.Independent(dist, event_dims))


class TruncNormal(tfd.TruncatedNormal):
  """Normal truncated to [low, high] whose samples are clipped `clip` inside the bounds with a
  straight-through gradient (dreamerv2@07d906e common.TruncNormalDist, clip 1e-6, mult 1)."""

  def __init__(self, loc, scale, low=-1.0, high=1.0, clip=1e-6, **kwargs):
    super().__init__(loc, scale, low, high, **kwargs)
    self.clip = clip

  def sample(self, sample_shape=(), seed=None, **kwargs):
    event = super().sample(sample_shape, seed=seed, **kwargs)
    clipped = tf.clip_by_value(event, self.low + self.clip, self.high - self.clip)
    return event - sg(event) + sg(clipped)


def trunc_normal(mean, std_logit, init_std, minstd, event_dims):
  """DreamerV2 continuous actor (DistLayer 'trunc_normal'): mean tanh(x), std
  2 sigmoid((x + init_std) / 2) + min_std, truncated to [-1, 1]."""
  std = 2.0 * tf.sigmoid((tf.cast(std_logit, tf.float32) + init_std) / 2.0) + minstd
  return tfd.Independent(TruncNormal(tf.tanh(tf.cast(mean, tf.float32)), std), event_dims)


def entropy_bounds(dist_name, shape, minstd=0.1, maxstd=1.0):
  """(min, max) entropy of the actor distribution, for the policy randomness metric."""
  if dist_name == 'onehot':
    return 0.0, float(np.prod(shape[:-1]) * np.log(shape[-1]))
  gauss = lambda std: 0.5 * np.log(2 * np.pi * np.e * std ** 2)
  return float(np.prod(shape) * gauss(minstd)), float(np.prod(shape) * gauss(maxstd))
