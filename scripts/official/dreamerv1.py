"""Records two training steps and five policy steps of the official DreamerV1 (TF2) agent.

Official code: https://github.com/danijar/dreamer at commit
56d4d444dfd0582b0e79dab80aebbea74c0ce40d, run under today's TF stack in its own virtualenv:
`tensorflow==2.21.*`, `tensorflow-probability==0.25.*`, `tf-keras==2.21.*`, `numpy`, with
`TF_USE_LEGACY_KERAS=1`, on CPU, float32, one thread, `TF_ENABLE_ONEDNN_OPTS=0`,
`tf.keras.utils.set_random_seed(0)` and op determinism.

The agent is built the way `dreamer.py` builds it: `dreamer.define_config()` plus a few size
overrides (`OVERRIDES` below), then `dreamer.Dreamer(config, datadir, actspace, writer)`.
`Dreamer.__init__` runs one real training step while building (its variables, Keras layers and
Adam slots are created lazily by that call). That build call IS recorded as `step1`: the initial
parameters are captured inside it, right before the first optimiser applies (all three forward
passes are done then, nothing has been updated yet), and the Adam slots start at zero. `step2`
is the next official `Dreamer.train(data)` call. The whole official code runs eagerly
(`tf.config.run_functions_eagerly(True)`) so that the recording hooks act at every call.

Fixture `tests/official/fixtures/dreamerv1_cont.npz`: the default `tanh_normal` actor, action
shape (3,), observation `image` (64, 64, 3) only (V1 has no vector encoder), `pcont: False`
(the official default, kept: no continue head).

Shims (import-level, nothing numeric):
  1. stub `gym` module (imported by `tools.py`/`wrappers.py`, used only by env code);
  2. stub `PIL` / `PIL.Image` modules (imported by `wrappers.py`, env code only);
  3. `tensorflow.keras.mixed_precision.experimental`: a stand-in module with `global_policy`,
     `set_policy`, `Policy`, and `LossScaleOptimizer(opt, 'dynamic')` mapped to today's
     `tf.keras.mixed_precision.LossScaleOptimizer(opt, dynamic=True)` (initial scale 2**15);
  4. `tf.distribute.Strategy.experimental_run_v2` aliased to `tf.distribute.Strategy.run`;
  plus `TF_USE_LEGACY_KERAS=1` in the environment.

Hooks (recording only; the official maths around them runs unmodified):
  - `tfd.MultivariateNormalDiag.sample` (which `tools.py` itself replaces by
    `tf.random.normal(sample_shape + event_shape, mean, std)`) is replaced by the same formula,
    `eps * stddev() + mean()`, with `eps` of shape sample_shape + event_shape = (stoch,) drawn by
    the recorder: one noise vector per call, shared by every batch row, exactly as the official
    patch does.
  - `tfd.Normal._sample_n` (TFP: `samplers.normal([n] + batch_shape) * scale + loc`) is replaced
    by the same formula with recorded `eps`. It serves the actor's tanh-Normal (`.sample()` and
    `SampleDist.entropy`'s 100 samples) and the exploration noise `tfd.Normal(action, 0.3)`.
  - Python wrappers that only push a context label (to name the draw site) and keep what passes
    through: `RSSM.obs_step`, `RSSM.img_step`, `RSSM.observe`, `Dreamer._train`,
    `Dreamer._imagine_ahead`, `Dreamer._scalar_summaries`, `Dreamer._exploration`,
    `Dreamer.policy`, `tools.lambda_return`, `tools.Adam.__call__` (captures the initial
    parameters at the first ever call) and `LossScaleOptimizerV3.get_unscaled_gradients`
    (records the raw, unclipped gradients of the unscaled loss).
  - `dreamer.load_dataset` returns a dataset holding exactly the step-1 batch (official
    `preprocess` applied), so that the build call trains on it; the `.npz` episode pipeline is
    bypassed. Step 2 gets the batch through the official `preprocess` as well.
  - Guards count calls of `tf.random.normal/uniform/categorical/truncated_normal` and TFP's
    `samplers.normal/uniform/categorical`; the script fails if any is called during step 2 or
    the policy (none is called during the build either: the Keras initialisers are stateless).

Sizes: `OVERRIDES` below (deter 32, stoch 8, units 16, cnn_depth 2, batch 2 x 8); everything
else is `define_config()`: horizon 15, discount 0.99, lambda 0.95, free_nats 3, kl_scale 1,
lrs 6e-4 / 8e-5 / 8e-5, grad_clip 100, pcont False, action_init_std 5,
expl additive_gaussian 0.3.

Usage: python3 scripts/official/dreamerv1.py [--source GIT_DIR] [--workdir DIR] [--out DIR]
"""
import argparse
import os
import subprocess
import sys

URL = 'https://github.com/danijar/dreamer'
COMMIT = '56d4d444dfd0582b0e79dab80aebbea74c0ce40d'
REQUIREMENTS = [
    'tensorflow==2.21.*', 'tensorflow-probability==0.25.*', 'tf-keras==2.21.*', 'numpy']

# dreamer.define_config() overrides: sizes only (and float32). cnn_depth 2, not 4: at depth 4
# the decoder's first transposed conv alone (5x5x16x128) makes the fixture 3.8 MB; depth 2 keeps
# it under 2 MB with the same structure.
OVERRIDES = dict(
    precision=32, seed=0, deter_size=32, stoch_size=8, num_units=16, cnn_depth=2,
    batch_size=2, batch_length=8)
ACT_DIM = 3
BATCH, LENGTH = 2, 8
POLICY_STEPS, POLICY_ENVS = 5, 2
NOISE_SEED = 1
MODULES = ('encode', 'dynamics', 'decode', 'reward', 'value', 'actor')


def outer(args):
  here = os.path.dirname(os.path.abspath(__file__))
  sys.path.insert(0, here)
  import common
  work = common.workdir(args.workdir)
  src = common.checkout(URL, COMMIT, os.path.join(work, 'dreamer'), args.source)
  python = common.venv(os.path.join(work, 'venv'), REQUIREMENTS)
  out = os.path.abspath(args.out or common.FIXTURES)
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_ENABLE_ONEDNN_OPTS='0',
             TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='', PYTHONHASHSEED='0',
             OMP_NUM_THREADS='1')
  subprocess.check_call([python, os.path.abspath(__file__), '--inner', src, out, here], env=env)


# ---------------------------------------------------------------------------------------------
# Inner process (inside the venv).


def install_shims():
  import types
  import tensorflow as tf
  import tensorflow.keras.mixed_precision as mp
  gym = types.ModuleType('gym')
  sys.modules['gym'] = gym
  pil = types.ModuleType('PIL')
  pil.Image = types.ModuleType('PIL.Image')
  sys.modules['PIL'] = pil
  sys.modules['PIL.Image'] = pil.Image
  exp = types.ModuleType('tensorflow.keras.mixed_precision.experimental')
  exp.global_policy = mp.global_policy
  exp.set_policy = mp.set_global_policy
  exp.Policy = mp.Policy

  def loss_scale_optimizer(opt, loss_scale):
    assert loss_scale == 'dynamic', loss_scale
    return mp.LossScaleOptimizer(opt, dynamic=True)
  exp.LossScaleOptimizer = loss_scale_optimizer
  mp.experimental = exp
  sys.modules[exp.__name__] = exp
  tf.distribute.Strategy.experimental_run_v2 = tf.distribute.Strategy.run


class Recorder:
  """Generates every random draw from its own stream, names it by the call context, keeps it."""

  def __init__(self, seed):
    import numpy as np
    self.np = np
    self.rng = np.random.RandomState(seed)
    self.ctx = []
    self.draws = {}
    self.order = []
    self.kept = {}
    self.grads = {}
    self.unhooked = {}
    self.agent = None
    self.init = None

  def context(self, label):
    rec = self

    class Ctx:
      def __enter__(self):
        rec.ctx.append(label)

      def __exit__(self, *exc):
        rec.ctx.pop()
    return Ctx()

  def start(self):
    self.draws, self.order, self.kept, self.grads, self.unhooked = {}, [], {}, {}, {}

  def normal(self, site, shape):
    eps = self.rng.standard_normal(tuple(int(s) for s in shape)).astype(self.np.float32)
    self.draws.setdefault(site, []).append(eps)
    if not self.order or self.order[-1][0] != site:
      self.order.append([site, 0])
    self.order[-1][1] += 1
    return eps

  def keep(self, name, value):
    self.kept.setdefault(name, []).append(value)

  def mvn_site(self):
    inner = self.ctx[-1]
    if inner == 'obs':
      return 'post'
    if inner == 'img' and 'obs' in self.ctx:
      return 'prior_obs'
    if inner == 'img' and 'imagine' in self.ctx:
      return 'imag_prior'
    raise RuntimeError(f'unexpected MVN sample in context {self.ctx}')

  def normal_site(self):
    if 'expl' in self.ctx:
      return 'expl'
    if 'summaries' in self.ctx:
      return 'action_ent'
    if 'imagine' in self.ctx:
      return 'imag_action'
    if 'policy' in self.ctx:
      return 'action'
    raise RuntimeError(f'unexpected Normal sample in context {self.ctx}')


def inner(src, out, here):
  import numpy as np
  import tensorflow as tf
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  install_shims()
  sys.path.insert(0, src)
  sys.path.insert(0, here)
  import common
  import tensorflow_probability as tfp
  from tensorflow_probability import distributions as tfd
  from tensorflow_probability.python.internal import samplers
  import dreamer
  import models
  import tools
  from tf_keras.src.mixed_precision import loss_scale_optimizer as lso

  tf.config.run_functions_eagerly(True)
  tf.keras.utils.set_random_seed(0)
  tf.config.experimental.enable_op_determinism()
  rec = Recorder(NOISE_SEED)

  # --- Sampler hooks -------------------------------------------------------------------------
  def mnd_sample(self, sample_shape=(), seed=None, name='sample'):
    # tools._mnd_sample: tf.random.normal(sample_shape + event_shape, mean(), stddev()),
    # i.e. rnd * stddev + mean with rnd of shape sample_shape + event_shape.
    shape = tuple(sample_shape) + tuple(self.event_shape)
    eps = rec.normal(rec.mvn_site(), shape)
    return tf.constant(eps, self.dtype) * self.stddev() + self.mean()
  assert tfd.MultivariateNormalDiag.sample is tools._mnd_sample
  tfd.MultivariateNormalDiag.sample = mnd_sample

  def normal_sample_n(self, n, seed=None):
    loc = tf.convert_to_tensor(self.loc)
    scale = tf.convert_to_tensor(self.scale)
    batch = [int(d) for d in tf.broadcast_static_shape(loc.shape, scale.shape)]
    site = rec.normal_site()
    eps = rec.normal(site, [n] + batch)
    if site == 'action' and 'policy' in rec.ctx:
      rec.keep('policy_dist_mean', loc.numpy())
      rec.keep('policy_dist_std', scale.numpy())
    return tf.constant(eps, self.dtype) * scale + loc
  tfd.Normal._sample_n = normal_sample_n

  def guard(module, name):
    orig = getattr(module, name)

    def wrapper(*args, **kwargs):
      key = f'{module.__name__}.{name}@{"/".join(rec.ctx) or "-"}'
      rec.unhooked[key] = rec.unhooked.get(key, 0) + 1
      return orig(*args, **kwargs)
    setattr(module, name, wrapper)
  for name in ('normal', 'uniform', 'categorical', 'truncated_normal'):
    guard(tf.random, name)
  for name in ('normal', 'uniform', 'categorical'):
    guard(samplers, name)

  # --- Context / capture wrappers ----------------------------------------------------------
  def wrap(cls, name, label, after=None, pyfunc=False):
    orig = cls.__dict__[name]
    fn = orig.python_function if pyfunc else orig

    def wrapper(self, *args, **kwargs):
      with rec.context(label):
        result = fn(self, *args, **kwargs)
      if after:
        after(self, args, result)
      return result
    setattr(cls, name, wrapper)

  def after_observe(self, args, result):
    if rec.ctx and rec.ctx[-1] == 'train':
      post, prior = result
      for k in post:
        rec.keep(f'post/{k}', post[k].numpy())
        rec.keep(f'prior/{k}', prior[k].numpy())

  def after_policy(self, args, result):
    action, (latent, _) = result
    for k, v in latent.items():
      rec.keep(f'latent/{k}', v.numpy())
    rec.keep('action', action.numpy())

  def after_exploration(self, args, result):
    rec.keep('action_sample', args[0].numpy())

  wrap(models.RSSM, 'obs_step', 'obs', pyfunc=True)
  wrap(models.RSSM, 'img_step', 'img', pyfunc=True)
  wrap(models.RSSM, 'observe', 'observe', after_observe, pyfunc=True)
  wrap(dreamer.Dreamer, '_imagine_ahead', 'imagine',
       lambda s, a, r: rec.keep('imag_feat', r.numpy()))
  wrap(dreamer.Dreamer, '_exploration', 'expl', after_exploration)
  wrap(dreamer.Dreamer, 'policy', 'policy', after_policy, pyfunc=True)

  orig_train = dreamer.Dreamer._train

  def train_wrapper(self, data, log_images):
    rec.agent = self
    with rec.context('train'):
      return orig_train(self, data, log_images)
  dreamer.Dreamer._train = train_wrapper

  orig_summaries = dreamer.Dreamer._scalar_summaries

  def summaries_wrapper(self, data, feat, prior_dist, post_dist, likes, div, model_loss,
                        value_loss, actor_loss, model_norm, value_norm, actor_norm):
    for k, v in likes.items():
      rec.keep(f'likes/{k}', v.numpy())
    rec.keep('div', div.numpy())
    rec.keep('prior_ent_elem', prior_dist.entropy().numpy())
    rec.keep('post_ent_elem', post_dist.entropy().numpy())
    with rec.context('summaries'):
      return orig_summaries(self, data, feat, prior_dist, post_dist, likes, div, model_loss,
                            value_loss, actor_loss, model_norm, value_norm, actor_norm)
  dreamer.Dreamer._scalar_summaries = summaries_wrapper

  orig_lambda = tools.lambda_return

  def lambda_wrapper(reward, value, pcont, bootstrap, lambda_, axis):
    returns = orig_lambda(reward, value, pcont, bootstrap, lambda_, axis)
    for k, v in dict(reward=reward, value=value, pcont=pcont, bootstrap=bootstrap,
                     returns=returns).items():
      rec.keep(f'lambda/{k}', v.numpy())
    return returns
  tools.lambda_return = lambda_wrapper

  orig_adam = tools.Adam.__call__

  def adam_wrapper(self, tape, loss):
    if rec.init is None:
      rec.init = snapshot_params(rec.agent)
    rec.keep(f'loss/{self._name}', loss.numpy())
    with rec.context(f'opt:{self._name}'):
      norm = orig_adam(self, tape, loss)
    rec.keep(f'norm/{self._name}', norm.numpy())
    return norm
  tools.Adam.__call__ = adam_wrapper

  orig_unscale = lso.LossScaleOptimizerV3.get_unscaled_gradients

  def unscale_wrapper(self, grads):
    grads = orig_unscale(self, grads)
    label = [c for c in rec.ctx if c.startswith('opt:')][-1][4:]
    rec.grads[label] = [g.numpy() for g in grads]
    return grads
  lso.LossScaleOptimizerV3.get_unscaled_gradients = unscale_wrapper

  # --- Names ------------------------------------------------------------------------------
  def named_variables(agent):
    """(official name, variable, Keras name) for every parameter, in module order."""
    result = []
    for mod in MODULES:
      module = getattr(agent, '_' + mod)
      layers = dict(module._modules)
      if mod == 'dynamics':
        layers['cell'] = module._cell
      for key, layer in layers.items():
        for var in layer.weights:
          short = var.name.split('/')[-1].split(':')[0]
          result.append((f'{mod}/{key}/{short}', var, var.name))
    return result

  def snapshot_params(agent):
    return {name: var.numpy() for name, var, _ in named_variables(agent)}

  # --- Batches ----------------------------------------------------------------------------
  def make_batch(seed):
    rs = np.random.RandomState(seed)
    image = common.blocky(rs.randint(0, 256, (BATCH, LENGTH, 8, 8, 3)).astype(np.uint8))
    action = rs.uniform(-1, 1, (BATCH, LENGTH, ACT_DIM)).astype(np.float32)
    action[:, 0] = 0.0  # wrappers.Collect stores a zero action with the first observation.
    reward = rs.normal(size=(BATCH, LENGTH)).astype(np.float32)
    reward[:, 0] = 0.0  # wrappers.Collect stores reward 0 with the first observation.
    discount = np.ones((BATCH, LENGTH), np.float32)
    discount[0, 6] = 0.0
    return dict(image=image, action=action, reward=reward, discount=discount)

  def extra_keys(batch):
    # Not consumed by the official code (see meta batch_keys); stored for the replay side.
    is_first = np.zeros((BATCH, LENGTH), bool)
    is_first[:, 0] = True
    is_terminal = batch['discount'] == 0
    return dict(is_first=is_first, is_terminal=is_terminal, is_last=is_terminal.copy())

  batches = [make_batch(100), make_batch(101)]
  config = dreamer.define_config()
  for key, value in OVERRIDES.items():
    assert key in config, key
    config[key] = value

  def to_data(batch):
    data = {k: tf.constant(v) for k, v in batch.items()}
    return dreamer.preprocess(data, config)

  def load_dataset(directory, cfg):
    first = {k: tf.constant(v) for k, v in batches[0].items()}
    dataset = tf.data.Dataset.from_tensors(first).repeat()
    return dataset.map(lambda x: dreamer.preprocess(x, cfg))
  dreamer.load_dataset = load_dataset

  class ActSpace:
    shape = (ACT_DIM,)
    low = -np.ones(ACT_DIM, np.float32)
    high = np.ones(ACT_DIM, np.float32)

  arrays = {}
  steps_info = {}
  datadir = __import__('pathlib').Path(__import__('tempfile').mkdtemp(prefix='dreamerv1_data_'))

  def finish_step(prefix, agent):
    names = named_variables(agent)
    byid = {id(var): name for name, var, _ in names}
    for k, v in rec.draws.items():
      arrays[f'{prefix}/draws/{k}'] = np.stack(v, 0)
    for opt_name in ('model', 'actor', 'value'):
      opt = getattr(agent, f'_{opt_name}_opt')
      order = [byid[id(v)] for v in opt._variables]
      assert len(order) == len(rec.grads[opt_name])
      for name, g in zip(order, rec.grads[opt_name]):
        arrays[f'{prefix}/grads/{name}'] = g
      inner_opt = opt._opt.inner_optimizer
      for name, var in zip(order, opt._variables):
        idx = inner_opt._index_dict[inner_opt._var_key(var)]
        arrays[f'{prefix}/opt/{opt_name}/{name}/m'] = inner_opt._momentums[idx].numpy()
        arrays[f'{prefix}/opt/{opt_name}/{name}/v'] = inner_opt._velocities[idx].numpy()
      arrays[f'{prefix}/opt/{opt_name}/count'] = np.array(inner_opt.iterations.numpy())
      arrays[f'{prefix}/opt/{opt_name}/loss_scale'] = np.array(opt._opt.loss_scale.numpy())
      arrays[f'{prefix}/opt/{opt_name}/loss_scale_counter'] = np.array(
          opt._opt.dynamic_counter.numpy())
      steps_info.setdefault('opt_order', {})[opt_name] = order
    for name, var, _ in names:
      arrays[f'{prefix}/params/{name}'] = var.numpy()
    for name, metric in agent._metrics.items():
      if name == 'expl_amount':
        continue
      arrays[f'{prefix}/metrics/{name}'] = np.asarray(metric.result().numpy(), np.float32)
    for k, v in rec.kept.items():
      assert len(v) == 1, k
      arrays[f'{prefix}/internal/{k}'] = v[0]
    steps_info.setdefault('draw_order', {})[prefix] = rec.order
    steps_info.setdefault('unhooked', {})[prefix] = dict(rec.unhooked)

  # --- Step 1: the build call inside Dreamer.__init__ ------------------------------------
  rec.start()
  agent = dreamer.Dreamer(config, datadir, ActSpace(), None)
  assert rec.init is not None
  init_names = named_variables(agent)
  for name, value in rec.init.items():
    arrays[f'init/params/{name}'] = value
  for k, v in dict(batches[0], **extra_keys(batches[0])).items():
    arrays[f'step1/batch/{k}'] = v
  finish_step('step1', agent)
  unhooked_build = dict(rec.unhooked)

  # --- Step 2: the next official train call ----------------------------------------------
  for metric in agent._metrics.values():
    metric.reset_states()
  rec.start()
  with agent._strategy.scope():
    agent.train(to_data(batches[1]))
  for k, v in dict(batches[1], **extra_keys(batches[1])).items():
    arrays[f'step2/batch/{k}'] = v
  finish_step('step2', agent)
  assert not rec.unhooked, rec.unhooked

  # --- Policy: five steps from the initial state, training mode --------------------------
  rs = np.random.RandomState(200)
  pimage = common.blocky(
      rs.randint(0, 256, (POLICY_STEPS, POLICY_ENVS, 8, 8, 3)).astype(np.uint8))
  preward = rs.normal(size=(POLICY_STEPS, POLICY_ENVS)).astype(np.float32)
  preward[0] = 0.0
  rec.start()
  state = None
  for t in range(POLICY_STEPS):
    obs = dict(image=pimage[t], reward=preward[t])
    _, state = agent.policy(obs, state, True)
  assert not rec.unhooked, rec.unhooked
  arrays['policy/obs/image'] = pimage
  arrays['policy/obs/reward'] = preward
  arrays['policy/is_first'] = np.array([[True] * POLICY_ENVS] + [[False] * POLICY_ENVS] * 4)
  for k, v in rec.draws.items():
    arrays[f'policy/draws/{k}'] = np.stack(v, 0)
  for k in ('deter', 'stoch', 'mean', 'std'):
    arrays[f'policy/latent/{k}'] = np.stack(rec.kept[f'latent/{k}'], 0)
  arrays['policy/dist/mean'] = np.stack(rec.kept['policy_dist_mean'], 0)
  arrays['policy/dist/std'] = np.stack(rec.kept['policy_dist_std'], 0)
  arrays['policy/action_sample'] = np.stack(rec.kept['action_sample'], 0)
  arrays['policy/action'] = np.stack(rec.kept['action'], 0)
  policy_order = rec.order

  # Squeeze the n=1 sample axis of tanh-Normal / exploration draws: eps (rows, act).
  for key in list(arrays):
    if key.endswith(('/draws/imag_action', '/draws/action', '/draws/expl')):
      assert arrays[key].shape[1] == 1, (key, arrays[key].shape)
      arrays[key] = arrays[key][:, 0]

  # --- Meta -------------------------------------------------------------------------------
  resolved = {k: (str(v) if not isinstance(v, (int, float, str, bool)) else v)
              for k, v in config.items()}
  params = {name: dict(shape=list(var.shape), keras_name=keras)
            for name, var, keras in init_names}
  meta = dict(
      repo=URL, commit=COMMIT, name='dreamerv1_cont', config=resolved, overrides=OVERRIDES,
      obs_space=dict(image=dict(shape=[64, 64, 3], dtype='uint8')),
      act_space=dict(shape=[ACT_DIM], low=-1.0, high=1.0, discrete=False),
      versions=dict(tensorflow=tf.__version__, tensorflow_probability=tfp.__version__,
                    tf_keras=__import__('tf_keras').__version__, numpy=np.__version__,
                    python=sys.version.split()[0]),
      params=params, opt_order=steps_info['opt_order'],
      draw_order=dict(steps_info['draw_order'], policy=policy_order),
      unhooked_random_calls_during_build=unhooked_build,
      action_timing=(
          'batch action[:, t] is the action taken BEFORE observation t (wrappers.Collect); '
          'it is fed as prev_action into the step that produces the latent of obs t; '
          'action[:, 0] = 0 and reward[:, 0] = 0 as the official episodes store them.'),
      batch_keys=dict(
          consumed=['image', 'action', 'reward'],
          unused=['discount (only read when pcont=True)', 'is_first', 'is_terminal',
                  'is_last'],
          note=('V1 has no is_first/is_terminal: every sequence starts from the zero state '
                '(and its action[:, 0], zero in real data) at t=0 and never resets inside; '
                'one episode per file, so a sequence never crosses episodes. is_first is '
                'therefore True only at t=0; is_terminal/is_last = (discount == 0) are given '
                'for the replay side only.')),
      init_opt=('Adam slots do not exist before step 1 (created at its first apply): m = v = '
                '0, iterations 0, loss scale 32768 (2**15), dynamic counter 0.'),
      notes=NOTES,
      draw_sites=DRAW_SITES)
  name = os.path.join(out, 'dreamerv1_cont.npz')
  common.save(name, arrays, meta)
  os.rmdir(datadir)
  total = sum(np.asarray(v).nbytes for v in arrays.values())
  print(f'wrote {name}: {len(arrays)} arrays, {total} raw bytes, {os.path.getsize(name)} bytes')


DRAW_SITES = {
    'step{k}/draws/prior_obs': (
        '(T=8, stoch=8): per time step of RSSM.observe, the noise of the prior sample drawn '
        'inside obs_step -> img_step, first draw of that step. Drawn but unused: the prior '
        'stoch is discarded, only the prior mean/std enter the KL. Shared by all batch rows.'),
    'step{k}/draws/post': (
        '(T=8, stoch=8): per time step of RSSM.observe, the posterior noise; stoch = mean + '
        'std * eps with the same eps for every batch row. Drawn after prior_obs of that step.'),
    'step{k}/draws/imag_action': (
        '(H=15, B*T=16, act=3): per imagination step, eps of the actor tanh-Normal; action = '
        'tanh(mean + std * eps), drawn before that step\'s imag_prior.'),
    'step{k}/draws/imag_prior': (
        '(H=15, stoch=8): per imagination step, the img_step prior noise, shared by all 16 '
        'start rows.'),
    'step{k}/draws/action_ent': (
        '(1, 100, B=2, T=8, act=3): SampleDist.entropy\'s 100 tanh-Normal samples of the '
        'actor at the posterior features (metric action_ent only, after all losses).'),
    'policy/draws/prior_obs': '(5, stoch=8): prior noise inside obs_step, per policy step.',
    'policy/draws/post': '(5, stoch=8): posterior noise per policy step, shared by both envs.',
    'policy/draws/action': '(5, envs=2, act=3): actor tanh-Normal eps per policy step.',
    'policy/draws/expl': (
        '(5, envs=2, act=3): exploration eps; action = clip(action_sample + 0.3 * eps, -1, 1).'),
}

NOTES = [
    'Step 1 is the build call inside Dreamer.__init__ (dreamer.py _build_model: '
    'self.train(next(self._dataset))). init/params are captured at the first tools.Adam '
    'call inside it, after the model, actor and value forward passes and before any apply; '
    'Keras layers are built lazily by that same forward pass.',
    'All three losses are computed on the parameters before the step; then model, actor, '
    'value optimisers apply in that order. Gradients come from the tapes recorded on the old '
    'parameters, so the later applies do not see the earlier updates.',
    'tools.Adam: loss * loss_scale (dynamic, starts 2**15, doubles after 2000 finite steps, '
    'a non-finite step is skipped and halves it), gradient / loss_scale (exact: powers of 2), '
    'norm = tf.linalg.global_norm(raw grads), grads = tf.clip_by_global_norm(grads, 100, '
    'norm), then tf_keras Adam (new optimizer: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); '
    'var -= m * lr sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + 1e-7)), b1 0.9, b2 0.999, '
    'weight decay 0. Recorded grads are the raw (unclipped) ones.',
    'RSSM MVN sampling (tools._mnd_sample): one standard-normal vector of shape (stoch,) per '
    'call, broadcast over the batch: all rows get the same eps.',
    'RSSM.obs_step: prior = img_step(prev_state, prev_action) (samples a prior stoch that is '
    'never used afterwards; its mean/std are the KL prior), x = [prior.deter, embed] -> '
    'Dense(hidden, elu) obs1 -> Dense(2 stoch) obs2 -> mean, softplus(std) + 0.1. img_step: '
    '[prev.stoch, prev_action] -> Dense(hidden, elu) img1 -> GRUCell(deter) -> Dense(hidden, '
    'elu) img2 -> Dense(2 stoch) img3. hidden = deter_size. GRUCell is tf_keras GRUCell '
    '(reset_after=True, gates z, r, h; bias (2, 3*deter); tanh / sigmoid). Initial state zeros.',
    'Imagination (_imagine_ahead, pcont False): starts from all B*T posterior states '
    '(flattened batch-major: row index b*T + t), policy acts on stop_gradient(feat), 15 '
    'img_steps; imag_feat stacks only the 15 states AFTER each step (the start state is not '
    'included). reward = reward head mode, value = value head mode on imag_feat; '
    'lambda_return(reward[:-1], value[:-1], pcont[:-1], bootstrap=value[-1], 0.95); '
    'discount weights = cumprod([1, pcont[:-2]]) = 0.99^i over 14 returns, stop-gradient. '
    'actor_loss = -mean(discount * returns); value_loss = -mean(discount * '
    'Normal(value_head(imag_feat)[:-1], 1).log_prob(stop_grad(returns))).',
    'Actor gradient flows through the imagined dynamics (reparameterised actor and prior '
    'samples, deter) and the reward/value heads; the actor input itself is stop-gradient.',
    'Model loss: kl_scale * max(mean_{B,T} KL(post || prior), free_nats=3) - mean log p(image) '
    '- mean log p(reward); image Normal(mean, 1) summed over 64x64x3; images preprocessed to '
    'x / 255 - 0.5; no pcont (official default pcont False).',
    'SampleDist.entropy (metric action_ent) draws 100 samples and returns -mean log_prob; '
    'it enters no loss. Policy in training mode uses .sample() only (no mean/mode draws).',
    'Actor: 4 Dense(16, elu) layers h0..h3, hout -> 2*act; mean = 5 tanh(x / 5), std = '
    'softplus(x + log(e^5 - 1)) + 1e-4; Independent(Transformed(Normal, TanhBijector)).',
    'Metrics are the official tf.metrics.Mean results of that single step (reset before '
    'step 2). expl_amount (a policy metric) is left out.',
    'The whole official code ran eagerly (tf.config.run_functions_eagerly(True)) inside '
    'MirroredStrategy (one CPU replica), so num_replicas_in_sync = 1.',
    'In the official default (precision 16) the stored episodes and the network run in '
    'float16; this fixture is float32 (precision 32).',
    'action_ent: SampleDist.entropy = -mean_100 Independent.log_prob(y) of its own 100 '
    'samples y = tanh(x). The TanhBijector cache is NOT hit (Independent hands back a new '
    'tensor), so log_prob inverts y: x\' = atanh(clip(y, +-0.99999997)) in float32 (the '
    'bound rounds to 0.99999994), log_prob = Normal.log_prob(x\') - 2 (log 2 - x\' - '
    'softplus(-2 x\')), summed over the 3 action dims. With init_std 5 about 9% of the '
    'samples saturate, so this differs from the pre-tanh path (-10.416 vs -11.132 at step 1) '
    'and is sensitive to float32 round-off (~1e-4 relative).',
    'free_nats 3 with stoch 8: mean KL is below 3 at both steps, so div = 3 and the KL term '
    'has zero gradient: the model gradients of dynamics/img2 and dynamics/img3 (prior head) '
    'are exactly zero in this fixture.',
    'GRUCell (tf_keras, reset_after=True): [xz, xr, xh] = x @ kernel + bias[0]; '
    '[hz, hr, hh] = h @ recurrent_kernel + bias[1]; z = sigmoid(xz + hz); r = sigmoid(xr + '
    'hr); n = tanh(xh + r * hh); h\' = z * h + (1 - z) * n.',
    'Layouts: NHWC; Conv2D kernels (kh, kw, in, out), Conv2DTranspose kernels (kh, kw, out, '
    'in); all convs stride 2, padding valid; encoder kernels 4, output flattened row-major '
    '(2, 2, 8 depth) -> 32 depth; decoder Dense(32 depth) -> (1, 1, 32 depth) -> ConvT 5, 5, '
    '6, 6 (relu except the last) -> 64x64x3 mean of Normal(mean, 1). feat = [stoch, deter].',
    'Policy (Dreamer.policy, training=True): state None -> zero latent and zero action; '
    'obs_step(latent, prev_action, embed) (draws prior_obs then post), actor(feat).sample() '
    '(action), then _exploration: clip(Normal(action, 0.3).sample(), -1, 1) (expl); the '
    'state carries the explored action. Dreamer.__call__ (not used here) multiplies latent '
    'and action by (1 - reset) for envs that reset.',
]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--source', default=None, help='local git mirror of danijar/dreamer')
  parser.add_argument('--workdir', default=None)
  parser.add_argument('--out', default=None)
  parser.add_argument('--inner', nargs=3, default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.inner:
    inner(*args.inner)
  else:
    outer(args)


if __name__ == '__main__':
  main()
