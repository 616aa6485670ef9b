import numpy as np
import tensorflow as tf

from dreamer_tf import behavior


def test_lambda_return_three_steps():
  reward = tf.constant([[1.0], [2.0], [3.0]])           # r_1, r_2, r_3
  value = tf.constant([[0.5], [1.0], [1.5], [2.0]])     # v_0 .. v_3
  cont = tf.ones([4, 1])
  ret = behavior.lambda_return(reward, value, cont, 0.9, 0.5)
  # R_2 = 3 + .9 (.5 * 2 + .5 * 2) = 4.8; R_1 = 2 + .9 (.5 * 1.5 + .5 * 4.8) = 4.835;
  # R_0 = 1 + .9 (.5 * 1 + .5 * 4.835) = 3.62575.
  np.testing.assert_allclose(ret[:, 0], [3.62575, 4.835, 4.8], rtol=1e-6)


def test_lambda_return_stops_at_terminal():
  reward = tf.constant([[1.0], [2.0], [3.0]])
  value = tf.constant([[0.5], [1.0], [1.5], [2.0]])
  cont = tf.constant([[1.0], [1.0], [0.0], [1.0]])      # state 2 is terminal
  ret = behavior.lambda_return(reward, value, cont, 0.9, 0.5)
  # R_1 = r_2 + 0 = 2; R_0 = 1 + .9 (.5 * 1 + .5 * 2) = 2.35.
  np.testing.assert_allclose(ret[:, 0], [2.35, 2.0, 4.8], rtol=1e-6)


def test_lambda_one_is_monte_carlo_and_zero_is_td():
  reward = tf.constant([[1.0], [1.0]])
  value = tf.constant([[0.0], [10.0], [20.0]])
  cont = tf.ones([3, 1])
  np.testing.assert_allclose(behavior.lambda_return(reward, value, cont, 0.5, 1.0)[:, 0],
                             [1 + 0.5 * (1 + 0.5 * 20), 1 + 0.5 * 20])
  np.testing.assert_allclose(behavior.lambda_return(reward, value, cont, 0.5, 0.0)[:, 0],
                             [1 + 0.5 * 10, 1 + 0.5 * 20])


def test_percentile_matches_numpy():
  x = np.random.default_rng(0).normal(size=1037).astype(np.float32)
  for q in (5.0, 50.0, 95.0):
    np.testing.assert_allclose(behavior.percentile(tf.constant(x), q), np.percentile(x, q),
                               rtol=1e-5)


def test_return_normalisation_over_three_batches():
  moments = behavior.Moments(decay=0.99, max=1.0, perclo=5.0, perchi=95.0)
  x = np.arange(101, dtype=np.float32)
  moments.update(tf.constant(x))            # p5 = 5, p95 = 95
  offset, scale = moments.stats()
  np.testing.assert_allclose([offset, scale], [0.05, 1.0], rtol=1e-6)  # max(1, 0.9) = 1
  moments.update(tf.constant(2 * x))        # p5 = 10, p95 = 190
  moments.update(tf.constant(x - 50))       # p5 = -45, p95 = 45
  low = 0.99 * (0.99 * 0.05 + 0.01 * 10) + 0.01 * -45
  high = 0.99 * (0.99 * 0.95 + 0.01 * 190) + 0.01 * 45
  offset, scale = moments.stats()
  np.testing.assert_allclose([offset, scale], [low, high - low], rtol=1e-5)
  assert abs(low - -0.301995) < 1e-6 and abs(high - 3.262095) < 1e-6
