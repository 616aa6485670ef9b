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
  """DreamerV3 eq. 9: sign(x) ln(|x| + 1), written as jaxutils.symlog (log, not log1p)."""
  return tf.sign(x) * tf.math.log(1.0 + tf.abs(x))


def symlog_log1p(x):
  """symlog as the 2024 rewrite writes it (embodied/jax/nets.symlog): sign(x) log1p(|x|)."""
  return tf.sign(x) * tf.math.log1p(tf.abs(x))


def symexp(x):
  """Inverse of symlog: sign(x) (exp(|x|) - 1), as jaxutils.symexp (exp - 1, not expm1)."""
  return tf.sign(x) * (tf.exp(tf.abs(x)) - 1.0)


def linspace(low, high, num):
  """float32 bins equal bit for bit to jnp.linspace(low, high, num) in jaxutils.DiscDist as XLA
  computes it on CPU: step = i * float32(1 / (num - 1)) kept exact, 1 - step rounded once,
  low (1 - step) + high step in one fused multiply-add (exact here in float64, then rounded).
  tf.linspace differs by up to 8 ulp in 62 of the 255 bins, which the near-zero values of a
  zero-initialised critic turn into relative errors of order one."""
  f32 = np.float32
  step = np.arange(num - 1, dtype=np.float64) * float(f32(1.0 / (num - 1)))
  high_step = (float(f32(high)) * step).astype(f32).astype(np.float64)
  bins = float(f32(low)) * (1.0 - step).astype(f32).astype(np.float64) + high_step
  return np.append(bins.astype(f32), f32(high))


class TwoHot:
  """Discrete regression over `bins` evenly spaced in transformed space (DreamerV3 eq. 10-11).

  logits: (..., bins). The target y is encoded as twohot(symlog(y)): weight on the two
  neighbouring bins, proportional to closeness; prediction is symexp(sum softmax(logits) * bins).
  """

  def __init__(self, logits, low=-20.0, high=20.0, fwd=symlog, bwd=symexp):
    self.logits = tf.cast(logits, tf.float32)
    self.bins = tf.constant(linspace(low, high, self.logits.shape[-1]))
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


class SymexpTwoHot(TwoHot):
  """The rewrite's twohot regression (dreamerv3@e3f0224 embodied/jax/heads.Head.symexp_twohot,
  outs.TwoHot): 255 bins symexp(linspace(-20, 0, 128)) mirrored around 0, the target twohot-
  encoded in raw space (no symlog), the prediction sum(probs * bins) summed symmetrically about
  the middle bin so that uniform probabilities give exactly 0 (outs.TwoHot.pred)."""

  def __init__(self, logits):
    self.logits = tf.cast(logits, tf.float32)
    self.bins = tf.constant(symexp_bins(self.logits.shape[-1]))
    self.fwd = self.bwd = tf.identity

  def mean(self):
    n = self.logits.shape[-1]
    weighted = self.probs * self.bins
    if n % 2:
      m = (n - 1) // 2
      sides = weighted[..., :m][..., ::-1] + weighted[..., m + 1:]
      return weighted[..., m] + tf.reduce_sum(sides, -1)
    return tf.reduce_sum(weighted[..., :n // 2][..., ::-1] + weighted[..., n // 2:], -1)

  mode = mean


def symexp_bins(num):
  """Bins of SymexpTwoHot: symexp of jnp.linspace(-20, 0, ...) (expm1, float32), mirrored."""
  half = linspace(-20.0, 0.0, (num - 1) // 2 + 1 if num % 2 else num // 2).astype(np.float64)
  half = (np.sign(half) * np.expm1(np.abs(half))).astype(np.float32)
  return np.concatenate([half, -half[:-1][::-1] if num % 2 else -half[::-1]])


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
  """MSE against symlog(target) (DreamerV3 eq. 8); predictions are symexp(output). 2023
  (jaxutils.SymlogDist): squared distances below `tol` 1e-8 count as 0; the rewrite
  (outs.MSE(pred, nets.symlog)): tol 0 and symlog with log1p (`squash`)."""

  def __init__(self, mode, dims, tol=1e-8, squash=symlog):
    super().__init__(mode, dims)
    self._tol, self._squash = tol, squash

  def mode(self):
    return symexp(self._mode)

  mean = mode

  def log_prob(self, value):
    distance = tf.square(self._mode - self._squash(tf.cast(value, tf.float32)))
    if self._tol:
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
    return reparam(self, sg(super().sample(sample_shape, seed=seed, **kwargs)))

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

  def __init__(self, loc, scale, low=-1.0, high=1.0, clip=1e-6, validate_args=False,
               allow_nan_stats=True, name='TruncNormal'):
    parameters = dict(locals())
    super().__init__(loc, scale, low, high, validate_args, allow_nan_stats, name)
    self._parameters = parameters  # with `clip`, so that copy() and slicing keep it
    self.clip = clip

  @classmethod
  def _parameter_properties(cls, dtype, num_classes=None):
    return super()._parameter_properties(dtype)  # loc, scale, low, high: TFP's annotations

  def sample(self, sample_shape=(), seed=None, **kwargs):
    lead = tf.reshape(tf.cast(sample_shape, tf.int32), [-1])
    return reparam(self, _uniform(tf.concat([lead, self._batch_shape_tensor()], 0), seed))

  def quantile_st(self, u):
    """The sample at uniform u: the standardised inverse CDF z, x = loc + scale * sg(z), then
    the clip inside the bounds with a straight-through gradient.

    The gradient is the location-scale one (d/dloc = 1, d/dscale = z), the one TF registers
    for StatelessParameterizedTruncatedNormal, through which the official code's TFP sampler
    differentiates; not the implicit gradient through the bounds."""
    low, high = (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale
    cdf = lambda x: 0.5 * tf.math.erfc(-x / np.sqrt(2.0))  # standard Normal CDF
    cdf_low, cdf_high = cdf(low), cdf(high)
    z = sg(tf.math.ndtri(cdf_low + u * (cdf_high - cdf_low)))
    event = self.loc + self.scale * z
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


# --- where samples get their randomness ----------------------------------------------------------

def _uniform(shape, seed):
  """Uniform in the open interval (0, 1), for the inverse-CDF samplers."""
  tiny = np.finfo(np.float32).tiny
  return tf.random.stateless_uniform(shape, seed, minval=tiny, maxval=1.0)


def _base(dist):
  """The distribution whose parameters a sample is made from (inside Independent/SampleDist)."""
  while True:
    if isinstance(dist, SampleDist):
      dist = dist.dist
    elif hasattr(dist, 'reinterpreted_batch_ndims'):  # tfd.Independent (and its _Independent)
      dist = dist.distribution
    else:
      return dist


def _transformed(dist):
  """tfd.TransformedDistribution of the V1 actor (TFP may build its _TransformedDistribution)."""
  return hasattr(dist, 'bijector') and not isinstance(dist, tfd.MultivariateNormalDiag)


def noise(dist, seed):
  """The raw random draw behind one sample of `dist`: the one-hot sample of a categorical,
  standard-normal eps of a (tanh-)Normal, uniform u of the truncated Normal."""
  base = _base(dist)
  if isinstance(base, OneHotST):
    return sg(tfd.OneHotCategorical.sample(base, seed=seed))
  if isinstance(base, TruncNormal):
    return _uniform(base._batch_shape_tensor(), seed)
  if _transformed(base):
    base = base.distribution
  return tf.random.stateless_normal(tf.shape(base.loc), seed)


def reparam(dist, draw):
  """The sample of `dist` made from its raw draw, with the gradient path the distribution
  defines: straight-through for one-hots (DreamerV2 Alg. 1, jaxutils.OneHotDist.sample),
  mean + std * eps for Normals, tanh of that for the V1 actor, the inverse CDF for TruncNormal.
  The draw broadcasts against the batch (DreamerV1's shared RSSM noise has the event shape)."""
  base = _base(dist)
  if isinstance(base, OneHotST):
    probs = base.probs_parameter()
    return draw + tf.cast(probs - sg(probs), draw.dtype)
  if isinstance(base, TruncNormal):
    return base.quantile_st(draw)
  if isinstance(base, tfd.MultivariateNormalDiag):  # a TransformedDistribution itself
    return base.loc + base.scale.diag * draw
  if _transformed(base):
    return base.bijector.forward(reparam(base.distribution, draw))
  if isinstance(base, tfd.Normal):
    return base.loc + base.scale * draw
  raise TypeError(f'No reparameterised sampler for {type(base).__name__}.')


class Draws:
  """The source of the randomness of every sample the agent takes, by site: 'post' (posterior
  latents), 'prior' (imagined latents), 'action' (actor samples) and 'explore' (action noise).

  This default draws from the step's stateless seed; `Replay` takes recorded draws instead
  (tests/official replays the official code's). Either way the sample is `reparam(dist, draw)`,
  so a replayed step runs the same maths as a production one.
  """

  def sample(self, site, dist, seed):
    return reparam(dist, self.draw(site, dist, seed))

  def draw(self, site, dist, seed):
    del site
    return noise(dist, seed)


class Replay(Draws):
  """Draws taken in order from recorded tensors, one stack (N, ...) per site.

  A counter per site (a variable, so replay also works inside tf.function and tf.scan) picks
  the next draw; `used()` tells how many each site consumed.
  """

  def __init__(self, recorded):
    self.recorded = {k: tf.constant(v, tf.float32) for k, v in recorded.items()}
    self.counters = {k: tf.Variable(0, trainable=False) for k in self.recorded}

  def draw(self, site, dist, seed):
    del dist, seed
    if site not in self.recorded:
      raise KeyError(f"No recorded draws for site '{site}'. Recorded: {sorted(self.recorded)}.")
    counter = self.counters[site]
    value = tf.gather(self.recorded[site], counter)
    with tf.control_dependencies([value]):
      counter.assign_add(1)
    return value

  def used(self):
    return {k: int(v.numpy()) for k, v in self.counters.items()}
