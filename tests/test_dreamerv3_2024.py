"""The `dreamerv3_2024` preset: DreamerV3 as the official code runs it today (the rewrite,
danijar/dreamerv3@e3f0224), built from the shared parts plus what the rewrite changes."""
import numpy as np
import pytest
import tensorflow as tf

from dreamer_tf import agent as agent_lib
from dreamer_tf import behavior, config, nets, optim, rssm, simple
from dreamer_tf import distributions as dists

PONG = {'image': ((64, 64, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
        'is_last': ((), bool), 'is_terminal': ((), bool)}
PRESETS = ['dreamerv3_2024', 'dreamerv3_2024_atari100k']
# The rewrite's own counts (its optimizer banner, "Optimizer opt has N params", Pong under
# atari100k: 64x64x3 images, 6 actions; scripts/official/param_counts_2024.py).
# Our modules: encoder = enc, rssm = dyn, decoder = dec, reward = rew, cont = con, actor = pol,
# critic = val.
REWRITE = {
    'size1m': {'encoder': 14304, 'rssm': 376704, 'decoder': 80595, 'reward': 57663,
               'cont': 41153, 'actor': 49926, 'critic': 66111, 'total': 686456},
    'size12m': {'encoder': 220416, 'rssm': 5979648, 'decoder': 1272003, 'reward': 721407,
                'cont': 656129, 'actor': 789510, 'critic': 853503, 'total': 10492616},
    'size25m': {'encoder': 493824, 'rssm': 13442304, 'decoder': 2857635, 'reward': 1573503,
                'cont': 1475713, 'actor': 1774086, 'critic': 1869951, 'total': 23487016},
}


def make_agent(size='size1m', obs=PONG, action=(6,), discrete=True, **overrides):
  c = config.load(PRESETS + [f'dreamerv3_2024_{size}'],
                  {'precision': 'float32', 'batch_size': 2, 'batch_length': 8, **overrides})
  return agent_lib.Agent(obs, {'shape': action, 'discrete': discrete}, c)


@pytest.mark.parametrize('size', sorted(REWRITE))
def test_parameter_counts_equal_the_rewrites_per_module(size):
  assert make_agent(size).param_counts() == REWRITE[size]


def test_preset_values_come_from_the_rewrites_config():
  c = config.load(PRESETS + ['dreamerv3_2024_size200m'])
  assert (c.rssm.deter, c.rssm.units, c.rssm.classes, c.rssm.blocks) == (8192, 1024, 64, 8)
  assert (c.rssm.img_layers, c.rssm.dyn_layers, c.rssm.norm) == (2, 1, 'rms')
  assert (c.model_opt.opt, c.model_opt.lr, c.model_opt.eps, c.model_opt.agc,
          c.model_opt.warmup) == ('laprop', 4e-5, 1e-20, 0.3, 1000)
  scales = c.loss_scales
  assert (scales.dyn, scales.rep, scales.repval) == (1.0, 0.1, 0.3)
  assert (c.run.train_ratio, c.envs.amount, c.run.steps) == (256.0, 1, 110000)
  assert c.env.atari.resize == 'pillow' and c.env.atari.size == [64, 64]
  assert (c.slow_critic_fraction, c.retnorm.decay, c.precision) == (0.02, 0.99, 'bfloat16')
  assert config.load(['dreamerv3_2024']).env.atari.size == [96, 96]  # env.atari (200M)
  proprio = config.load(['dreamerv3_2024', 'dreamerv3_2024_dmc_proprio'])
  assert (proprio.rssm.deter, proprio.critic.units, proprio.run.train_ratio) == (512, 64, 1024.0)


def test_2023_preset_keeps_its_values():
  c = config.load(['dreamerv3'])
  assert (c.rssm.gru, c.rssm.bias, c.rssm.outinit, c.rssm.img_layers) == (
      'norm', 'auto', 'uniform_avg', 1)
  assert (c.encoder_typ, c.decoder_typ, c.update_order, c.model_opt.opt) == (
      'multi', 'multi', 'model_first', 'adam')


def test_rms_norm_by_hand():
  norm = nets.Norm('rms')
  x = tf.constant([[3.0, 4.0]])
  out = norm(x).numpy()
  np.testing.assert_allclose(out, [[3.0, 4.0]] / np.sqrt(12.5 + 1e-4), rtol=1e-6)
  assert [v.name.split('/')[-1] for v in norm.weights] == ['scale:0']
  with pytest.raises(ValueError, match="Unknown norm 'batch'. Valid: none, layer, rms"):
    nets.Norm('batch')


def test_block_linear_is_a_block_diagonal_dense_layer():
  layer = nets.BlockLinear(6, 2)
  x = tf.random.normal([5, 4], seed=1)
  out = layer(x).numpy()
  kernel = layer.kernel.numpy()  # (2, 2, 3)
  dense = np.zeros((4, 6), np.float32)
  dense[:2, :3], dense[2:, 3:] = kernel[0], kernel[1]
  np.testing.assert_allclose(out, x.numpy() @ dense + layer.bias.numpy(), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='units 7 are not a multiple of blocks 2'):
    nets.BlockLinear(7, 2)


def test_block_core_follows_the_rewrites_equations():
  """h_t from numpy written from dreamerv3@e3f0224 rssm.RSSM._core, with the layer's weights."""
  core = rssm.BlockCore(8, 3, 2, 1, 'silu', 'rms', 'normal', 'in', True)
  deter, stoch, action = (tf.random.normal([4, n], seed=i) for i, n in enumerate((8, 6, 2)))
  out = core(deter, stoch, action).numpy()
  silu = lambda x: x / (1 + np.exp(-x))
  rms = lambda x, s: x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-4) * s
  sigmoid = lambda x: 1 / (1 + np.exp(-x))
  parts = []
  for layer, v in zip(core.dynin, (deter, stoch, action)):
    y = v.numpy() @ layer.dense.kernel.numpy() + layer.dense.bias.numpy()
    parts.append(silu(rms(y, layer.norm.scale.numpy())))
  x = np.concatenate(parts, -1)                            # (4, 9)
  h = deter.numpy()
  x = np.concatenate([h.reshape(4, 2, 4), np.repeat(x[:, None], 2, 1)], -1)  # (4, 2, 13)
  block = lambda x, layer: np.einsum('nki,kio->nko', x, layer.kernel.numpy()).reshape(
      len(x), -1) + layer.bias.numpy()
  x = silu(rms(block(x, core.hidden[0]), core.norms[0].scale.numpy()))
  gates = block(x.reshape(4, 2, 4), core.gates).reshape(4, 2, 12)
  reset, cand, update = (g.reshape(4, 8) for g in np.split(gates, 3, -1))
  reset, update = sigmoid(reset), sigmoid(update - 1)
  expected = update * np.tanh(reset * cand) + (1 - update) * h
  np.testing.assert_allclose(out, expected, rtol=2e-5, atol=2e-6)


def test_symexp_twohot_bins_prediction_and_target():
  bins = dists.symexp_bins(255)
  assert bins.shape == (255,) and bins[127] == 0.0
  np.testing.assert_array_equal(bins, -bins[::-1])
  np.testing.assert_allclose(bins[-1], np.expm1(20.0), rtol=1e-6)
  head = dists.SymexpTwoHot(tf.zeros([3, 255]))
  assert np.all(head.mean().numpy() == 0.0)   # the symmetric sum of outs.TwoHot.pred
  # A target between bins 128 and 129 splits its weight by distance, in raw space (no symlog).
  lo, hi = bins[128], bins[129]
  y = lo + 0.25 * (hi - lo)
  target = head.target(tf.constant([y])).numpy()[0]
  np.testing.assert_allclose(target[[128, 129]], [0.75, 0.25], rtol=1e-5)
  assert target.sum() == pytest.approx(1.0)
  np.testing.assert_allclose(head.log_prob(tf.constant([y, y, y])).numpy(), -np.log(255),
                             rtol=1e-6)


def test_laprop_by_hand():
  """Two steps of clip_by_agc -> scale_by_rms -> scale_by_momentum -> warmup lr, by hand."""
  var = tf.Variable([3.0, 4.0])                 # |w| = 5
  opt = optim.make([var], 'laprop', lr=0.1, eps=1e-20, agc=0.3, warmup=2)
  g1 = np.array([6.0, 8.0])                     # |g| = 10 > 0.3 * 5: scaled to norm 1.5
  opt.apply([tf.constant(g1, tf.float32)])
  np.testing.assert_allclose(var.numpy(), [3.0, 4.0])   # lr = 0.1 * 0 / 2 at the first update
  g = g1 * 1.5 / 10
  v = 0.001 * g ** 2
  m = 0.1 * g / np.sqrt(v / 0.001)
  w = np.array([3.0, 4.0])
  g2 = np.array([0.1, -0.2])                    # below the AGC bound: unchanged
  v = 0.999 * v + 0.001 * g2 ** 2
  m = 0.9 * m + 0.1 * g2 / np.sqrt(v / (1 - 0.999 ** 2))
  opt.apply([tf.constant(g2, tf.float32)])
  np.testing.assert_allclose(var.numpy(), w - 0.1 * 0.5 * m / (1 - 0.9 ** 2), rtol=1e-6)
  np.testing.assert_allclose(opt.v[0].numpy(), v, rtol=1e-6)
  with pytest.raises(ValueError, match='agc and warmup are laprop settings'):
    optim.make([var], 'adam', lr=0.1, eps=1e-8, agc=0.3)
  with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
    optim.make([var], 'sgd', lr=0.1, eps=1e-8)


def test_replay_return_by_hand():
  """R_t = r_{t+1} + g_{t+1} ((1 - c_{t+1}) boot_{t+1} + c_{t+1} R_{t+1}), R_{T-1} = boot_{T-1}
  with g = 0.9 (1 - terminal), c = 0.5 (1 - last)."""
  reward = tf.constant([[0.0, 1.0, 2.0, 3.0]])
  boot = tf.constant([[10.0, 20.0, 30.0, 40.0]])
  last = tf.constant([[False, False, True, False]])
  term = tf.constant([[False, False, False, True]])
  ret = behavior.replay_return(last, term, reward, boot, 0.9, 0.5).numpy()[0]
  r2 = 3.0 + 0.0                                   # terminal at t=3: nothing after r_3
  r1 = 2.0 + 0.9 * (1.0 * 30.0)                    # last at t=2: c_2 = 0, bootstrap only
  r0 = 1.0 + 0.9 * (0.5 * 20.0 + 0.5 * r1)
  np.testing.assert_allclose(ret, [r0, r1, r2], rtol=1e-6)


def test_simple_encoder_decoder_shapes_and_variants():
  shapes = {'image': (64, 64, 3), 'vector': (5,)}
  kw = dict(cnn_keys='.*', mlp_keys='.*', depth=2, mults=[2, 3, 4, 4], layers=2, units=8,
            act='silu', norm='rms', winit='normal', fan='in', kernel=5, outer=False)
  obs = {'image': tf.random.uniform([2, 3, 64, 64, 3]), 'vector': tf.ones([2, 3, 5])}
  state = {'deter': tf.zeros([2, 3, 16]), 'stoch': tf.zeros([2, 3, 4, 4])}
  for strided in (False, True):
    enc = simple.SimpleEncoder(shapes, symlog=True, strided=strided, **kw)
    assert enc(obs).shape == (2, 3, 8 + 4 * 4 * 8)   # vector MLP, then 4x4x8 image maps
    dec = simple.SimpleDecoder(shapes, outscale=1.0, bspace=8, strided=strided, symlog=True,
                               **kw)
    out = dec(state)
    assert out['image'].mode().shape == (2, 3, 64, 64, 3)
    assert out['vector'].log_prob(tf.ones([2, 3, 5])).shape == (2, 3)
    image = out['image'].mode().numpy()
    assert np.all((image > 0) & (image < 1))           # sigmoid outputs
  with pytest.raises(ValueError, match='Image size 40 does not reduce to 3..16 pixels'):
    simple.SimpleEncoder({'image': (40, 40, 3)}, symlog=True, strided=False, **kw)


def test_slow_critic_mixes_from_the_first_update():
  agent = make_agent()
  ac = agent.ac
  critic = [v.numpy() for v in ac.critic.weights]
  assert all(np.array_equal(a, b.numpy()) for a, b in zip(critic, ac.slow_critic.weights))
  for v in ac.critic.weights:
    v.assign_add(tf.ones_like(v))
  ac.update_slow()   # SlowModel.update: mix = rate 0.02 at count 0 (no first-update copy)
  for a, b in zip(critic, ac.slow_critic.weights):
    np.testing.assert_allclose(b.numpy(), a + 0.02, rtol=1e-5, atol=1e-6)


def _batch(agent, B=2, seed=0):
  """A random replay batch for `agent` (B, batch_length + replay_context)."""
  rng = np.random.default_rng(seed)
  T = agent.config.batch_length + agent.context
  batch = {'image': rng.integers(0, 255, (B, T, 64, 64, 3)).astype(np.uint8),
           'reward': rng.normal(size=(B, T)).astype(np.float32),
           'action': np.eye(6, dtype=np.float32)[rng.integers(0, 6, (B, T))]}
  if agent.context:
    deter, (stoch, classes) = agent.data_space['ctx_deter'][0][0], agent.data_space[
        'ctx_stoch'][0]
    batch['ctx_deter'] = np.tanh(rng.normal(size=(B, T, deter))).astype(np.float16)
    batch['ctx_stoch'] = np.eye(classes, dtype=np.uint8)[rng.integers(0, classes,
                                                                      (B, T, stoch))]
  for key, (shape, dtype) in agent.data_space.items():
    batch.setdefault(key, np.zeros((B, T, *shape), dtype))
  batch['is_first'][:, 0] = True
  return batch


def test_one_loss_update_falls_and_trains_every_module_with_one_optimiser():
  agent = make_agent(**{'model_opt.warmup': 0})
  assert not hasattr(agent, 'actor_opt')
  trained = {id(v) for v in agent.opt.variables_}
  for module in (*agent.wm.modules, agent.ac.actor, agent.ac.critic):
    assert all(id(v) in trained for v in module.trainable_variables)
  assert not any(id(v) in trained for v in agent.ac.slow_critic.weights)
  batch = _batch(agent)
  losses = [agent.train(batch)['loss'] for _ in range(15)]
  assert all(np.isfinite(losses)) and losses[-1] < losses[0]
  assert int(agent.opt.step) == 15 and int(agent.ac.slow_updates) == 15


def test_gradient_paths_of_the_rewrites_losses():
  """repval reaches the world model (repval_grad True); the actor and imagined-critic losses
  do not (imagination is not differentiated); the policy gets only the actor loss."""
  agent = make_agent()
  ac, wm = agent.ac, agent.wm
  out = ac.critic.head.out.kernel  # zero-initialised (outscale 0): no input gradient yet
  out.assign(tf.random.normal(out.shape, stddev=0.3, seed=3))
  batch, _ = agent._split_context({k: tf.constant(v) for k, v in _batch(agent).items()})
  data = wm.preprocess(batch)
  seed = tf.constant([1, 2])
  enc = wm.encoder.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    _, post, _ = wm.loss(data, seed)
    with tape.stop_recording():   # as Agent._one_loss_step
      start = {k: tf.reshape(tf.stop_gradient(v), [-1, *v.shape[2:]]) for k, v in post.items()}
      traj = ac.imagine(wm, start, seed)
    actor_loss, targets, _ = ac.actor_loss(traj)
    critic_loss, _ = ac.critic_loss(traj, targets)
    repval, _ = ac.replay_value_loss(post, data, targets['ret'])
  norm = lambda loss, vs: tf.linalg.global_norm(
      [tf.zeros_like(v) if g is None else g for g, v in zip(tape.gradient(loss, vs), vs)])
  assert float(norm(repval, enc)) > 0
  assert float(norm(repval, ac.critic.trainable_variables)) > 0
  assert float(norm(actor_loss, enc)) == 0 and float(norm(critic_loss, enc)) == 0
  assert float(norm(actor_loss, ac.actor.trainable_variables)) > 0
  assert float(norm(critic_loss, ac.actor.trainable_variables)) == 0


def test_replay_context_starts_from_the_stored_latent_and_returns_the_new_ones():
  """replay_context 1: the window's first step only supplies the stored latent and action the
  posterior scan starts from (the rewrite's _apply_replay_context); a reset at the next step
  makes them irrelevant; the update returns the latents of the 8 trained steps."""
  agent = make_agent(compile='eager')
  assert agent.context == 1 and agent.data_space['ctx_deter'] == ((512,), np.float16)
  batch = _batch(agent)
  seed = tf.constant([3, 4])
  def dyn(b):
    data, context = _split(agent, b)
    return float(agent.wm.loss(data, seed, context)[2]['dyn_loss'])
  other = dict(batch, ctx_deter=-batch['ctx_deter'])
  assert dyn(batch) != dyn(other)
  batch['is_first'][:, 1] = other['is_first'][:, 1] = True
  assert dyn(batch) == dyn(other)
  metrics, latents = agent.train(batch, with_context=True)
  assert np.isfinite(metrics['loss']) and not any(k.startswith('context') for k in metrics)
  assert latents['ctx_deter'].shape == (2, 8, 512) and latents['ctx_deter'].dtype == np.float16
  stoch = latents['ctx_stoch']
  assert stoch.shape == (2, 8, 32, 4) and stoch.dtype == np.uint8
  np.testing.assert_array_equal(stoch.sum(-1), 1)   # one-hot samples


def _split(agent, batch):
  data, context = agent._split_context({k: tf.constant(v) for k, v in batch.items()
                                        if k in agent.data_space})
  return agent.wm.preprocess(data), context


def test_continuous_actions_and_vector_observations():
  obs = {**PONG, 'vector': ((5,), np.float32)}
  agent = make_agent(obs=obs, action=(3,), discrete=False, **{'model_opt.warmup': 0})
  batch = _batch(agent)
  batch['vector'] = np.ones((2, 9, 5), np.float32)
  batch['action'] = np.tanh(np.random.default_rng(1).normal(size=(2, 9, 3))).astype(np.float32)
  metrics = agent.train(batch)
  assert np.isfinite(metrics['loss']) and 'vector_loss' in metrics
  state = agent.initial_state(2)
  step = {k: v[:, 0] for k, v in batch.items() if k in obs}
  action, _ = agent.policy(step, state)
  assert action.shape == (2, 3) and np.all(np.isfinite(action))  # Normal(tanh(mean), std)


def test_whole_loop_trains_resumes_and_scores(tmp_path):
  """run.run with the preset (debug widths) on the dummy task, then resumed to more steps."""
  from dreamer_tf import run
  args = ['--task', 'dummy_disc', '--env.dummy.length', '40', '--precision', 'float32',
          '--simple_encoder.depth', '2', '--simple_decoder.depth', '2', '--run.train_ratio', '64',
          '--batch_size', '2']
  presets = ['dreamerv3_2024', 'debug']
  out = run.run(config.load(presets, args + ['--run.steps', '50']), tmp_path, log=lambda *a: None)
  assert out['step'] == 50 and out['updates'] > 0
  messages = []
  more = run.run(config.load(presets, args + ['--run.steps', '64']), tmp_path,
                 log=messages.append)
  assert any('Resumed' in m and 'step 50' in m for m in messages)
  assert more['step'] == 64 and more['updates'] > out['updates']
  assert more['episodes'] and all(np.isfinite(e['score']) for e in more['episodes'])
