"""What DreamerV1 and DreamerV2 do differently from V3, against hand-worked values: Gaussian KL
with free nats, KL balancing, tanh-Normal and truncated-Normal actors, V1/V2 returns and critic
targets, the REINFORCE baseline and entropy, the slow-target schedule, the V1/V2 train schedule,
the Keras-form Adam, and the parameter counts of the presets."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import random_batch
from dreamer_tf import agent as agent_lib
from dreamer_tf import behavior
from dreamer_tf import config as cfg
from dreamer_tf import distributions as dists
from dreamer_tf import driver
from dreamer_tf import optim
from dreamer_tf import rssm as rssm_lib

IMAGE = {'image': ((64, 64, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
         'is_last': ((), bool), 'is_terminal': ((), bool)}


def gaussian_rssm():
  return rssm_lib.RSSM(2, latent='gaussian', deter=4, units=4, stoch=1, gru='keras',
                       std_act='softplus', initial='zeros', norm='none', act='elu')


# --- KL terms ----------------------------------------------------------------------------------
def test_v1_gaussian_kl_with_free_nats_trains_both_sides():
  rssm = gaussian_rssm()
  # KL[N(0, 1) || N(1, 2)] = log 2 + (1 + 1) / 8 - 1/2 = 0.443147; the other element is 0.
  post_mean, prior_mean = tf.Variable([[0.0], [0.0]]), tf.Variable([[1.0], [0.0]])
  post_std, prior_std = tf.constant([[1.0], [1.0]]), tf.constant([[2.0], [1.0]])
  with tf.GradientTape(persistent=True) as tape:
    post = {'mean': post_mean, 'std': post_std}
    prior = {'mean': prior_mean, 'std': prior_std}
    free = rssm.dyn_loss(post, prior, impl='kl_joint', free=0.1, free_avg=True)
    clipped = rssm.dyn_loss(post, prior, impl='kl_joint', free=3.0, free_avg=True)
    free_mean, clipped_mean = tf.reduce_mean(free), tf.reduce_mean(clipped)
  np.testing.assert_allclose(free, [0.443147 / 2] * 2, rtol=1e-5)  # mean KL, broadcast
  np.testing.assert_allclose(clipped, [3.0, 3.0])
  # Gradients reach both the posterior and the prior (no stop-gradient in V1) ...
  d_post = tape.gradient(free_mean, post_mean)
  d_prior = tape.gradient(free_mean, prior_mean)
  # d/dmu_q KL = (mu_q - mu_p) / s_p^2 = -1/4, over 2 elements of the mean: -1/8.
  np.testing.assert_allclose(d_post[:, 0], [-0.125, 0.0], atol=1e-6)
  np.testing.assert_allclose(d_prior[:, 0], [0.125, 0.0], atol=1e-6)
  # ... and none while the mean KL is under the free nats.
  np.testing.assert_array_equal(tape.gradient(clipped_mean, post_mean), [[0.0], [0.0]])
  assert rssm.rep_loss(post, prior, impl='none') is None


def test_v2_kl_balancing_routes_alpha_to_prior_and_rest_to_posterior():
  rssm = rssm_lib.RSSM(2, deter=4, units=4, stoch=2, classes=3, unimix=0.0, norm='none',
                       initial='zeros', gru='norm_bias')
  post_logit = tf.Variable(tf.random.stateless_normal([5, 2, 3], [1, 2]))
  prior_logit = tf.Variable(tf.random.stateless_normal([5, 2, 3], [3, 4]))
  config = cfg.load(['dreamerv2', 'dreamerv2_dmc_vision'], [])
  alpha = config.loss_scales.dyn / (config.loss_scales.dyn + config.loss_scales.rep)
  assert alpha == pytest.approx(0.8)  # kl.balance
  with tf.GradientTape(persistent=True) as tape:
    post, prior = {'logit': post_logit}, {'logit': prior_logit}
    kw = dict(free=0.0, free_avg=True)
    balanced = (config.loss_scales.dyn * rssm.dyn_loss(post, prior, **kw)
                + config.loss_scales.rep * rssm.rep_loss(post, prior, **kw))
    balanced = tf.reduce_mean(balanced)  # the world model averages over batch and time
    plain = tf.reduce_mean(rssm.kl(post, prior))
  np.testing.assert_allclose(balanced, plain, rtol=1e-6)  # the value is the KL
  np.testing.assert_allclose(tape.gradient(balanced, prior_logit),
                             0.8 * tape.gradient(plain, prior_logit), rtol=1e-5, atol=1e-8)
  np.testing.assert_allclose(tape.gradient(balanced, post_logit),
                             0.2 * tape.gradient(plain, post_logit), rtol=1e-5, atol=1e-8)


# --- actor distributions -----------------------------------------------------------------------
def test_tanh_normal_actor_matches_v1_formulas():
  mean_in = tf.constant([[0.0, 10.0]])
  std_in = tf.constant([[0.0, -3.0]])
  dist = dists.tanh_normal(mean_in, std_in, init_std=5.0, minstd=1e-4, event_dims=1)
  base = dist.dist.distribution.distribution
  # mean 5 tanh(x / 5); std softplus(x + softplus^-1(5)) + 1e-4: exactly 5.0001 at x = 0.
  np.testing.assert_allclose(base.loc, [[0.0, 5 * np.tanh(2.0)]], rtol=1e-6)
  np.testing.assert_allclose(base.scale[0, 0], 5.0001, rtol=1e-6)
  np.testing.assert_allclose(base.scale[0, 1], np.log1p(np.exp(np.log(np.expm1(5.0)) - 3.0))
                             + 1e-4, rtol=1e-5)
  sample = dist.sample(seed=[1, 2])
  assert np.all(np.abs(sample) < 1.0)
  # log p(y) = sum log N(atanh y) - log(1 - y^2), checked on a point away from the bounds.
  y = tf.constant([[0.3, -0.5]])
  x = np.arctanh(y.numpy())
  loc, scale = base.loc.numpy(), base.scale.numpy()
  expected = np.sum(-0.5 * ((x - loc) / scale) ** 2 - np.log(scale * np.sqrt(2 * np.pi))
                    - np.log(1 - y.numpy() ** 2))
  np.testing.assert_allclose(dist.log_prob(y), [expected], rtol=1e-5)
  # Entropy is -mean log p over 100 samples; mode is the most likely of 100 samples.
  seed = [5, 6]
  samples = dist.dist.sample(100, seed=seed)
  np.testing.assert_allclose(dist.entropy(seed=seed), -tf.reduce_mean(dist.log_prob(samples), 0),
                             rtol=1e-5)
  logp = dist.log_prob(samples).numpy()
  np.testing.assert_allclose(dist.mode(seed=seed), samples[int(np.argmax(logp[:, 0])), :],
                             rtol=1e-6)


def test_tanh_normal_log_prob_is_finite_at_the_bounds():
  dist = dists.tanh_normal(tf.zeros([1, 1]), tf.zeros([1, 1]), 5.0, 1e-4, 1)
  assert np.all(np.isfinite(dist.log_prob(tf.constant([[1.0]]))))


def test_trunc_normal_actor_samples_inside_bounds_with_straight_through_gradient():
  mean_in = tf.Variable([[0.0, 3.0]])
  with tf.GradientTape() as tape:
    dist = dists.trunc_normal(mean_in, tf.zeros([1, 2]), init_std=0.0, minstd=0.1, event_dims=1)
    sample = dist.sample(1000, seed=[3, 4])
  # std 2 sigmoid(0 / 2) + 0.1 = 1.1; mean tanh(x).
  np.testing.assert_allclose(dist.distribution.scale, [[1.1, 1.1]], rtol=1e-6)
  np.testing.assert_allclose(dist.distribution.loc, [[0.0, np.tanh(3.0)]], rtol=1e-6)
  assert np.all(np.abs(sample) <= 1 - 1e-6)
  assert tape.gradient(sample, mean_in) is not None
  # Entropy: TFP's closed form, below the untruncated Normal's.
  gauss = 0.5 * np.log(2 * np.pi * np.e * 1.1 ** 2)
  assert 0 < float(dist.entropy()[0]) < 2 * gauss


# --- V1/V2 returns, critic targets, actor objectives --------------------------------------------
class FixedCritic:
  """Stands in for a critic: v(s_t) = values[t] for every trajectory."""

  def __init__(self, values):
    self.values = tf.constant(values, tf.float32)

  def __call__(self, traj):
    n = traj['deter'].shape[1]
    values = tf.tile(self.values[:traj['deter'].shape[0], None], [1, n])
    return dists.unit_normal(values, 0)


def hand_traj(horizon=3):
  """Trajectory s_0..s_3 of one start: rewards r_t, discount d_t = 0.5, weights w_t."""
  traj = {'deter': tf.zeros([horizon + 1, 1, 2]), 'stoch': tf.zeros([horizon + 1, 1, 2]),
          'action': tf.zeros([horizon + 1, 1, 1]),
          'reward': tf.constant([[1.0], [2.0], [3.0], [4.0]]),
          'disc': tf.fill([horizon + 1, 1], 0.5)}
  traj['weight'] = tf.math.cumprod(tf.concat([tf.ones([1, 1]), traj['disc'][:-1]], 0), 0)
  return traj


def make_behavior(preset, lam=0.5, grad='dynamics'):
  config = cfg.load([preset, 'debug'], ['--return_lambda', str(lam), '--actor_grad_cont', grad])
  return behavior.make((1,), False, config)


def test_v2_returns_use_reward_and_discount_of_the_same_state():
  ac = make_behavior('dreamerv2')
  ac.slow_critic = FixedCritic([10.0, 20.0, 30.0, 40.0])
  ret, value = ac.target(hand_traj())
  # R_t = r_t + d_t ((1 - lam) v_{t+1} + lam R_{t+1}), R_3 = v_3 = 40, lam = 0.5, d = 0.5:
  # R_2 = 3 + .5 (.5 * 40 + .5 * 40) = 23; R_1 = 2 + .5 (.5 * 30 + .5 * 23) = 15.25;
  # R_0 = 1 + .5 (.5 * 20 + .5 * 15.25) = 9.8125.
  np.testing.assert_allclose(ret[:, 0], [9.8125, 15.25, 23.0])
  # The critic regresses v(s_0..s_2) on R_0..R_2 with weights w = 1, .5, .25.
  states, target, weight = ac._critic_terms(hand_traj(), ret)
  assert states['deter'].shape[0] == 3
  np.testing.assert_allclose(target[:, 0], [9.8125, 15.25, 23.0])
  np.testing.assert_allclose(weight[:, 0], [1.0, 0.5, 0.25])


def test_v1_value_targets_skip_the_start_state():
  ac = make_behavior('dreamerv1')
  assert isinstance(ac, behavior.ActorCriticV1)
  ac.slow_critic = FixedCritic([10.0, 20.0, 30.0, 40.0])
  ret, _ = ac.target(hand_traj())
  states, target, weight = ac._critic_terms(hand_traj(), ret)
  # dreamer.py: value(imag_feat)[:-1] = v(s_1), v(s_2) against R_1, R_2 with discount 1, gamma.
  assert states['deter'].shape[0] == 2
  np.testing.assert_allclose(target[:, 0], [15.25, 23.0])
  np.testing.assert_allclose(weight[:, 0], [1.0, 0.5])


def test_dynamics_objective_is_weighted_return_of_next_states():
  ac = make_behavior('dreamerv1')
  ac.slow_critic = FixedCritic([10.0, 20.0, 30.0, 40.0])
  traj = hand_traj()
  with tf.GradientTape() as tape:
    tape.watch(traj['reward'])
    loss, _, _ = ac.actor_loss(traj)
  # -mean(w_t R_{t+1}), t = 0, 1: -(1 * 15.25 + .5 * 23) / 2; V1 has no entropy term.
  assert ac.config.actent == 0.0
  np.testing.assert_allclose(loss, -13.375, rtol=1e-6)
  # Gradients reach the imagined rewards (through them, the dynamics and the actor's actions):
  # dR_1/dr_1 = 1, dR_1/dr_2 = d_1 lam = .25, dR_2/dr_2 = 1, so d loss / dr = -[0, 1, .25 + .5, 0] / 2.
  grad = tape.gradient(loss, traj['reward'])[:, 0].numpy()
  np.testing.assert_allclose(grad, [0.0, -0.5, -0.375, 0.0], rtol=1e-6)


def test_v2_reinforce_baseline_and_entropy():
  config = cfg.load(['dreamerv2', 'debug'], ['--return_lambda', '0.5', '--actent', '0.1'])
  ac = behavior.make((3,), True, config)
  ac.slow_critic = FixedCritic([10.0, 20.0, 30.0, 40.0])
  traj = hand_traj()
  traj['action'] = tf.constant([[[1.0, 0, 0]], [[0, 1.0, 0]], [[0, 0, 1.0]], [[1.0, 0, 0]]])
  with tf.GradientTape() as tape:
    loss, _, metrics = ac.actor_loss(traj)
  policy = ac.actor({k: v[:2] for k, v in traj.items()})
  logp = policy.log_prob(traj['action'][:2])[:, 0].numpy()
  ent = policy.entropy()[:, 0].numpy()
  # advantage_t = R_{t+1} - v_slow(s_t): 15.25 - 10, 23 - 20.
  adv = np.array([5.25, 3.0])
  expected = -np.mean(np.array([1.0, 0.5]) * (logp * adv + 0.1 * ent))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(metrics['adv_mean'], adv.mean(), rtol=1e-6)
  grads = tape.gradient(loss, ac.actor.trainable_variables)
  assert all(g is not None for g in grads)


def test_v2_mixed_gradient_blends_objectives():
  config = cfg.load(['dreamerv2', 'debug'], ['--return_lambda', '0.5', '--actent', '0',
                                             '--actor_grad_cont', 'both', '--actor_grad_mix', '0.25'])
  ac = behavior.make((1,), False, config)
  ac.slow_critic = FixedCritic([10.0, 20.0, 30.0, 40.0])
  traj = hand_traj()
  loss, _, _ = ac.actor_loss(traj)
  policy = ac.actor({k: v[:2] for k, v in traj.items()})
  logp = policy.log_prob(traj['action'][:2])[:, 0].numpy()
  objective = 0.25 * np.array([15.25, 23.0]) + 0.75 * logp * np.array([5.25, 3.0])
  np.testing.assert_allclose(loss, -np.mean([1.0, 0.5] * objective), rtol=1e-5)


def test_unknown_actor_gradient_names_valid_ones():
  # update() skips the load-time checks (tests/test_config.py), reaching the behavior's own.
  config = cfg.load(['dreamerv2', 'debug']).update({'actor_grad_cont': 'backprop'})
  with pytest.raises(ValueError, match="'backprop'.*Valid: dynamics, reinforce, both"):
    behavior.make((1,), False, config)


def test_v2_slow_target_is_copied_every_100_updates():
  ac = make_behavior('dreamerv2')
  state = {'deter': tf.zeros([1, 32]), 'stoch': tf.zeros([1, 4, 4])}
  ac.critic(state), ac.slow_critic(state)
  kernel, slow = ac.critic.weights[0], ac.slow_critic.weights[0]
  copies = []
  for update in range(201):
    kernel.assign_add(tf.ones_like(kernel))  # the critic changes every update
    ac.update_slow()
    if np.array_equal(slow.numpy(), kernel.numpy()):
      copies.append(update)
  assert copies == [0, 100, 200]


# --- schedule and optimiser ----------------------------------------------------------------------
def test_every_runs_pretrain_then_train_steps_every_interval():
  every = driver.Every(500, 100, 101)
  counts = [every(step) for step in range(2500, 4001)]
  assert counts[0] == 101 and sum(counts) == 101 + 3 * 100
  assert [2500 + i for i, c in enumerate(counts) if c] == [2500, 3000, 3500, 4000]


def test_keras_adam_step_and_v2_weight_decay():
  var = tf.Variable([1.0])
  opt = optim.Adam([var], lr=0.1, eps=1e-7, clip=0.0, wd=0.01, opt='adam_keras')
  opt.apply([tf.constant([0.5])])
  # var <- (1 - wd) var - lr sqrt(1 - b2) / (1 - b1) m / (sqrt(v) + eps), m = .05, v = .00025.
  m, v = 0.05, 0.00025
  expected = 0.99 - 0.1 * np.sqrt(1 - 0.999) / 0.1 * m / (np.sqrt(v) + 1e-7)
  np.testing.assert_allclose(var.numpy(), [expected], rtol=1e-6)


# --- presets ---------------------------------------------------------------------------------------
def conv(k, cin, cout):
  return k * k * cin * cout + cout


def dense(cin, cout):
  return cin * cout + cout


def test_dreamerv1_parameter_count_by_layer_arithmetic():
  config = cfg.load(['dreamerv1'], [])
  agent = agent_lib.Agent(IMAGE, {'shape': (6,), 'discrete': False}, config)
  counts = agent.param_counts()
  feat = 200 + 30
  expected = {
      'encoder': conv(4, 3, 32) + conv(4, 32, 64) + conv(4, 64, 128) + conv(4, 128, 256),
      # img_in, Keras GRUCell (kernel, recurrent kernel, 2 x 3 biases), img_out, img stats,
      # obs_out on [h, embed 1024], obs stats (mean and std of 30).
      'rssm': (dense(30 + 6, 200) + 3 * (200 * 200 + 200 * 200) + 2 * 600 + dense(200, 200)
               + dense(200, 60) + dense(200 + 1024, 200) + dense(200, 60)),
      'decoder': (dense(feat, 1024) + conv(5, 1024, 128) + conv(5, 128, 64) + conv(6, 64, 32)
                  + conv(6, 32, 3)),
      'reward': dense(feat, 400) + dense(400, 400) + dense(400, 1),
      'cont': 0,
      'actor': dense(feat, 400) + 3 * dense(400, 400) + 2 * dense(400, 6),
      'critic': dense(feat, 400) + 2 * dense(400, 400) + dense(400, 1),
  }
  expected['total'] = sum(expected.values())
  print('dreamerv1 dmc_vision (6 actions):', counts)
  assert counts == expected and counts['total'] == 6_288_833


def test_dreamerv2_parameter_counts_by_layer_arithmetic():
  def mlp(inp, layers, out):
    return dense(inp, 400) + (layers - 1) * dense(400, 400) + out

  def v2(stoch_in, deter, units, action, embed):
    gru = (units + deter) * 3 * deter + 3 * deter + 2 * 3 * deter  # Dense with bias, LayerNorm
    return (dense(stoch_in + action, units) + gru + dense(deter, units) + dense(units, 1024)
            + dense(deter + embed, units) + dense(units, 1024))

  enc = lambda c: conv(4, c, 48) + conv(4, 48, 96) + conv(4, 96, 192) + conv(4, 192, 384)
  dec = lambda feat, c: (dense(feat, 1536) + conv(5, 1536, 192) + conv(5, 192, 96)
                         + conv(6, 96, 48) + conv(6, 48, c))
  cases = {
      'dmc_vision': (['dreamerv2', 'dreamerv2_dmc_vision'], IMAGE, 6, False, 200, 3),
      'atari': (['dreamerv2', 'dreamerv2_atari'], {**IMAGE, 'image': ((64, 64, 1), np.uint8)},
                6, True, 600, 1),
  }
  for name, (presets, space, actions, discrete, deter, channels) in cases.items():
    agent = agent_lib.Agent(space, {'shape': (actions,), 'discrete': discrete},
                            cfg.load(presets, []))
    counts = agent.param_counts()
    feat = deter + 1024
    head = mlp(feat, 4, dense(400, 1))
    expected = {
        'encoder': enc(channels), 'rssm': v2(1024, deter, deter, actions, 1536),
        'decoder': dec(feat, channels), 'reward': head, 'cont': head if discrete else 0,
        'actor': mlp(feat, 4, dense(400, actions) * (1 if discrete else 2)), 'critic': head}
    expected['total'] = sum(expected.values())
    print(f'dreamerv2 {name} ({actions} actions):', counts)
    assert counts == expected, name


# DMC walker from states: the official encoders leave the rank-0 `height` out (dreamerv2
# Encoder takes rank-1 vectors), so 14 orientations + 9 velocities are modelled.
WALKER = {'orientations': ((14,), np.float32), 'height': ((), np.float32),
          'velocity': ((9,), np.float32), 'reward': ((), np.float32), 'is_first': ((), bool),
          'is_last': ((), bool), 'is_terminal': ((), bool)}


@pytest.mark.parametrize('version', ['dreamerv1', 'dreamerv2'])
def test_walker_proprio_parameter_counts_leave_out_the_scalar_height(version):
  presets = ['dreamerv1', 'dreamerv1_proprio'] if version == 'dreamerv1' else [
      'dreamerv2', 'dreamerv2_dmc_proprio']
  agent = agent_lib.Agent(WALKER, {'shape': (6,), 'discrete': False}, cfg.load(presets, []))
  counts = agent.param_counts()
  mlp4 = lambda inp: dense(inp, 400) + 3 * dense(400, 400)  # 4 x 400 ELU, no norm
  if version == 'dreamerv1':
    feat, stoch = 200 + 30, 30
    rssm = (dense(stoch + 6, 200) + 3 * (200 * 200 + 200 * 200) + 2 * 600 + dense(200, 200)
            + dense(200, 60) + dense(200 + 400, 200) + dense(200, 60))
    actor = dense(feat, 400) + 3 * dense(400, 400) + 2 * dense(400, 6)
    value = dense(feat, 400) + 2 * dense(400, 400) + dense(400, 1)
    reward = dense(feat, 400) + dense(400, 400) + dense(400, 1)
  else:
    feat, stoch = 200 + 1024, 1024
    gru = (200 + 200) * 3 * 200 + 3 * 200 + 2 * 3 * 200
    rssm = (dense(stoch + 6, 200) + gru + dense(200, 200) + dense(200, 1024)
            + dense(200 + 400, 200) + dense(200, 1024))
    actor = mlp4(feat) + 2 * dense(400, 6)
    value = reward = mlp4(feat) + dense(400, 1)
  expected = {'encoder': mlp4(14 + 9), 'rssm': rssm,
              'decoder': mlp4(feat) + dense(400, 14) + dense(400, 9),
              'reward': reward, 'cont': 0, 'actor': actor, 'critic': value}
  expected['total'] = sum(expected.values())
  print(f'{version} walker proprio (6 actions):', counts)
  assert counts == expected


@pytest.mark.parametrize('presets', [['dreamerv1'], ['dreamerv2', 'dreamerv2_dmc_vision'],
                                     ['dreamerv2', 'dreamerv2_atari']])
def test_train_step_lowers_loss_on_a_fixed_batch(presets):
  config = cfg.load(presets + ['debug'], ['--precision', 'float32'])
  atari = 'dreamerv2_atari' in presets
  space = {**IMAGE, 'image': ((64, 64, 1 if atari else 3), np.uint8)}
  agent = agent_lib.Agent(space, {'shape': (3,), 'discrete': atari}, config)
  batch = random_batch(agent, config.batch_size, config.batch_length)
  first = agent.train(batch)
  for _ in range(15):
    last = agent.train(batch)
  assert last['model_loss'] < first['model_loss']
  assert all(np.isfinite(v) for v in last.values())


# --- whole loop ------------------------------------------------------------------------------------
VERSIONS = {'dreamerv1': ['dreamerv1', 'debug'],
            'dreamerv2': ['dreamerv2', 'dreamerv2_dmc_vision', 'debug'],
            'dreamerv2_atari': ['dreamerv2', 'dreamerv2_atari', 'debug']}


# The V1/V2 schedule on the dummy task: 60 prefill steps, then 3 pretraining updates and 2
# updates every 10 steps.
SCHEDULE = ['--env.dummy.length', '40', '--run.train_every', '10', '--run.train_steps', '2',
            '--run.pretrain', '3', '--run.train_fill', '60', '--precision', 'float32']


@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_version_trains_on_its_schedule_and_resumes(tmp_path, version):
  from dreamer_tf import run
  task = 'dummy_disc' if version.endswith('atari') else 'dummy_cont'
  args = ['--task', task] + SCHEDULE
  config = cfg.load(VERSIONS[version], args + ['--run.steps', '90'])
  out = run.run(config, tmp_path, log=lambda *a: None)
  # Prefill to 60 steps, then 3 updates at step 60 and 2 at steps 70 and 80 (90 ends the run).
  assert out['step'] == 90 and out['updates'] == 3 + 2 + 2
  messages = []
  more = cfg.load(VERSIONS[version], args + ['--run.steps', '120'])
  out = run.run(more, tmp_path, log=messages.append)
  assert any('Resumed' in m and 'step 90' in m for m in messages)
  assert out['step'] == 120 and out['updates'] == 7 + 2 + 2 + 2  # steps 90, 100, 110


def test_a_budget_inside_the_prefill_ends_it_and_more_steps_continue(tmp_path):
  """--steps below run.train_fill stops at the budget (no update); the same run with a larger
  budget continues the prefill and trains on the uninterrupted schedule."""
  from dreamer_tf import run
  args = ['--task', 'dummy_cont'] + SCHEDULE
  messages = []
  out = run.run(cfg.load(VERSIONS['dreamerv1'], args + ['--run.steps', '30']), tmp_path,
                log=messages.append)
  assert out['step'] == 30 and out['updates'] == 0
  assert any('ended inside the prefill: no update ran' in m for m in messages)
  out = run.run(cfg.load(VERSIONS['dreamerv1'], args + ['--run.steps', '90']), tmp_path,
                log=lambda *a: None)
  assert out['step'] == 90 and out['updates'] == 3 + 2 + 2  # as one run to 90 (test above)
