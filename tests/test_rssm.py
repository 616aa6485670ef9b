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
  assert post['deter'].shape == (2, 9, 8) and prior['logit'].shape == (2, 9, 4, 5)
  assert set(prior) == {'deter', 'logit'}  # statistics only: observe draws no prior sample
  np.testing.assert_allclose(post['deter'], prior['deter'])
  probs = tf.nn.softmax(post['logit']).numpy()
  assert probs.min() >= 0.01 / 5 - 1e-6  # 1% unimix
  # The same seed gives the same rollout; the scan is deterministic.
  again, _ = model.observe(embed, action, first, tf.constant([4, 5]))
  np.testing.assert_array_equal(post['stoch'], again['stoch'])


def _step_by_step(model, embed, action, first, seed):
  """observe's reference: obs_step (posterior and prior at each step) in a Python loop."""
  state = model.initial(embed.shape[0])
  seeds = tf.random.experimental.stateless_split(seed, embed.shape[1])
  posts, priors = [], []
  for t in range(embed.shape[1]):
    state, prior = model.obs_step(state, action[:, t], embed[:, t], first[:, t], seeds[t])
    posts.append(state)
    priors.append(prior)
  stack = lambda steps: {k: tf.stack([s[k] for s in steps], 1) for k in steps[0]}
  return stack(posts), stack(priors)


def test_observe_equals_obs_step_loop_with_resets():
  """The scan of post_step plus batched priors is obs_step applied T times (same posterior
  samples exactly, same prior statistics), also across an episode reset inside the sequence;
  gradients into the prior head and the learned initial state agree too."""
  for latent in ('categorical', 'gaussian'):
    tf.random.set_seed(0)
    kw = dict(classes=5) if latent == 'categorical' else dict(std_act='softplus', min_std=0.1)
    model = rssm_lib.RSSM(3, latent=latent, deter=8, units=8, stoch=4, **kw)
    embed = tf.random.normal([3, 7, 6], seed=3)
    action = tf.random.normal([3, 7, 3], seed=4)
    first = np.zeros([3, 7], bool)
    first[:, 0] = first[1, 4] = True
    seed = tf.constant([7, 8])
    model.observe(embed, action, first, seed)  # build
    stats = ('logit',) if latent == 'categorical' else ('mean', 'std')
    variables = [model.init_deter, *model.img_stats.trainable_variables]
    results = []
    for fn in (model.observe, lambda *a: _step_by_step(model, *a)):
      with tf.GradientTape() as tape:
        post, prior = fn(embed, action, tf.constant(first), seed)
        loss = sum(tf.reduce_sum(tf.square(prior[k])) for k in stats)
      results.append((post, prior, tape.gradient(loss, variables)))
    (post, prior, grads), (post_ref, prior_ref, grads_ref) = results
    if latent == 'categorical':
      np.testing.assert_array_equal(post['stoch'], post_ref['stoch'])
    else:
      np.testing.assert_allclose(post['stoch'], post_ref['stoch'], rtol=1e-5, atol=1e-6)
    for key in ('deter', *stats):
      np.testing.assert_allclose(post[key], post_ref[key], rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(prior[key], prior_ref[key], rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, grads_ref):
      assert float(tf.norm(want)) > 0
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_gaussian_latent_and_keras_gru():
  tf.random.set_seed(0)
  model = rssm_lib.RSSM(2, latent='gaussian', deter=6, units=5, stoch=3, act='elu', norm='none',
                        initial='zeros', unimix=0.0, action_clip=0.0, winit='uniform',
                        gru='keras', std_act='softplus', min_std=0.1)
  prev = model.initial(4)
  assert set(prev) == {'deter', 'stoch', 'mean', 'std'} and prev['stoch'].shape == (4, 3)
  post, prior = model.obs_step(prev, tf.zeros([4, 2]), tf.ones([4, 7]), tf.zeros([4], bool),
                               tf.constant([1, 2]))
  assert float(tf.reduce_min(post['std'])) > 0.1 and post['stoch'].shape == (4, 3)
  # DreamerV1 layer sizes: img1 (stoch + action -> hidden), Keras GRUCell, img2, img3 (2 stoch).
  counts = {k: int(sum(np.prod(v.shape) for v in getattr(model, k).trainable_variables))
            for k in ('img_in', 'gru', 'img_out', 'img_stats', 'obs_out', 'obs_stats')}
  assert counts == {'img_in': (3 + 2) * 5 + 5, 'gru': 3 * (5 * 6 + 6 * 6 + 2 * 6),
                    'img_out': 6 * 5 + 5, 'img_stats': 5 * 6 + 6, 'obs_out': (6 + 7) * 5 + 5,
                    'obs_stats': 5 * 6 + 6}
  kl = model.kl(post, prior)
  np.testing.assert_allclose(model.dyn_loss(post, prior, free=3.0, free_avg=True),
                             np.full([4], max(float(tf.reduce_mean(kl)), 3.0)), rtol=1e-6)


def test_kl_balancing_routes_alpha_and_one_minus_alpha_of_the_gradient():
  """DreamerV2 eq. with alpha = 0.8: 0.8 * dyn + 0.2 * rep has gradient 0.8 dKL/dprior for the
  prior's parameters and 0.2 dKL/dpost for the posterior-only parameters."""
  model, prev, action, embed, _ = make()
  first = tf.zeros([6], bool)  # no reset, so the prior head reaches the loss only via the prior
  model.obs_step(prev, action, embed, first, tf.constant([1, 2]))
  prior_vars = model.img_stats.trainable_variables
  post_vars = model.obs_stats.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    post, prior = model.obs_step(prev, action, embed, first, tf.constant([1, 2]))
    balanced = tf.reduce_sum(0.8 * model.dyn_loss(post, prior, free=0.0) +
                             0.2 * model.rep_loss(post, prior, free=0.0))
    plain = tf.reduce_sum(model.kl(post, prior))
  for variables, share in ((prior_vars, 0.8), (post_vars, 0.2)):
    for got, full in zip(tape.gradient(balanced, variables), tape.gradient(plain, variables)):
      np.testing.assert_allclose(got, share * full.numpy(), rtol=1e-4, atol=1e-7)
