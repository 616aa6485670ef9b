"""Agent-level checks: parameter counts against the official code, one compiled train step."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import random_batch
from dreamer_tf import agent as agent_lib
from dreamer_tf import config as cfg

# Trainable parameters of danijar/dreamerv3@8fa35f8 on Pong (6 actions, 64x64x3 images),
# measured by running the official code (shared/reference/official_configs/README.md).
OFFICIAL = {
    's': dict(encoder=690624, rssm=5778944, decoder=6985667, reward=1181439, cont=1051137,
              actor=1053702, critic=1181439, total=17922952),
    'm': dict(encoder=1552032, rssm=12337664, decoder=14140323, reward=2297215, cont=2134401,
              actor=2137606, critic=2297215, total=36896456),
    'l': dict(encoder=2757504, rssm=29123584, decoder=27930499, reward=4331007, cont=4135681,
              actor=4139526, critic=4331007, total=76748808),
    'xl': dict(encoder=6200640, rssm=87074816, decoder=69125955, reward=9708799, cont=9448449,
               actor=9453574, critic=9708799, total=200721032),
    'xs': dict(actor=329734, critic=393727, total=8262440),
}


@pytest.mark.parametrize('size', ['xs', 's', 'm', 'l', 'xl'])
def test_parameter_counts_match_official(size, image_space):
  config = cfg.load(['dreamerv3', 'atari100k', size], {'compile': 'eager'})
  agent = agent_lib.Agent(image_space, {'shape': (6,), 'discrete': True}, config)
  counts = agent.param_counts()
  print(size, counts)
  for key, value in OFFICIAL[size].items():
    assert counts[key] == value, (key, counts[key], value)
  if size == 'xs':  # world model total of the paper's XS, as sheeprl dreamer_v3_XS
    wm = sum(counts[k] for k in ('encoder', 'rssm', 'decoder', 'reward', 'cont'))
    assert wm == 7538979


def test_eighteen_actions_and_continuous_actor_counts(image_space):
  config = cfg.load(['dreamerv3', 'atari100k'], {'compile': 'eager'})
  full = agent_lib.Agent(image_space, {'shape': (18,), 'discrete': True}, config).param_counts()
  assert full['rssm'] == 5785088 and full['actor'] == 1059858 and full['total'] == 17935252
  cont = agent_lib.Agent(image_space, {'shape': (6,), 'discrete': False}, config).param_counts()
  assert cont['actor'] == 1056780 and cont['total'] == 17926030  # dmc walker_walk


@pytest.fixture(scope='module')
def debug_agent():
  space = {'image': ((16, 16, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
           'is_last': ((), bool), 'is_terminal': ((), bool)}
  config = cfg.load(['dreamerv3', 'debug'], {'compile': 'graph'})
  return agent_lib.Agent(space, {'shape': (4,), 'discrete': True}, config)


def test_train_step_compiles_once_and_losses_fall(debug_agent):
  agent = debug_agent
  batch = random_batch(agent, agent.config.batch_size, agent.config.batch_length)
  batch['image'][:] = 128  # a learnable fixed batch
  first = agent.train(batch)
  for _ in range(40):
    last = agent.train(batch)
  assert agent._train.experimental_get_tracing_count() == 1
  assert last['image_loss'] < 0.8 * first['image_loss']
  assert last['reward_loss'] < first['reward_loss']
  assert last['model_loss'] < first['model_loss']
  assert all(np.isfinite(v) for v in last.values())
  assert int(agent.model_opt.step) == 41 and int(agent.ac.slow_updates) == 41


def test_policy_carries_state_and_returns_one_hot(debug_agent):
  agent = debug_agent
  obs = {'image': np.zeros((3, 16, 16, 3), np.uint8), 'reward': np.zeros(3, np.float32),
         'is_first': np.array([True, True, True]), 'is_last': np.zeros(3, bool),
         'is_terminal': np.zeros(3, bool)}
  state = agent.initial_state(3)
  action, state = agent.policy(obs, state, 'train')
  assert action.shape == (3, 4)
  np.testing.assert_allclose(action.sum(-1), 1.0)
  assert set(np.unique(action)) <= {0.0, 1.0}
  obs['is_first'][:] = False
  action2, state2 = agent.policy(obs, state, 'eval')
  assert state2[0]['deter'].shape == (3, 32)
  assert not np.allclose(state2[0]['deter'], state[0]['deter'])


def test_actor_gradient_routes(debug_agent):
  """REINFORCE trains only the actor; the critic loss only the critic; the slow critic never."""
  agent = debug_agent
  batch = random_batch(agent, agent.config.batch_size, agent.config.batch_length)
  wm_before = [v.numpy() for v in agent.wm.trainable_variables]
  slow_before = [v.numpy() for v in agent.ac.slow_critic.weights]
  critic_before = [v.numpy() for v in agent.ac.critic.weights]
  data = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
  from dreamer_tf import world_model
  _, post, _ = agent.wm.loss(world_model.preprocess(data), tf.constant([1, 2]))
  start = {k: tf.reshape(v, [-1, *v.shape[2:]]) for k, v in post.items()}
  start['is_terminal'] = tf.zeros([start['deter'].shape[0]])
  agent._train_behavior(start, tf.constant([3, 4]))
  for a, b in zip(wm_before, agent.wm.trainable_variables):
    np.testing.assert_array_equal(a, b.numpy())  # behaviour learning leaves the world model
  fraction = agent.config.slow_critic_fraction
  for s0, c1, s1 in zip(slow_before, agent.ac.critic.weights, agent.ac.slow_critic.weights):
    np.testing.assert_allclose(s1.numpy(), fraction * c1.numpy() + (1 - fraction) * s0, rtol=1e-5,
                               atol=1e-7)
  assert any(not np.allclose(a, b.numpy()) for a, b in zip(critic_before, agent.ac.critic.weights))


def test_bad_observation_space_is_rejected():
  config = cfg.load(['dreamerv3', 'debug'])
  with pytest.raises(ValueError, match="Observation 'grid' has shape"):
    agent_lib.Agent({'grid': ((4, 4), np.float32), 'reward': ((), np.float32),
                     'is_first': ((), bool), 'is_last': ((), bool), 'is_terminal': ((), bool)},
                    {'shape': (2,), 'discrete': True}, config)
  with pytest.raises(ValueError, match='must be uint8'):
    agent_lib.Agent({'image': ((16, 16, 3), np.float32), 'reward': ((), np.float32),
                     'is_first': ((), bool), 'is_last': ((), bool), 'is_terminal': ((), bool)},
                    {'shape': (2,), 'discrete': True}, config)


@pytest.mark.parametrize('precision', ['float16', 'bfloat16'])
def test_mixed_precision_keeps_float32_islands(precision):
  space = {'image': ((16, 16, 3), np.uint8), 'reward': ((), np.float32), 'is_first': ((), bool),
           'is_last': ((), bool), 'is_terminal': ((), bool)}
  config = cfg.load(['dreamerv3', 'debug'], {'precision': precision})
  agent = agent_lib.Agent(space, {'shape': (4,), 'discrete': True}, config)
  compute = {'float16': tf.float16, 'bfloat16': tf.bfloat16}[precision]
  dense = agent.wm.rssm.img_in.dense
  assert dense.compute_dtype == compute.name and dense.kernel.dtype == tf.float32
  assert agent.wm.rssm.img_in.norm.compute_dtype == 'float32'
  batch = random_batch(agent, config.batch_size, config.batch_length)
  history = [agent.train(batch) for _ in range(12)]
  assert all(np.isfinite(v) for m in history for k, v in m.items() if k.endswith('_loss'))
  assert agent.model_opt.scaling == (precision == 'float16')
  if precision == 'float16':  # overflowing steps are skipped and halve the loss scale
    skipped = sum(m['model_opt_grad_overflow'] for m in history)
    assert int(agent.model_opt.step) == 12 - skipped > 0
    assert float(agent.model_opt.grad_scale) == 1e4 / 2 ** skipped
  else:
    assert int(agent.model_opt.step) == 12


def test_bfloat16_counts_as_native_only_with_cpu_bfloat16_instructions(tmp_path):
  from dreamer_tf import nets
  if tf.config.list_physical_devices('GPU'):
    pytest.skip('a GPU makes bfloat16 native whatever the CPU')
  flags = 'flags\t\t: fpu sse2 avx2 fma {}\n'
  for extra, native in (('avx512f avx512_bf16', True), ('amx_tile amx_bf16', True),
                        ('avx512f avx512_vnni', False), ('vaes', False)):
    (tmp_path / 'cpuinfo').write_text(flags.format(extra))
    assert nets.native_bfloat16(tmp_path / 'cpuinfo') is native
  assert nets.native_bfloat16(tmp_path / 'missing') is None


def test_dreamerv1_v2_conv_nets_shapes_and_counts():
  """'valid' kernel CNNs of DreamerV1 (depth 32) and V2 (depth 48): 64 -> 31 -> 14 -> 6 -> 2
  and 1 -> 5 -> 13 -> 30 -> 64; parameter counts by hand."""
  from dreamer_tf import nets
  for depth in (32, 48):
    enc = nets.KernelConvEncoder(depth, (4, 4, 4, 4), 'relu', 'none', 'uniform', 'avg')
    out = enc(tf.zeros([2, 64, 64, 3]))
    assert out.shape == (2, 2 * 2 * 8 * depth)
    chans = [3, depth, 2 * depth, 4 * depth, 8 * depth]
    assert sum(np.prod(v.shape) for v in enc.weights) == sum(
        16 * a * b + b for a, b in zip(chans[:-1], chans[1:]))
    dec = nets.KernelConvDecoder((64, 64, 3), depth, (5, 5, 6, 6), 'relu', 'none', 'uniform', 'avg')
    assert dec(tf.zeros([2, 230])).shape == (2, 64, 64, 3)
    outs = [32 * depth, 4 * depth, 2 * depth, depth, 3]
    convs = sum(k * k * a * b + b for k, a, b in zip((5, 5, 6, 6), outs[:-1], outs[1:]))
    assert sum(np.prod(v.shape) for v in dec.weights) == 230 * 32 * depth + 32 * depth + convs


@pytest.mark.parametrize('net', ['encoder', 'decoder'])
def test_fused_norm_and_activation_equal_autodiff(net):
  """The V3 conv stacks' norm + SiLU with its hand-written backward pass (nets.NormAct): outputs
  and the gradients of every weight (the norms' scale and offset included) equal those of
  autodiff through act(norm(conv(x))) with Keras' layer norm on the same layers, to float32
  rounding."""
  from dreamer_tf import nets
  rng = np.random.default_rng(0)
  if net == 'encoder':
    layer = nets.ConvEncoder(16, 4, 'silu', 'layer', 'normal', 'avg')
    x = tf.constant(rng.uniform(size=(3, 16, 16, 3)), tf.float32)
  else:
    layer = nets.ConvDecoder((16, 16, 3), 4, 'silu', 'layer', 'normal', 'avg')
    x = tf.constant(rng.normal(size=(3, 10)), tf.float32)
  layer(x)
  for norm in layer.norms:  # scale and offset away from their initial ones and zeros
    if norm is not None:
      for v in norm.ln.weights:
        v.assign(rng.normal(1.0, 0.5, v.shape))

  def plain(x):
    if net == 'encoder':
      h = x - 0.5
      for conv, norm in zip(layer.convs, layer.norms):
        h = tf.nn.silu(norm.ln(conv(h)))
      return tf.reshape(h, [3, -1])
    h = tf.reshape(layer.inp(x), [-1, 4, 4, layer.depth0])
    for conv, norm in zip(layer.convs, layer.norms):
      h = conv(h) if norm is None else tf.nn.silu(norm.ln(conv(h)))
    return h + 0.5

  weights = layer.trainable_weights
  assert len(weights) == len({id(w) for w in weights}) > 2 * len(layer.convs)
  results = []
  for fn in (layer, plain):
    with tf.GradientTape() as tape:
      y = fn(x)
      loss = tf.reduce_sum(tf.sin(3.0 * y))
    results.append((y, tape.gradient(loss, weights)))
  (y1, g1), (y2, g2) = results
  np.testing.assert_allclose(y1.numpy(), y2.numpy(), rtol=0, atol=1e-5)
  for w, a, b in zip(weights, g1, g2):
    assert a is not None, w.name
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0,
                               atol=2e-5 * np.abs(b.numpy()).max(), err_msg=w.name)


PEAK_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
from dreamer_tf import nets
enc = nets.ConvEncoder(64, 16, 'silu', 'layer', 'normal', 'avg')
dec = nets.ConvDecoder((64, 64, 3), 16, 'silu', 'layer', 'normal', 'avg')
x = tf.constant(np.random.default_rng(0).uniform(size=(64, 64, 64, 3)), tf.float32)
enc(x[:1]), dec(tf.zeros([1, 2048]))

def plain(x):  # autodiff through Keras' layer norm and SiLU, the same layers
  h = x - 0.5
  for conv, norm in zip(enc.convs, enc.norms):
    h = tf.nn.silu(norm.ln(conv(h)))
  h = tf.reshape(dec.inp(tf.reshape(h, [64, -1])), [-1, 4, 4, dec.depth0])
  for conv, norm in zip(dec.convs, dec.norms):
    h = conv(h) if norm is None else tf.nn.silu(norm.ln(conv(h)))
  return h + 0.5

weights = enc.trainable_weights + dec.trainable_weights
for model in (plain, lambda x: dec(enc(x))):
  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(model(x) - x))
    return tape.gradient(loss, weights)
  step(x)
  tf.config.experimental.reset_memory_stats('CPU:0')
  before = tf.config.experimental.get_memory_info('CPU:0')['current']
  step(x)
  print((tf.config.experimental.get_memory_info('CPU:0')['peak'] - before) / 64 / 32 / 32 / 16 / 4)
"""


def test_fused_norm_act_keeps_the_step_peak_memory_low():
  """The point of nets.NormAct: a compiled encoder + decoder step (64 images 64x64, depth 16)
  peaks at under 0.7 of autodiff's tensor memory (measured: 11.2-12.4 vs 18.8-20.0 first-stage
  maps of 64 x 32 x 32 x 16). Fails if the recompute in the backward pass does not wait for the
  incoming gradient (the executor then runs it right after the forward pass and keeps it until
  the backward pass gets there: 15.4 maps). Run in a subprocess: TensorFlow's CPU allocator
  statistics need TF_CPU_ALLOCATOR_USE_BFC before TensorFlow is imported."""
  import os
  import pathlib
  import subprocess
  import sys
  root = pathlib.Path(__file__).resolve().parent.parent
  env = {**os.environ, 'TF_CPU_ALLOCATOR_USE_BFC': 'true', 'TF_CPP_MIN_LOG_LEVEL': '3',
         'PYTHONPATH': str(root)}
  out = subprocess.run([sys.executable, '-c', PEAK_SCRIPT], env=env, capture_output=True,
                       text=True, timeout=300, check=True).stdout.split()
  autodiff, ours = map(float, out[-2:])
  print(f'peak in first-stage maps: autodiff {autodiff:.1f}, NormAct {ours:.1f}')
  assert 15 < autodiff < 25
  assert ours < 0.7 * autodiff


@pytest.mark.parametrize('impl', ['layer', 'rms'])
def test_fused_norm_act_backward_against_float64_autodiff(impl):
  """nets.NormAct's formula for the input, scale and offset gradients, layer and rms norm,
  against autodiff of the plain float64 expressions (jax.nn.standardize's centring; the
  rewrite's rms norm); bfloat16 inputs give bfloat16 outputs and input gradients within
  bfloat16 rounding of the same."""
  from dreamer_tf import nets
  rng = np.random.default_rng(1)
  norm = nets.Norm(impl)
  norm_act = nets.NormAct(norm, tf.nn.silu, 6, tf.float32)
  for v in norm.weights:
    v.assign(rng.normal(1.0, 0.5, v.shape))
  x = rng.normal(0.3, 2.0, (2, 3, 5, 6))
  dy = rng.normal(size=x.shape)

  def reference(x, weights):
    eps = 1e-3 if impl == 'layer' else 1e-4
    if impl == 'layer':
      x = x - tf.reduce_mean(x, -1, keepdims=True)
    y = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), -1, keepdims=True) + eps) * weights[0]
    return tf.nn.silu(y + weights[1] if impl == 'layer' else y)

  weights = norm.weights
  for dtype, rtol in ((tf.float32, 1e-5), (tf.bfloat16, 2e-2)):
    norm_act.dtype = dtype
    inputs = tf.constant(x, dtype)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(inputs)
      y = norm_act(inputs)
    assert y.dtype == dtype
    grads = tape.gradient(y, [inputs, *weights], output_gradients=tf.constant(dy, dtype))
    assert grads[0].dtype == dtype
    ref_inputs = tf.constant(tf.cast(inputs, tf.float64))
    ref_weights = [tf.constant(tf.cast(v, tf.float64)) for v in weights]
    with tf.GradientTape() as tape:
      tape.watch([ref_inputs, *ref_weights])
      ref = reference(ref_inputs, ref_weights)
    ref_grads = tape.gradient(ref, [ref_inputs, *ref_weights], output_gradients=dy)
    for ours, theirs in zip([y, *grads], [ref, *ref_grads]):
      theirs = theirs.numpy()
      np.testing.assert_allclose(tf.cast(ours, tf.float64).numpy(), theirs, rtol=0,
                                 atol=rtol * np.abs(theirs).max())


def test_fused_norm_act_runs_the_activation_in_float32_under_bfloat16():
  """Under bfloat16, nets.NormAct applies the SiLU (forward) and its gradient's sigmoid
  (backward) to the float32 norm output and casts after: Eigen's bfloat16 sigmoid is 2.4-3.1x
  slower than float32's (README, Performance). Every sigmoid in the compiled forward and
  backward pass is float32, while the stage's output, the next conv and the input gradient
  stay bfloat16."""
  from dreamer_tf import nets
  conv = nets.keras.layers.Conv2D(4, 4, 2, 'same', dtype='mixed_bfloat16',
                                  kernel_initializer=nets.keras.initializers.Ones())
  norm_act = nets.NormAct(nets.Norm('layer'), tf.nn.silu, 6, tf.bfloat16, then=conv)
  x = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 8, 6)), tf.bfloat16)

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = norm_act(x)
      loss = tf.reduce_sum(tf.cast(y, tf.float32))
    return y, tape.gradient(loss, x)

  y, g_x = step(x)
  assert y.dtype == g_x.dtype == tf.bfloat16 and y.shape == (2, 4, 4, 4)
  graphs = [step.get_concrete_function(x).graph]
  sigmoids, convs = [], []
  while graphs:  # the custom gradient's body may sit in a function of the graph's library
    graph = graphs.pop()
    graphs += [function.graph for function in graph._functions.values()]
    for op in graph.get_operations():
      if op.type in ('Sigmoid', 'SigmoidGrad', 'Swish', '_MklSwish'):
        sigmoids.append(op.get_attr('T'))
      if op.type.startswith('Conv2D'):
        convs.append(op.get_attr('T'))
  assert sigmoids and all(t == tf.float32 for t in sigmoids), sigmoids
  assert len(convs) >= 3 and all(t == tf.bfloat16 for t in convs), convs
