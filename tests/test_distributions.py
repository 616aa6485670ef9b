import numpy as np
import tensorflow as tf

from dreamer_tf import distributions as d


def test_symlog_symexp_values_and_inverse():
  x = tf.constant([-np.e + 1, -1.0, 0.0, 1.0, np.e - 1, 1e6])
  np.testing.assert_allclose(d.symlog(x), [-1, -np.log(2), 0, np.log(2), 1, np.log1p(1e6)],
                             rtol=1e-6)
  np.testing.assert_allclose(d.symexp(d.symlog(x)), x, rtol=1e-5)


def test_twohot_weights_between_two_bins():
  dist = d.TwoHot(tf.zeros([255]))
  step = 40 / 254  # 255 bins in linspace(-20, 20)
  target = dist.target(d.symexp(tf.constant(0.1))).numpy()
  # symlog(y) = 0.1 lies between bin 127 (0.0) and bin 128 (0.15748): weights by closeness.
  assert np.count_nonzero(target) == 2
  np.testing.assert_allclose(target[127], (step - 0.1) / step, rtol=1e-5)
  np.testing.assert_allclose(target[128], 0.1 / step, rtol=1e-5)


def test_twohot_small_grid_and_clipping():
  ident = lambda x: x
  dist = d.TwoHot(tf.zeros([5]), low=-2, high=2, fwd=ident, bwd=ident)
  np.testing.assert_allclose(dist.target(tf.constant(0.25)), [0, 0, 0.75, 0.25, 0])
  np.testing.assert_allclose(dist.target(tf.constant(-1.0)), [0, 1, 0, 0, 0])
  np.testing.assert_allclose(dist.target(tf.constant(7.0)), [0, 0, 0, 0, 1])  # above range
  np.testing.assert_allclose(dist.target(tf.constant(-7.0)), [1, 0, 0, 0, 0])


def test_twohot_log_prob_and_mean():
  dist = d.TwoHot(tf.zeros([2, 255]))
  np.testing.assert_allclose(dist.log_prob(tf.constant([3.0, -50.0])), [-np.log(255)] * 2,
                             rtol=1e-5)
  logits = np.full([255], -1e4, np.float32)
  logits[128] = 0.0
  np.testing.assert_allclose(d.TwoHot(tf.constant(logits)).mean(), np.expm1(40 / 254), rtol=1e-5)
  # log_prob = sum_i target_i log softmax_i; with softmax = target it is -entropy(target).
  y = d.symexp(tf.constant(0.1))
  w = np.array([(40 / 254 - 0.1) / (40 / 254), 0.1 / (40 / 254)])
  exact = d.TwoHot(tf.math.log(dist.target(y) + 1e-12))
  np.testing.assert_allclose(exact.log_prob(y), (w * np.log(w)).sum(), rtol=1e-4)


def test_mse_and_symlog_mse():
  mse = d.MSE(tf.ones([2, 3, 4]), 2)
  np.testing.assert_allclose(mse.log_prob(tf.zeros([2, 3, 4])), [-12, -12])
  sym = d.SymlogMSE(tf.constant([[0.0, 1.0]]), 1)
  np.testing.assert_allclose(sym.log_prob(tf.constant([[np.e - 1, np.e - 1]])), [-1.0], rtol=1e-6)
  np.testing.assert_allclose(sym.mean(), [[0.0, np.e - 1]], rtol=1e-6)


def test_onehot_unimix_and_straight_through():
  dist = d.onehot(tf.constant([[30.0, -30.0]]), 0.01)
  np.testing.assert_allclose(dist.probs_parameter(), [[0.995, 0.005]], rtol=1e-5)
  logits = tf.Variable(tf.random.normal([4, 5], seed=1))
  w = tf.constant(np.arange(5, dtype=np.float32))
  with tf.GradientTape(persistent=True) as tape:
    dist = d.onehot(logits, 0.0)
    sample = dist.sample(seed=[1, 2])
    lhs = tf.reduce_sum(sample * w)
    rhs = tf.reduce_sum(dist.probs_parameter() * w)
  assert set(np.unique(sample.numpy())) <= {0.0, 1.0}
  np.testing.assert_allclose(sample.numpy().sum(-1), 1.0)
  np.testing.assert_allclose(tape.gradient(lhs, logits), tape.gradient(rhs, logits), rtol=1e-6)


def test_normal_actor_std_bounds_and_tanh_mean():
  dist = d.normal(tf.constant([[0.0, 100.0, 0.5]]), tf.constant([[0.0, -1e4, 1e4]]), 0.1, 1.0, 1)
  std = dist.distribution.stddev().numpy()[0]
  np.testing.assert_allclose(std, [0.9 / (1 + np.exp(-2)) + 0.1, 0.1, 1.0], rtol=1e-6)
  np.testing.assert_allclose(dist.mean()[0], [0.0, 1.0, np.tanh(0.5)], rtol=1e-6)


def test_bernoulli_continue():
  dist = d.bernoulli(tf.constant([[0.0], [100.0]]), 1)
  np.testing.assert_allclose(dist.log_prob(tf.constant([[1.0], [1.0]])), [np.log(0.5), 0.0],
                             atol=1e-6)
  np.testing.assert_allclose(dist.mode(), [[0.0], [1.0]])


def test_unit_normal_is_the_v1_v2_mse_head():
  dist = d.unit_normal(tf.zeros([2, 3]), 1)
  np.testing.assert_allclose(dist.log_prob(tf.ones([2, 3])),
                             [3 * (-0.5 - 0.5 * np.log(2 * np.pi))] * 2, rtol=1e-6)


def test_trunc_normal_keeps_its_clip_and_logs_no_subclass_warning(caplog):
  """TFP warns on every batch-shape query of a subclass that inherits its parent's parameter
  annotations while redefining __init__ (it printed 30 lines at the start of V2 DMC runs)."""
  dist = d.TruncNormal(tf.zeros([2, 3]), tf.ones([2, 3]), clip=0.1)
  with caplog.at_level('WARNING'):
    assert dist.batch_shape == (2, 3) and dist[0].batch_shape == (3,)
    assert dist.copy().clip == 0.1 and dist[0].clip == 0.1
  assert not [r for r in caplog.records if '_parameter_properties' in r.getMessage()]


def test_twohot_bins_equal_jnp_linspace_bit_for_bit():
  """jnp.linspace(-20, 20, 255) as the official DiscDist gets it (values from jax 0.4.13 on
  CPU); tf.linspace rounds these four bins differently."""
  bins = d.linspace(-20, 20, 255)
  official = {13: '-0x1.1f3e7ep+4', 42: '-0x1.ac58b2p+3', 77: '-0x1.f7efe2p+2',
              15: '-0x1.1a346ap+4'}
  tf_bins = tf.linspace(-20.0, 20.0, 255).numpy()
  for index, value in official.items():
    assert bins[index] == np.float32(float.fromhex(value)) != tf_bins[index]
  assert bins[0] == -20.0 and bins[127] == 0.0 and bins[-1] == 20.0 and bins.dtype == np.float32
