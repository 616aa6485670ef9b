import numpy as np
import tensorflow as tf

from dreamer_tf import optim


def test_adam_first_step_with_global_norm_clip():
  var = tf.Variable([1.0, 1.0])
  opt = optim.Adam([var], lr=0.1, eps=1e-8, clip=1.0)
  mets = opt.apply([tf.constant([3.0, 4.0])])  # norm 5 -> clipped to [0.6, 0.8]
  np.testing.assert_allclose(mets['opt_grad_norm'], 5.0)
  # First Adam step: m_hat = g, v_hat = g^2, update = lr * g / (|g| + eps) (optax form).
  np.testing.assert_allclose(var.numpy(), 1.0 - 0.1 * np.array([0.6, 0.8]) /
                             (np.array([0.6, 0.8]) + 1e-8), rtol=1e-6)


def test_adam_second_step_bias_correction():
  var = tf.Variable([0.0])
  opt = optim.Adam([var], lr=1.0, eps=1e-5, clip=0.0)
  opt.apply([tf.constant([1.0])])
  opt.apply([tf.constant([-2.0])])
  m = 0.9 * 0.1 * 1 + 0.1 * -2
  v = 0.999 * 0.001 * 1 + 0.001 * 4
  second = (m / (1 - 0.9 ** 2)) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-5)
  first = 1 / (1 + 1e-5)
  np.testing.assert_allclose(var.numpy(), [-first - second], rtol=1e-5)


def test_loss_scaling_skips_overflow_and_halves_scale():
  var = tf.Variable([1.0])
  opt = optim.Adam([var], lr=0.1, eps=1e-8, clip=100.0, scaling=True)
  assert float(opt.grad_scale) == 1e4
  mets = opt.apply([tf.constant([np.inf])])
  assert float(mets['opt_grad_overflow']) == 1.0
  assert float(opt.grad_scale) == 5e3 and float(var[0]) == 1.0 and int(opt.step) == 0
  mets = opt.apply([tf.constant([5e3])])   # a finite scaled gradient of 1.0
  assert float(mets['opt_grad_overflow']) == 0.0 and int(opt.step) == 1
  np.testing.assert_allclose(var.numpy(), [1.0 - 0.1 / (1 + 1e-8)], rtol=1e-6)


def test_decoupled_weight_decay_optax_form_on_kernels_only():
  """optax.add_decayed_weights after scale_by_adam: var -= lr (adam_update + wd var), kernels
  only; the same update traced in a tf.function."""
  kernel = tf.Variable([2.0, -1.0], name='dense/kernel')
  bias = tf.Variable([2.0], name='dense/bias')
  opt = optim.Adam([kernel, bias], lr=0.1, eps=1e-8, clip=0.0, wd=0.5)
  tf.function(opt.apply)([tf.constant([1.0, 1.0]), tf.constant([1.0])])
  adam = 1.0 / (1.0 + 1e-8)
  np.testing.assert_allclose(kernel.numpy(), [2.0 - 0.1 * (adam + 0.5 * 2.0),
                                              -1.0 - 0.1 * (adam + 0.5 * -1.0)], rtol=1e-6)
  np.testing.assert_allclose(bias.numpy(), [2.0 - 0.1 * adam], rtol=1e-6)
  assert int(opt.step) == 1
