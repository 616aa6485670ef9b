"""Records reference fixtures from the official DreamerV2 code (TF2) for differential tests.

Official code: https://github.com/danijar/dreamerv2 at commit
07d906e9c4322c6fc2cd6ed23e247ccd6b7c8c41 (07d906e), run unmodified apart from the hooks and shims
listed below, on CPU in float32 (`precision: 32`), eagerly (the official `jit: False` switch,
i.e. `tf.config.run_functions_eagerly(True)`, so that the Python recording hooks run on every call).

Pins (venv made by common.venv): tensorflow==2.21.0, tensorflow-probability==0.25.0,
tf-keras==2.21.0, numpy==2.4.6, ruamel.yaml==0.19.1, cloudpickle==3.1.3 (imported by
common/envs.py). Environment: TF_USE_LEGACY_KERAS=1, TF_ENABLE_ONEDNN_OPTS=0,
CUDA_VISIBLE_DEVICES='', one intra-op and one inter-op thread, `tf.keras.utils.set_random_seed(0)`
and `tf.config.experimental.enable_op_determinism()`.

Fixtures (tests/official/fixtures/):
  dreamerv2_disc.npz: `defaults` + `atari` block (one-hot actor, actor_grad reinforce, discount
    head, KL balance 0.8, loss_scales kl 0.1 / discount 5, tanh reward clipping), 6 actions.
  dreamerv2_cont.npz: `defaults` + `dmc_vision` block (trunc_normal actor, actor_grad dynamics,
    no discount head, kl.free 1.0, identity rewards), action shape (3,).
  Both: obs `image` (64, 64, 3) uint8 through the CNN encoder/decoder and `vector` (5,) float32
  through the MLP encoder/decoder (`encoder/decoder.cnn_keys: image`, `mlp_keys: vector`), sizes
  shrunk (rssm deter 32, hidden 16, stoch 8, discrete 8; encoder/decoder mlp_layers [16, 16],
  cnn_depth 2; reward/discount heads, actor and critic 2 layers of 16 units; dataset batch 2,
  length 8). cnn_depth is 2, not 4: the decoder's first transposed conv maps 32 * depth channels
  to 8 * depth with a 5x5 kernel (200 * depth^2 weights), which at depth 4 is half of all
  parameters and makes each fixture ~4 MB; at depth 2 they are ~2.1 MB. Everything else
  (horizon 15, discount, lambda, KL settings, slow target every 100 updates with fraction 1,
  learning rates, eps, clip, weight decay, actor entropy, reward
  clipping) is the block's value. The official flag mechanism applies the overrides
  (`common.Flags(config).parse([...])` after `Config(defaults).update(block)` like train.py).

What it records (names '/'-joined; parameter names are the official module paths, i.e. the keys
of `common.Module.get` joined with '/', plus `rssm/_cell/_layer|_norm` for the GRU cell):
  init/params/<name>, init/slow/<critic name>, init/rewnorm/mag, init/slow_updates
  step{1,2}/batch/<key>, step{1,2}/draws/<site>, step{1,2}/dists/imag_action/<param>,
  step{1,2}/metrics/<name>, step{1,2}/grads/<model|actor|critic>/<name> (raw, before clipping),
  step{1,2}/params/<name>, step{1,2}/slow/<critic name>, step{1,2}/opt/<opt>/<name>/<m|v>,
  step{1,2}/opt/<opt>/count, step{1,2}/rewnorm/mag, step{1,2}/slow_updates,
  step{1,2}/carry/<deter|stoch|logit> (the state CarryOverState keeps),
  policy/obs/<key>, policy/draws/<site>, policy/latent/<key>, policy/dist/<param>, policy/action.
The update is called as the official train.py does: `common.CarryOverState(agent.train)` (so the
first call gets state None, the second the last posterior of the first; both batches start with
is_first, which zeroes the carried state).

Shims (import level, before importing the official package):
  1. a stub `gym` module (common/envs.py imports gym; only env classes use it);
  2. `tensorflow.keras.mixed_precision.experimental` -> `tensorflow.keras.mixed_precision`
     (nets.py imports the removed module; it only calls `global_policy()`);
  3. `tf.optimizers.Adam` -> `tf.keras.optimizers.legacy.Adam` (the kernel the code was written
     for);
  4. configs.yaml is read with ruamel `YAML(typ='safe').load` (train.py's `yaml.safe_load` is gone
     in ruamel.yaml 0.18+); train.py itself is not run, its build/update calls are repeated here.
Hooks (recording/replay; the official maths downstream runs unmodified):
  a. `tfd.OneHotCategorical._sample_n` (the library sampler behind `common.OneHotDist.sample`'s
     `super().sample`): draws the category with this script's numpy RNG (inverse CDF of a uniform
     on the cumulative float32 softmax probabilities), records the one-hot value and returns it;
     OneHotDist.sample then casts it and adds its straight-through term `probs - sg(probs)`.
  b. `tfd.TruncatedNormal._sample_n` (behind `common.TruncNormalDist.sample`'s `super().sample`):
     replaced by the inverse-CDF form with a recorded uniform u in (0, 1):
       a = (low - loc) / scale, b = (high - loc) / scale, Phi(x) = 0.5 * erfc(-x / sqrt(2)),
       z = sg(ndtri(Phi(a) + u * (Phi(b) - Phi(a)))),   x = loc + scale * z   (float32 TF ops)
     which is the same distribution as the library's sampler and has the same gradient as the
     library: TF's registered gradient of StatelessParameterizedTruncatedNormal (the op behind
     tfd.TruncatedNormal._sample_n) is d x/d mean = 1, d x/d stddev = z (the standardised
     sample), i.e. the plain location-scale path that ignores that the bounds [-1, 1] are fixed.
     (The true implicit gradient -dF/dtheta / p(x), which autodiff of the un-stopped inverse CDF
     would give, differs: e.g. loc 0.3, scale 1.1, x 0.688: 0.186 / -0.010 instead of 1 / 0.353.)
     TruncNormalDist.sample then applies its official clip to [low + 1e-6, high - 1e-6] with a
     straight-through gradient.
  The draw site is read from the Python call stack (innermost of nets.py `img_step`/`obs_step`,
  agent.py `imagine`/`policy`); the official functions are not wrapped for this.
  c. `common.Optimizer.__call__` is wrapped to hand the official code a proxy of its GradientTape
     whose `gradient()` records the raw gradients (before the official global-norm clip, the
     weight decay and Adam) and the variable order, then returns them unchanged.
  d. `tf.variable_creator_scope` snapshots every variable's value when it is created: the official
     agent creates its variables lazily inside the first update, so this is how `init/...` holds
     the parameters the first update starts from (including the slow target critic's own init).
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  scripts/official/common.py; this name keeps it after the
               # official `common` package takes the name in sys.modules (inner)

URL = 'https://github.com/danijar/dreamerv2'
COMMIT = '07d906e9c4322c6fc2cd6ed23e247ccd6b7c8c41'
REQUIREMENTS = [
    'tensorflow==2.21.0', 'tensorflow-probability==0.25.0', 'tf-keras==2.21.0',
    'numpy==2.4.6', 'ruamel.yaml==0.19.1', 'cloudpickle==3.1.3']
SEED = 0

SMALL = [
    '--precision', '32', '--jit', 'False',
    '--dataset.batch', '2', '--dataset.length', '8',
    '--rssm.deter', '32', '--rssm.hidden', '16', '--rssm.stoch', '8', '--rssm.discrete', '8',
    '--encoder.cnn_keys', 'image', '--encoder.mlp_keys', 'vector',
    '--decoder.cnn_keys', 'image', '--decoder.mlp_keys', 'vector',
    '--encoder.cnn_depth', '2', '--decoder.cnn_depth', '2',
    '--encoder.mlp_layers', '16', '16', '--decoder.mlp_layers', '16', '16',
    '--reward_head.layers', '2', '--reward_head.units', '16',
    '--discount_head.layers', '2', '--discount_head.units', '16',
    '--actor.layers', '2', '--actor.units', '16',
    '--critic.layers', '2', '--critic.units', '16',
]
VARIANTS = {
    'disc': dict(block='atari', actions=6, discrete=True, batch_seed=101),
    'cont': dict(block='dmc_vision', actions=3, discrete=False, batch_seed=202),
}
IMAGE, VECTOR = (64, 64, 3), (5,)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--source', default=None, help='local git mirror of the official repo')
  parser.add_argument('--workdir', default=None)
  parser.add_argument('--out', default=common.FIXTURES)
  parser.add_argument('--inner', action='store_true')
  parser.add_argument('--variant', default=None)
  parser.add_argument('--src', default=None)
  args = parser.parse_args()
  if args.inner:
    return inner(args)
  work = common.workdir(args.workdir)
  src = common.checkout(URL, COMMIT, os.path.join(work, 'dreamerv2'), args.source,
                        exclude=('scores',))
  python = common.venv(os.path.join(work, 'venv'), REQUIREMENTS)
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_ENABLE_ONEDNN_OPTS='0',
             CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='3', PYTHONHASHSEED='0',
             OMP_NUM_THREADS='1')
  for variant in VARIANTS:
    subprocess.check_call([
        python, os.path.abspath(__file__), '--inner', '--variant', variant, '--src', src,
        '--out', os.path.abspath(args.out)], env=env)


# ----------------------------------------------------------------------------- inner process

def make_batch(rng, discrete, actions, B=2, T=8):
  batch = {
      'image': common.blocky(rng.randint(0, 256, (B, T, 8, 8, 3)).astype(np.uint8)),
      'vector': rng.normal(size=(B, T) + VECTOR).astype(np.float32),
      'reward': rng.normal(size=(B, T)).astype(np.float32),
      'is_first': np.zeros((B, T), bool),
      'is_last': np.zeros((B, T), bool),
      'is_terminal': np.zeros((B, T), bool),
  }
  batch['is_first'][:, 0] = True
  batch['is_first'][1, 5] = True
  batch['is_terminal'][0, 6] = True
  batch['is_last'][0, 6] = True
  if discrete:
    batch['action'] = np.eye(actions, dtype=np.float32)[rng.randint(0, actions, (B, T))]
  else:
    batch['action'] = rng.uniform(-1, 1, (B, T, actions)).astype(np.float32)
  return batch


class Space:
  """What the official agent reads of a gym space: shape, dtype (and n, low, high)."""

  def __init__(self, shape, dtype, low=None, high=None, n=None):
    self.shape, self.dtype, self.low, self.high = tuple(shape), dtype, low, high
    if n is not None:
      self.n = n

  def describe(self):
    out = dict(shape=list(self.shape), dtype=np.dtype(self.dtype).name)
    if hasattr(self, 'n'):
      out['n'] = self.n
    if self.low is not None:
      out.update(low=float(self.low), high=float(self.high))
    return out


class Recorder:
  """Collects draws into the current bucket and hands out deterministic noise."""

  def __init__(self, seed):
    self.rng = np.random.RandomState(seed)
    self.bucket = None
    self.draws = {}
    self.dists = {}
    self.grads = {}

  def start(self, bucket):
    self.bucket = bucket
    self.draws = {}
    self.dists = {}
    self.grads = {}

  def add(self, store, site, value):
    assert self.bucket is not None, f'draw outside a recorded call: {site}'
    store.setdefault(site, []).append(np.asarray(value))


def site_of_draw():
  """The draw site from the call stack: innermost of img_step/obs_step/imagine/policy."""
  frames = []
  frame = sys._getframe(2)
  while frame is not None:
    frames.append((os.path.basename(frame.f_code.co_filename), frame.f_code.co_name))
    frame = frame.f_back
  keys = [('nets.py', 'img_step'), ('nets.py', 'obs_step'), ('agent.py', 'imagine'),
          ('agent.py', 'policy')]
  found = [f for f in frames if f in keys]
  assert found, frames
  inner = found[0]
  if inner == ('nets.py', 'img_step'):
    if ('nets.py', 'obs_step') in found:
      return 'prior_obs'
    if ('agent.py', 'imagine') in found:
      return 'imag_prior'
    raise AssertionError(frames)
  if inner == ('nets.py', 'obs_step'):
    return 'post'
  if inner == ('agent.py', 'imagine'):
    return 'imag_action'
  if inner == ('agent.py', 'policy'):
    return 'action'
  raise AssertionError(frames)


def inner(args):
  global np, tf
  import types
  import numpy as np
  import tensorflow as tf
  import importlib.metadata as md
  from ruamel.yaml import YAML
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)

  # Shim 1: stub gym.
  sys.modules['gym'] = types.ModuleType('gym')
  # Shim 2: the removed mixed_precision.experimental module.
  from tensorflow.keras import mixed_precision as mp
  mp.experimental = mp
  sys.modules['tensorflow.keras.mixed_precision.experimental'] = mp
  # Shim 3: legacy Keras Adam.
  tf.optimizers.Adam = tf.keras.optimizers.legacy.Adam

  here = os.path.dirname(os.path.abspath(__file__))
  sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != here]
  sys.modules.pop('common', None)
  pkg = os.path.join(args.src, 'dreamerv2')
  sys.path.insert(0, pkg)
  sys.path.insert(1, args.src)
  import common as ocommon
  import agent as oagent
  from tensorflow_probability import distributions as tfd

  variant = VARIANTS[args.variant]
  configs = YAML(typ='safe').load(open(os.path.join(pkg, 'configs.yaml')).read())
  config = ocommon.Config(configs['defaults'])
  config = config.update(configs[variant['block']])
  config = ocommon.Flags(config).parse(list(SMALL))
  tf.config.run_functions_eagerly(not config.jit)
  assert config.precision == 32
  tf.keras.utils.set_random_seed(SEED)
  tf.config.experimental.enable_op_determinism()

  rec = Recorder(SEED + 1)

  # Hook a: one-hot categorical sampler.
  def onehot_sample_n(self, n, seed=None):
    n = int(n)
    assert n == 1, n
    probs = tf.nn.softmax(tf.cast(self.logits_parameter(), tf.float32)).numpy()
    cdf = np.cumsum(probs.astype(np.float64), -1)
    u = rec.rng.random_sample(probs.shape[:-1])[..., None] * cdf[..., -1:]
    index = np.minimum((u >= cdf).sum(-1), probs.shape[-1] - 1)
    onehot = np.eye(probs.shape[-1], dtype=np.float32)[index]
    site = site_of_draw()
    rec.add(rec.draws, site, onehot)
    if site in ('imag_action', 'action'):
      rec.add(rec.dists, site + '/logits', self.logits_parameter().numpy())
    return tf.constant(onehot[None], self.dtype)
  tfd.OneHotCategorical._sample_n = onehot_sample_n

  # Hook b: truncated normal sampler as inverse CDF of a recorded uniform.
  def truncnormal_sample_n(self, n, seed=None):
    n = int(n)
    assert n == 1, n
    loc, scale = tf.convert_to_tensor(self.loc), tf.convert_to_tensor(self.scale)
    low = tf.cast(self.low, loc.dtype)
    high = tf.cast(self.high, loc.dtype)
    shape = tf.broadcast_static_shape(loc.shape, scale.shape)
    while True:
      u = rec.rng.random_sample(tuple(shape)).astype(np.float32)
      if (u > 0).all() and (u < 1).all():
        break
    site = site_of_draw()
    rec.add(rec.draws, site, u)
    rec.add(rec.dists, site + '/mean', tf.broadcast_to(loc, shape).numpy())
    rec.add(rec.dists, site + '/std', tf.broadcast_to(scale, shape).numpy())
    # The standardised sample z is a constant for autodiff: TF's registered gradient of the
    # library sampler (StatelessParameterizedTruncatedNormal) is d/dmean = 1, d/dstddev = z.
    phi = lambda x: 0.5 * tf.math.erfc(-x / np.sqrt(2.0).astype(np.float32))
    sg = tf.stop_gradient
    cdf_a, cdf_b = phi((low - sg(loc)) / sg(scale)), phi((high - sg(loc)) / sg(scale))
    z = tf.math.ndtri(cdf_a + tf.constant(u) * (cdf_b - cdf_a))
    x = loc + scale * z
    return x[None]
  tfd.TruncatedNormal._sample_n = truncnormal_sample_n

  # Hook c: raw gradients through a tape proxy.
  class RecordingTape:
    def __init__(self, tape, name):
      self._tape, self._name = tape, name

    def __enter__(self):
      self._tape.__enter__()
      return self

    def __exit__(self, *exc):
      return self._tape.__exit__(*exc)

    def gradient(self, target, sources, *a, **k):
      grads = self._tape.gradient(target, sources, *a, **k)
      rec.grads[self._name] = (list(sources), list(grads))
      return grads

  orig_call = ocommon.Optimizer.__call__
  def opt_call(self, tape, loss, modules):
    return orig_call(self, RecordingTape(tape, self._name), loss, modules)
  ocommon.Optimizer.__call__ = opt_call

  # Hook d: initial values of lazily created variables.
  created = {}
  def creator(next_creator, **kwargs):
    var = next_creator(**kwargs)
    created[var.ref()] = var.numpy().copy()
    return var

  # Spaces, in the official env order (the encoder takes its batch dims from the first key).
  obs_space = {
      'image': Space(IMAGE, np.uint8, 0, 255), 'vector': Space(VECTOR, np.float32, -np.inf, np.inf),
      'reward': Space((), np.float32), 'is_first': Space((), bool),
      'is_last': Space((), bool), 'is_terminal': Space((), bool)}
  A = variant['actions']
  if variant['discrete']:
    act_space = Space((A,), np.float32, 0, 1, n=A)
  else:
    act_space = Space((A,), np.float32, -1, 1)

  data_rng = np.random.RandomState(variant['batch_seed'])
  batches = [make_batch(data_rng, variant['discrete'], A) for _ in range(2)]
  pol_obs = {
      'image': common.blocky(data_rng.randint(0, 256, (5, 2, 8, 8, 3)).astype(np.uint8)),
      'vector': data_rng.normal(size=(5, 2) + VECTOR).astype(np.float32),
      'reward': data_rng.normal(size=(5, 2)).astype(np.float32),
      'is_first': np.zeros((5, 2), bool), 'is_last': np.zeros((5, 2), bool),
      'is_terminal': np.zeros((5, 2), bool)}
  pol_obs['is_first'][0] = True

  arrays = {}
  with tf.variable_creator_scope(creator):
    step = ocommon.Counter(0)
    agnt = oagent.Agent(config, obs_space, {'action': act_space}, step)
    train_agent = ocommon.CarryOverState(agnt.train)
    ac = agnt._task_behavior
    wm = agnt.wm
    opts = {'model': wm.model_opt, 'actor': ac.actor_opt, 'critic': ac.critic_opt}

    for k, batch in enumerate(batches, 1):
      rec.start(f'step{k}')
      tensors = {key: tf.constant(value) for key, value in batch.items()}
      metrics = train_agent(tensors)
      if k == 1:
        names, slow = named_variables(agnt, ocommon)
        byref = {v.ref(): n for n, v in names.items()}
        for name, var in names.items():
          arrays[f'init/params/{name}'] = created[var.ref()]
        for name, var in slow.items():
          arrays[f'init/slow/{name}'] = created[var.ref()]
        arrays['init/rewnorm/mag'] = created[ac.rewnorm.mag.ref()]
        arrays['init/slow_updates'] = created[ac._updates.ref()]
        opt_order = {}
      for name, value in batch.items():
        arrays[f'step{k}/batch/{name}'] = value
      for site, values in rec.draws.items():
        arrays[f'step{k}/draws/{site}'] = np.stack(values, 0)
      for site, values in rec.dists.items():
        arrays[f'step{k}/dists/{site}'] = np.stack(values, 0)
      for name, value in metrics.items():
        value = value.numpy() if hasattr(value, 'numpy') else np.asarray(value)
        arrays[f'step{k}/metrics/{name}'] = value
      for opt_name, (sources, grads) in rec.grads.items():
        order = [byref[v.ref()] for v in sources]
        opt_order[opt_name] = order
        for name, grad in zip(order, grads):
          assert grad is not None, (opt_name, name)
          arrays[f'step{k}/grads/{opt_name}/{name}'] = grad.numpy()
      assert set(rec.grads) == set(opts), rec.grads.keys()
      for name, var in names.items():
        arrays[f'step{k}/params/{name}'] = var.numpy()
      for name, var in slow.items():
        arrays[f'step{k}/slow/{name}'] = var.numpy()
      for opt_name, opt in opts.items():
        inner_opt = opt._opt
        arrays[f'step{k}/opt/{opt_name}/count'] = inner_opt.iterations.numpy()
        for name in opt_order[opt_name]:
          for slot in ('m', 'v'):
            arrays[f'step{k}/opt/{opt_name}/{name}/{slot}'] = (
                inner_opt.get_slot(names[name], slot).numpy())
      arrays[f'step{k}/rewnorm/mag'] = ac.rewnorm.mag.numpy()
      arrays[f'step{k}/slow_updates'] = ac._updates.numpy()
      for key, value in train_agent._state.items():
        arrays[f'step{k}/carry/{key}'] = value.numpy()
      step.increment()

    # Policy, training mode, from its initial state, with the parameters after step 2.
    rec.start('policy')
    state = None
    latents, actions = {}, []
    for t in range(5):
      obs = {key: tf.constant(value[t]) for key, value in pol_obs.items()}
      outputs, state = agnt.policy(obs, state, mode='train')
      for key, value in state[0].items():
        latents.setdefault(key, []).append(value.numpy())
      actions.append(outputs['action'].numpy())
    for key, value in pol_obs.items():
      arrays[f'policy/obs/{key}'] = value
    for site, values in rec.draws.items():
      arrays[f'policy/draws/{site}'] = np.stack(values, 0)
    for site, values in rec.dists.items():
      arrays[f'policy/dist/{site.split("/")[-1]}'] = np.stack(values, 0)
    for key, values in latents.items():
      arrays[f'policy/latent/{key}'] = np.stack(values, 0)
    arrays['policy/action'] = np.stack(actions, 0)

  # Coverage: every variable of every optimiser is named, nothing else trainable exists.
  for opt_name, opt in opts.items():
    assert len(opt_order[opt_name]) == len(set(opt_order[opt_name]))
  model_vars = {v.ref() for m in [wm.encoder, wm.rssm, *wm.heads.values()] for v in m.variables}
  assert model_vars == {names[n].ref() for n in opt_order['model']}
  assert {v.ref() for v in ac.actor.variables} == {names[n].ref() for n in opt_order['actor']}
  assert {v.ref() for v in ac.critic.variables} == {names[n].ref() for n in opt_order['critic']}

  for name, value in arrays.items():
    if value.dtype == np.float64 and name.split('/')[1] != 'metrics':
      arrays[name] = value.astype(np.float32) if 'rewnorm' not in name else value

  versions = {p: md.version(p) for p in (
      'tensorflow', 'tensorflow-probability', 'tf-keras', 'numpy', 'ruamel.yaml')}
  versions['python'] = sys.version.split()[0]
  meta = dict(
      name=f'dreamerv2_{args.variant}', repo=URL, commit=COMMIT, block=variant['block'],
      config_chain=['defaults', variant['block'], 'SMALL overrides (flags)'],
      overrides=SMALL, config=dict(config), versions=versions, seed=SEED,
      obs_space={k: v.describe() for k, v in obs_space.items()},
      act_space=act_space.describe(),
      eager=True,
      call='train_agent = common.CarryOverState(agent.train); train_agent(batch) twice '
           '(state None at step 1, step-1 last posterior at step 2)',
      action_timing=(
          "batch['action'][:, t] is the action taken BEFORE obs t (the one that led into obs t; "
          'the env reset transition stores zeros). observe() feeds it to img_step together with '
          'the state of t-1 to form the prior of t; is_first[t] zeroes both the previous state '
          'and this action. policy(obs, (latent, prev_action)) likewise.'),
      resolved={'actor.dist': ac.config.actor.dist, 'actor_grad': ac.config.actor_grad},
      param_names={n: v.name for n, v in names.items()},
      slow_names={n: v.name for n, v in slow.items()},
      opt_order=opt_order,
      draw_sites=draw_sites(variant, A),
      notes=NOTES)
  out = os.path.join(args.out, f'dreamerv2_{args.variant}.npz')
  common.save(out, arrays, meta)
  print('wrote', out, len(arrays), 'arrays')


def named_variables(agnt, ocommon):
  """Official module paths -> variables (model, actor, critic) and the slow critic's."""
  import tensorflow as tf

  def walk(prefix, obj, out):
    if isinstance(obj, tf.keras.layers.Layer):
      for w in obj.weights:
        short = w.name.split('/')[-1].split(':')[0]
        assert f'{prefix}/{short}' not in out
        out[f'{prefix}/{short}'] = w
      return
    if isinstance(obj, ocommon.Module):
      for key, sub in getattr(obj, '_modules', {}).items():
        walk(f'{prefix}/{key}', sub, out)
      if getattr(obj, '_layer', None) is not None:  # NormLayer('layer')
        walk(f'{prefix}/_layer', obj._layer, out)
      return
    raise TypeError(type(obj))

  names = {}
  wm, ac = agnt.wm, agnt._task_behavior
  walk('encoder', wm.encoder, names)
  walk('rssm', wm.rssm, names)
  walk('rssm/_cell/_layer', wm.rssm._cell._layer, names)
  walk('rssm/_cell/_norm', wm.rssm._cell._norm, names)
  for key, head in wm.heads.items():
    walk(key, head, names)
  walk('actor', ac.actor, names)
  walk('critic', ac.critic, names)
  slow = {}
  walk('critic', ac._target_critic, slow)
  return names, slow


def draw_sites(variant, A):
  latent = 'one-hot sample (float32) of the 8x8 categorical latent (value before the ' \
           'straight-through term OneHotDist.sample adds)'
  action = ('one-hot action sample (float32), value before the straight-through term'
            if variant['discrete'] else
            'uniform u in (0,1) (float32); z = sg(ndtri(Phi(a) + u*(Phi(b)-Phi(a)))), '
            'a=(-1-loc)/scale, b=(1-loc)/scale, Phi(x)=0.5*erfc(-x/sqrt2); action = clipST(loc + '
            'scale * z) (gradient d/dloc = 1, d/dscale = z, as TF\'s registered gradient of the '
            'library sampler); clipST = official clip to [-1+1e-6, 1-1e-6], straight-through')
  return {
      'step/draws/prior_obs': f'(T=8, B=2, 8, 8): {latent}; the prior sample img_step draws '
                              'inside each observe step (obs_step calls img_step with '
                              'sample=True); drawn BEFORE post at each t; unused by the losses',
      'step/draws/post': f'(T=8, B=2, 8, 8): {latent}; posterior of obs_step, time-major',
      'step/draws/imag_action': f'(H=15, N=16, {A}): {action}; imagine() draws per step first '
                                'the action from the actor at feat[h] (N = B*T start states, '
                                'flattened row-major from (B, T)), then imag_prior',
      'step/draws/imag_prior': f'(H=15, N=16, 8, 8): {latent}; img_step prior of imagination',
      'step/dists/imag_action/*': 'the actor distribution parameters at each imagination draw '
                                  '(logits, or loc=mean (tanh(out)) and scale=std)',
      'order': 'step: for t in 0..7: prior_obs[t], post[t]; then for h in 0..14: '
               'imag_action[h], imag_prior[h]. policy: for t in 0..4: prior_obs[t], post[t], '
               'action[t]',
      'policy/draws/prior_obs|post': '(5, 2, 8, 8), as above, one obs_step per policy call',
      'policy/draws/action': f'(5, 2, {A}), as imag_action',
      'policy/dist/*': 'actor parameters at each policy step (logits | mean, std)',
      'ensemble_index': 'img_step also calls tf.random.uniform((), 0, ensemble=1, int32) each '
                        'time: always 0, not recorded',
  }


NOTES = [
    'Variables are created lazily inside the first update (step 1); init/* are their values at '
    'creation (variable_creator_scope), i.e. what step 1 starts from.',
    'Slow target critic: its own random init (init/slow/*, different from init/params/critic/*) '
    'is used for the targets and the reinforce baseline of update 0; update_slow_target() runs '
    'at the END of ActorCritic.train, and with _updates == 0 copies the critic after its update '
    '0 (mix 1.0); then _updates += 1. Next copies at _updates % 100 == 0 with fraction 1. So step '
    '2 uses slow == critic params after step 1 (step1/slow == step1/params/critic/*).',
    'Optimizer: grads = tape.gradient(loss); norm = global_norm(grads) (metric <opt>_grad_norm); '
    'clip_by_global_norm(grads, clip=100, norm); THEN weight decay var.assign((1 - wd) * var) on '
    'every variable of the optimiser (wd 1e-6, pattern .*), THEN legacy Keras Adam '
    '(beta1 0.9, beta2 0.999, epsilon = eps from config, applied as '
    'lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)). The gradient is taken at the pre-decay '
    'weights.',
    'The model optimiser covers encoder, rssm and all heads (decoder, reward, discount); the '
    'actor tape covers imagination + reward + target + actor loss; the critic tape only the '
    'critic loss (targets computed in the actor tape, stop-gradient).',
    'V2 patches tf.random.categorical/normal to force seed=None; under TFP 0.25 the samplers '
    'used (OneHotCategorical, TruncatedNormal) call tf.random.stateless_* ops, so the patch has '
    'no effect; here the library samplers are replaced by the recording hooks anyway.',
    'obs_step runs img_step with sample=True, so every observe step also samples the prior '
    '(prior_obs draws), unused by the losses (KL uses the prior logits).',
    'KL: balance 0.8 with free_avg: loss = 0.8*max(mean KL(sg(post)||prior), free) + '
    '0.2*max(mean KL(post||sg(prior)), free); metric model_kl = mean KL(post||prior).',
    'reward_norm momentum 1.0: StreamNorm mag stays 1 (float64), rewards divided by 1 + 1e-8.',
    'imagine(): start action is zeros_like(actor(start feat).mode()); actor input is '
    'stop_gradient(feat); discount head mean replaces all but the first step, whose discount is '
    '(1 - is_terminal) * discount from the batch (disc variant); without the discount head the '
    'discount is config.discount everywhere (cont variant). weight = cumprod of [1, disc[:-1]].',
    'Trunc-normal actor gradient (dynamics backprop through the action sample): the library '
    'op StatelessParameterizedTruncatedNormal has the registered gradient d/dmean = 1, '
    'd/dstddev = (x - mean)/stddev, NOT the true implicit-reparameterisation gradient for fixed '
    'bounds; the recorded gradients follow the library.',
    'config slow_baseline (True) is not read at this commit: the reinforce baseline always '
    'uses the slow target critic.',
    'Discount head target: data discount = discount * (1 - is_terminal) (0.999 or 0), a soft '
    'Bernoulli label (log_prob = -sigmoid cross-entropy with that label).',
    'Log-likelihood losses keep their constants: image/vector/reward/critic are Normal(mean, 1) '
    'log-probs summed over the event (image: 64*64*3, vector: 5), negated and averaged over '
    '(B, T) (image_loss ~ 11808 includes 12288 * 0.919).',
    'GRU cell: Dense(3*deter, bias) on concat([x, deter]) then LayerNormalization (Keras '
    'default epsilon 1e-3, float32), split [reset, cand, update], cand = tanh(sigmoid(reset) * '
    'cand), update = sigmoid(update - 1), out = update * cand + (1 - update) * deter.',
    'get_feat = concat([stoch flattened (64), deter (32)]). img_in input = concat([stoch flat, '
    'action]). obs_out input = concat([prior deter, embed]).',
    'tf.Variable(0, tf.int64) in ActorCritic passes tf.int64 as `trainable`: _updates is int32.',
    'The continuous actor std is 2*sigmoid((std_out + init_std)/2) + min_std with init_std 0, '
    'min_std 0.1, mean tanh(out), TruncatedNormal on [-1, 1] wrapped in Independent(.., 1).',
]


if __name__ == '__main__':
  main()
