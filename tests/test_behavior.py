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


def test_v3_critic_loss_reuses_the_actor_loss_critic_pass_exactly():
  """critic_loss on the critic distribution formed in actor_loss (s_0..s_H, row H dropped) is
  -mean_t w_t (log p(R_t | s_t) + slowreg log p(v_slow(s_t) | s_t)) over s_0..s_{H-1} with a
  fresh critic pass, in value and in its gradient into the critic's weights."""
  from dreamer_tf import config as cfg
  config = cfg.load(['dreamerv3', 'debug'], ['--loss_scales.slowreg', '0.5'])
  ac = behavior.make((3,), True, config)
  H, N = 4, 5
  rand = lambda *shape: tf.random.stateless_normal(shape, [H, len(shape)])
  traj = {'deter': rand(H + 1, N, config.rssm.deter),
          'stoch': tf.one_hot(tf.zeros([H + 1, N, config.rssm.stoch], tf.int32),
                              config.rssm.classes),
          'reward': rand(H, N), 'cont': tf.ones([H + 1, N]),
          'action': tf.one_hot([[0] * N] * (H + 1), 3)}
  traj['weight'] = tf.math.cumprod(0.9 * traj['cont'], 0) / 0.9
  ac.critic(traj), ac.slow_critic(traj), ac.actor(traj)  # build
  variables = ac.critic.trainable_variables
  for i, var in enumerate(variables):  # the output layer starts at zero: give every layer a say
    var.assign(var + 0.1 * tf.random.stateless_normal(var.shape, [i, 0]))
  with tf.GradientTape(watch_accessed_variables=False) as tape:
    tape.watch(variables)
    _, targets, _ = ac.actor_loss(traj)
    loss, metrics = ac.critic_loss(traj, targets)
  with tf.GradientTape() as ref_tape:
    states = {k: v[:-1] for k, v in traj.items() if k != 'reward'}
    dist = ac.critic(states)
    slow = ac.slow_critic(states).mean()
    ref = -config.loss_scales.critic * tf.reduce_mean(traj['weight'][:-1] * (
        dist.log_prob(targets['ret']) + 0.5 * dist.log_prob(slow)))
  np.testing.assert_allclose(loss, ref, rtol=1e-6)
  np.testing.assert_allclose(metrics['critic_value'], tf.reduce_mean(dist.mean()), rtol=1e-6)
  grads = tape.gradient(loss, variables)
  want = ref_tape.gradient(ref, variables)
  assert all(float(tf.norm(g)) > 0 for g in want)
  for got, expected in zip(grads, want):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
