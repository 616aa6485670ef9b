import numpy as np
import tensorflow as tf

from dreamer_tf import rssm as rssm_lib


def make(free=1.0):
  tf.random.set_seed(0)
  model = rssm_lib.RSSM(3, deter=8, units=8, stoch=4, classes=5)
  prev = model.initial(6)
  action = tf.one_hot([0, 1, 2, 0, 1, 2], 3)
  embed = tf.random.normal([6, 7], seed=1)
  first = tf.constant([True, False, False, False, False, False])
  return model, prev, action, embed, first


def grads(loss_fn, model, prev, action, embed, first):
  model.obs_step(prev, action, embed, first, tf.constant([1, 2]))  # build
  with tf.GradientTape(persistent=True) as tape:
    post, prior = model.obs_step(prev, action, embed, first, tf.constant([1, 2]))
    loss = tf.reduce_sum(loss_fn(post, prior))
  names = {'img_stats': model.img_stats, 'obs_stats': model.obs_stats, 'obs_out': model.obs_out,
           'img_out': model.img_out}
  return {k: tape.gradient(loss, v.trainable_variables[0]) for k, v in names.items()}


def zero(g):
  return g is None or float(tf.norm(g)) == 0.0


def test_dyn_loss_trains_only_the_prior():
  model, *args = make()
  g = grads(lambda post, prior: model.dyn_loss(post, prior, free=0.0), model, *args)
  assert zero(g['obs_stats']) and zero(g['obs_out'])   # stop-gradient on the posterior
  assert float(tf.norm(g['img_stats'])) > 0 and float(tf.norm(g['img_out'])) > 0


def test_rep_loss_trains_only_the_posterior():
  model, *args = make()
  g = grads(lambda post, prior: model.rep_loss(post, prior, free=0.0), model, *args)
  assert zero(g['img_stats']) and zero(g['img_out'])   # stop-gradient on the prior
  assert float(tf.norm(g['obs_stats'])) > 0 and float(tf.norm(g['obs_out'])) > 0


def test_free_bits_clip_value_and_gradient():
  model, prev, action, embed, first = make()
  post, prior = model.obs_step(prev, action, embed, first, tf.constant([1, 2]))
  kl = model.kl(post, prior).numpy()
  for free in (0.0, float(np.median(kl)), 1e3):
    np.testing.assert_allclose(model.dyn_loss(post, prior, free=free), np.maximum(kl, free),
                               rtol=1e-6)
  g = grads(lambda post, prior: model.dyn_loss(post, prior, free=1e3), model, prev, action,
            embed, first)
  assert zero(g['img_stats'])


def test_is_first_resets_to_learned_initial_state():
  model, prev, action, embed, first = make()
  garbage = {k: v + 5.0 for k, v in prev.items()}
  a, _ = model.obs_step(garbage, action * 9, embed, tf.ones([6], bool), tf.constant([1, 2]))
  b, _ = model.obs_step(prev, tf.zeros_like(action), embed, tf.ones([6], bool),
                        tf.constant([1, 2]))
  np.testing.assert_allclose(a['deter'], b['deter'], rtol=1e-6)
  np.testing.assert_allclose(a['logit'], b['logit'], rtol=1e-6)
  init = model.initial(2)
  np.testing.assert_allclose(init['deter'], np.tanh(np.zeros([2, 8])))
  np.testing.assert_allclose(tf.reduce_sum(init['stoch'], -1), np.ones([2, 4]))


def test_observe_scans_time_and_unimix_bounds_probabilities():
  model, *_ = make()
  embed = tf.random.normal([2, 9, 7], seed=3)
  action = tf.one_hot(tf.zeros([2, 9], tf.int32), 3)
  first = tf.concat([tf.ones([2, 1], bool), tf.zeros([2, 8], bool)], 1)
  post, prior = model.observe(embed, action, first, tf.constant([4, 5]))
  assert post['deter'].shape == (2, 9, 8) and prior['stoch'].shape == (2, 9, 4, 5)
  np.testing.assert_allclose(post['deter'], prior['deter'])
  probs = tf.nn.softmax(post['logit']).numpy()
  assert probs.min() >= 0.01 / 5 - 1e-6  # 1% unimix
  # The same seed gives the same rollout; the scan is deterministic.
  again, _ = model.observe(embed, action, first, tf.constant([4, 5]))
  np.testing.assert_array_equal(post['stoch'], again['stoch'])
