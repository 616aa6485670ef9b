"""DreamerPro (dreamer-pro@809b417) against hand-worked values: Sinkhorn-Knopp, the swapped and
temporal prototype losses and their stop-gradients, the prototype freeze, the momentum encoder,
the shift augmentation, the e783832 actor objective, and the preset's parameter counts."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import random_batch
from dreamer_tf import agent as agent_lib
from dreamer_tf import behavior
from dreamer_tf import config as cfg
from dreamer_tf import distributions as dists
from dreamer_tf import nets
from dreamer_tf import prototypes as protos

IMAGE = {'image': ((64, 64, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
         'is_last': ((), bool), 'is_terminal': ((), bool)}
PRESETS = ['dreamerpro', 'dreamerpro_dmc']


# --- Sinkhorn-Knopp ------------------------------------------------------------------------------
def test_sinkhorn_on_a_3x2_example():
  # N = 2 samples (rows here), K = 3 prototypes; scores = eps log A, so Q starts as A / sum(A).
  eps = 0.0125
  a = np.array([[1.0, 1.0, 2.0], [1.0, 3.0, 1.0]])     # A^T of the K x N matrix [[1,1],[1,3],[2,1]]
  scores = tf.constant(eps * np.log(a), tf.float32)
  # One iteration by hand. Q = A / 9; prototype sums 2/9, 4/9, 3/9 -> each set to 1/3:
  # columns [1, 1]/6, [1, 3]/12, [2, 1]/9; sample sums 17/36 and 19/36 -> each set to 1/2,
  # times N = 2: each sample's assignment sums to 1.
  q1 = protos.sinkhorn(scores, eps, 1).numpy()
  np.testing.assert_allclose(q1, [[6 / 17, 3 / 17, 8 / 17], [6 / 19, 9 / 19, 4 / 19]], rtol=1e-5)
  # Three iterations (the official count): samples sum to 1 exactly (the last step), prototypes
  # to N / K = 2/3 nearly.
  q3 = protos.sinkhorn(scores, eps, 3).numpy()
  np.testing.assert_allclose(q3.sum(1), [1.0, 1.0], rtol=1e-6)
  np.testing.assert_allclose(q3.sum(0), [2 / 3] * 3, atol=2e-3)
  assert np.abs(q3.sum(0) - 2 / 3).max() < np.abs(q1.sum(0) - 2 / 3).max()
  # K x N = [[1, 2], [2, 1], [1, 1]]: Q = A / 8, prototype sums 3/8, 3/8, 2/8 -> 1/3 give
  # [1, 2]/9, [2, 1]/9, [1, 1]/6, whose sample sums are 1/2 already: a fixed point. Times N = 2.
  balanced = tf.constant(eps * np.log([[1.0, 2.0, 1.0], [2.0, 1.0, 1.0]]), tf.float32)
  np.testing.assert_allclose(protos.sinkhorn(balanced, eps, 3),
                             [[2 / 9, 4 / 9, 1 / 3], [4 / 9, 2 / 9, 1 / 3]], rtol=1e-5)


# --- losses ---------------------------------------------------------------------------------------
def test_swapped_loss_on_a_two_view_example():
  # Two prototypes. View 1 predicts [1/4, 3/4], view 2 [1/2, 1/2]; targets Q1 = [1, 0],
  # Q2 = [1/2, 1/2]. swav = -1/2 (1/2 log 1/4 + 1/2 log 3/4) - 1/2 log 1/2
  #                       = 1/4 log(16/3) + 1/2 log 2 = 0.765068.
  logp1 = tf.math.log([[0.25, 0.75]])
  logp2 = tf.math.log([[0.5, 0.5]])
  loss = protos.swapped_loss(logp1, logp2, tf.constant([[1.0, 0.0]]), tf.constant([[0.5, 0.5]]))
  np.testing.assert_allclose(loss, 0.25 * np.log(16 / 3) + 0.5 * np.log(2), rtol=1e-6)
  np.testing.assert_allclose(loss, 0.765068, rtol=1e-5)
  # Each view is scored against the other's targets, not its own.
  own = protos.swapped_loss(logp1, logp2, tf.constant([[0.5, 0.5]]), tf.constant([[1.0, 0.0]]))
  np.testing.assert_allclose(own, -0.5 * np.log(0.25) - 0.5 * 0.5 * np.log(0.25), rtol=1e-6)


def tiny_proto(**kw):
  make = lambda: nets.MultiEncoder(
      {'image': (8, 8, 1)}, cnn_keys='image', mlp_keys='$^', act='elu', norm='none',
      mlp_layers=1, mlp_units=4, cnn_depth=2, winit='uniform', fan='avg', symlog_inputs=False,
      minres=4)
  encoder = make()
  args = dict(prototypes=3, dim=2, temperature=0.5, sinkhorn_eps=0.05, sinkhorn_iters=3,
              warm_up=1, freeze=1, **kw)
  return encoder, protos.Prototypes(make, **args)


def test_temporal_loss_by_hand_and_the_stop_gradients():
  encoder, proto = tiny_proto()
  rng = np.random.default_rng(0)
  data = {'image': tf.constant(rng.uniform(size=(4, 3, 8, 8, 1)), tf.float32)}  # 2 views x 2
  post = {'deter': tf.Variable(rng.normal(size=(4, 3, 2)).astype(np.float32)),
          'stoch': tf.Variable(rng.normal(size=(4, 3, 1)).astype(np.float32))}
  with tf.GradientTape(persistent=True) as tape:
    embed = encoder(data)
    losses = proto.loss(data, embed, post)
  # The temporal loss by hand from the layer's own pieces: targets from the momentum encoder,
  # the posterior's projection scored against the unit prototypes, warm-up step dropped.
  c = proto.prototypes.numpy()
  np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-6)  # normalised in place
  feat = np.concatenate([post['stoch'].numpy(), post['deter'].numpy()], -1)
  v = feat @ proto.feat_proj.kernel.numpy() + proto.feat_proj.bias.numpy()
  v /= np.linalg.norm(v, axis=-1, keepdims=True)
  logits = (v @ c.T)[:, 1:] / 0.5
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  w = encoder_proj(proto, data)
  targets = np.concatenate([protos.sinkhorn(tf.constant(s.reshape(-1, 3)), 0.05, 3).numpy()
                            .reshape(2, 2, 3) for s in np.split((w @ c.T)[:, 1:], 2)])
  np.testing.assert_allclose(losses['temp'], -(targets * logp).sum(-1).mean(), rtol=1e-5)
  # Momentum encoder and targets: no gradient. Posterior, projections: gradients.
  for loss in losses.values():
    assert all(g is None for g in tape.gradient(loss, proto.ema_encoder.trainable_weights
                                                + proto.ema_proj.weights))
  assert proto.ema_encoder.trainable_weights == []
  assert proto.trainable_weights[0] is proto.prototypes
  assert tape.gradient(losses['swav'], post['deter']) is None       # swav: embeddings only
  assert np.abs(tape.gradient(losses['temp'], post['deter'])).sum() > 0
  assert np.abs(tape.gradient(losses['swav'], proto.obs_proj.kernel)).sum() > 0
  assert all(np.abs(g).sum() > 0 for g in tape.gradient(losses['swav'], encoder.weights))
  # Frozen prototypes (update 0 < freeze 1): a zero gradient, then a real one after update 1.
  np.testing.assert_array_equal(tape.gradient(losses['temp'], proto.prototypes), 0.0)
  proto.update(encoder)
  with tf.GradientTape() as tape:
    loss = proto.loss(data, encoder(data), post)['temp']
  assert np.abs(tape.gradient(loss, proto.prototypes)).sum() > 0


def encoder_proj(proto, data):
  """The momentum branch as numbers: unit projections of the momentum encoder's embeddings."""
  w = proto.ema_proj(proto.ema_encoder(data)).numpy()
  return w / np.linalg.norm(w, axis=-1, keepdims=True)


def test_momentum_encoder_copies_at_the_first_update_then_mixes_5_percent():
  encoder, proto = tiny_proto(ema_fraction=0.05, ema_every=1)
  data = {'image': tf.zeros([2, 2, 8, 8, 1])}
  proto.loss(data, encoder(data), {'deter': tf.zeros([2, 2, 2]), 'stoch': tf.zeros([2, 2, 1])})
  kernel, ema = encoder.weights[0], proto.ema_encoder.weights[0]
  assert not np.allclose(kernel.numpy(), ema.numpy())     # its own random init before
  proto.update(encoder)
  np.testing.assert_array_equal(ema.numpy(), kernel.numpy())
  np.testing.assert_array_equal(proto.ema_proj.kernel.numpy(), proto.obs_proj.kernel.numpy())
  before = kernel.numpy()
  kernel.assign_add(tf.ones_like(kernel))
  proto.update(encoder)
  np.testing.assert_allclose(ema.numpy(), before + 0.05, rtol=1e-6, atol=1e-6)
  assert int(proto.step) == 2


# --- augmentation -------------------------------------------------------------------------------
def test_shift_moves_pixels_and_repeats_the_edges():
  image = tf.constant(np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1))  # rows 0-3, 4-7, 8-11
  right = protos.shift(image, tf.constant([[1.0, 0.0]]))[0, ..., 0].numpy()
  np.testing.assert_array_equal(right, [[0, 0, 1, 2], [4, 4, 5, 6], [8, 8, 9, 10]])
  down_left = protos.shift(image, tf.constant([[-2.0, 1.0]]))[0, ..., 0].numpy()
  np.testing.assert_array_equal(down_left, [[2, 3, 3, 3], [2, 3, 3, 3], [6, 7, 7, 7]])
  half = protos.shift(image, tf.constant([[0.5, 0.0]]))[0, 0, :, 0].numpy()  # bilinear
  np.testing.assert_allclose(half, [0.0, 0.5, 1.5, 2.5])


@pytest.mark.parametrize('bilinear', [True, False])
def test_random_shift_bounds_and_one_shift_per_sequence(bilinear):
  images = tf.zeros([64, 3, 8, 8, 3])
  _, delta = protos.random_shift(images, 3.0, tf.constant([1, 2]), True, bilinear)
  delta = delta.numpy()
  assert delta.min() >= -3.0 and delta.max() <= 3.0 and delta.std() > 1.0
  np.testing.assert_array_equal(delta[:, 1:], np.repeat(delta[:, :1], 2, 1))  # across time
  if not bilinear:  # integers -3..3, all of them
    assert set(np.unique(delta)) == set(range(-3, 4))
  _, per_frame = protos.random_shift(images, 3.0, tf.constant([1, 2]), False, bilinear)
  assert not np.array_equal(per_frame.numpy()[:, 0], per_frame.numpy()[:, 1])


def test_views_double_the_batch_with_different_shifts():
  _, proto = tiny_proto()
  image = tf.constant(np.random.default_rng(0).uniform(size=(2, 3, 8, 8, 1)), tf.float32)
  views = proto.views({'image': image, 'reward': tf.constant([[1.0] * 3, [2.0] * 3])},
                      tf.constant([3, 4]), ['image'])
  assert views['image'].shape == (4, 3, 8, 8, 1)
  np.testing.assert_array_equal(views['reward'][:, 0], [1.0, 2.0, 1.0, 2.0])
  assert not np.allclose(views['image'][0], views['image'][2])   # two views of sequence 0


# --- actor objective (dreamerv2@e783832) ----------------------------------------------------------
class FixedCritic:
  def __init__(self, values):
    self.values = tf.constant(values, tf.float32)

  def __call__(self, traj):
    n, batch = traj['deter'].shape[:2]
    return dists.unit_normal(tf.tile(self.values[:n, None], [1, batch]), 0)


def hand_traj():
  traj = {'deter': tf.zeros([4, 1, 2]), 'stoch': tf.zeros([4, 1, 2]),
          'action': tf.zeros([4, 1, 1]), 'reward': tf.constant([[1.0], [2.0], [3.0], [4.0]]),
          'disc': tf.fill([4, 1], 0.5)}
  traj['weight'] = tf.math.cumprod(tf.concat([tf.ones([1, 1]), traj['disc'][:-1]], 0), 0)
  return traj


@pytest.mark.parametrize('grad', ['dynamics', 'reinforce'])
def test_actor_objective_from_the_start_state(grad):
  config = cfg.load(PRESETS + ['debug'], ['--return_lambda', '0.5', '--actent', '0',
                                          '--actor_grad_cont', grad])
  assert config.actor_from_start
  ac = behavior.make((1,), False, config)
  ac.slow_critic = FixedCritic([10.0, 20.0, 30.0, 40.0])   # returns
  ac.critic = FixedCritic([1.0, 2.0, 3.0, 4.0])            # online critic: REINFORCE baseline
  loss, _, metrics = ac.actor_loss(hand_traj())
  # R_0..R_2 = 9.8125, 15.25, 23 (tests/test_versions.py); the actor covers s_0..s_2 with R_t,
  # weights 1, .5, .25 (07d906e: s_0, s_1 with R_1, R_2).
  ret, weight = np.array([9.8125, 15.25, 23.0]), np.array([1.0, 0.5, 0.25])
  np.testing.assert_allclose(metrics['adv_mean'], np.mean(ret - [1.0, 2.0, 3.0]), rtol=1e-6)
  if grad == 'dynamics':
    np.testing.assert_allclose(loss, -np.mean(weight * ret), rtol=1e-6)   # -7.729167
  else:
    policy = ac.actor({k: v[:3] for k, v in hand_traj().items()})
    logp = policy.log_prob(tf.zeros([3, 1, 1]))[:, 0].numpy()
    np.testing.assert_allclose(loss, -np.mean(weight * logp * (ret - [1.0, 2.0, 3.0])),
                               rtol=1e-5)


# --- the preset -----------------------------------------------------------------------------------
def conv(k, cin, cout):
  return k * k * cin * cout + cout


def dense(cin, cout):
  return cin * cout + cout


def test_dreamerpro_dmc_parameter_counts_by_layer_arithmetic():
  """Official architecture (common/nets.py, configs `defaults` + `dmc`): ConvEncoder depth 48,
  RSSM hidden = deter = 200 with Gaussian stoch 32 and a layer-normed GRU with bias, obs_proj
  and feat_proj Dense(32), 2500 x 32 prototypes, reward MLP 4 x 400, no decoder, no discount
  head, tanh-Normal actor (mean and std layers) and critic 4 x 400."""
  agent = agent_lib.Agent(IMAGE, {'shape': (6,), 'discrete': False}, cfg.load(PRESETS))
  counts = agent.param_counts()
  embed, deter, stoch, feat = 2 * 2 * 384, 200, 32, 200 + 32
  mlp = lambda out: dense(feat, 400) + 3 * dense(400, 400) + out
  gru = (200 + deter) * 3 * deter + 3 * deter + 2 * 3 * deter   # Dense with bias, LayerNorm
  expected = {
      'encoder': conv(4, 3, 48) + conv(4, 48, 96) + conv(4, 96, 192) + conv(4, 192, 384),
      # img_in on [stoch, action], GRU, img_out, img_dist (mean, std), obs_out on [h, embed],
      # obs_dist.
      'rssm': (dense(stoch + 6, 200) + gru + dense(deter, 200) + dense(200, 2 * stoch)
               + dense(deter + embed, 200) + dense(200, 2 * stoch)),
      'decoder': 0, 'reward': mlp(dense(400, 1)), 'cont': 0,
      'actor': mlp(2 * dense(400, 6)), 'critic': mlp(dense(400, 1)),
      'proto': 2500 * 32 + dense(embed, 32) + dense(feat, 32),
  }
  expected['total'] = sum(expected.values())
  print('dreamerpro dmc (6 actions):', counts)
  assert counts == expected
  # The momentum encoder mirrors the encoder and is not trained.
  ema = agent.wm.proto.ema_encoder
  assert sum(int(np.prod(v.shape)) for v in ema.weights) == expected['encoder']
  assert not any(v is w for v in agent.model_opt.variables_ for w in ema.weights)


def test_train_step_on_views_freezes_prototypes_and_steps_the_momentum_encoder():
  config = cfg.load(PRESETS + ['debug'], ['--precision', 'float32', '--proto.freeze', '1'])
  agent = agent_lib.Agent(IMAGE, {'shape': (3,), 'discrete': False}, config)
  batch = random_batch(agent, config.batch_size, config.batch_length)
  proto = agent.wm.proto
  before = proto.prototypes.numpy()
  first = agent.train(batch)
  # Update 0 is frozen: the prototypes only lose their weight decay (1 - 1e-6) to the
  # renormalisation, the momentum encoder is a copy of the updated encoder.
  np.testing.assert_allclose(proto.prototypes.numpy(),
                             before / np.linalg.norm(before, axis=1, keepdims=True) * (1 - 1e-6),
                             rtol=1e-6)
  for src, dst in zip(agent.wm.encoder.weights, proto.ema_encoder.weights):
    np.testing.assert_array_equal(src.numpy(), dst.numpy())
  frozen = proto.prototypes.numpy()
  for _ in range(4):
    last = agent.train(batch)
  assert not np.allclose(proto.prototypes.numpy(), frozen, atol=1e-6)
  assert int(proto.step) == 5 and all(np.isfinite(v) for v in last.values())
  assert {'swav_loss', 'temp_loss', 'proj_norm_loss'} <= set(last)
  assert last['swav_loss'] + last['temp_loss'] < first['swav_loss'] + first['temp_loss']


def test_verdict_judges_dreamerpro_on_its_six_published_tasks():
  from dreamer_tf import published, verdict
  assert published.episode_kind('dreamerpro') == 'eval'   # its points are evaluation returns
  # walker_run at 1M env steps: 3 published seeds, mean 783.56 (results/published).
  match = verdict.judge('dmc_vision', 'walker_run', 'dreamerpro', [995000], [783.5], 1000000)
  assert match['method'] == 'dreamerpro' and len(match['published']) == 3
  assert match['verdict'] == 'MATCH' and 'dreamer-pro@809b417' in match['source']
  low = verdict.judge('dmc_vision', 'walker_run', 'dreamerpro', [995000], [400.0], 1000000)
  assert low['verdict'] == 'BELOW'
  other = verdict.judge('dmc_vision', 'cartpole_balance', 'dreamerpro', [2000], [300.0], 2000)
  assert other['verdict'] == 'NO_REFERENCE' and other['source'].endswith('published on: none')
