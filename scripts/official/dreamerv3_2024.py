"""Records reference fixtures from the official DreamerV3 rewrite (2024 code, JAX).

Official code: https://github.com/danijar/dreamerv3 at commit
e3f02248693a79dc8b0ebd62c93683888ddaccfe (e3f0224, the `dreamerv3/` + `embodied/` rewrite with
`embodied.jax`, ninjax 3 and elements), exported without `scores/` (the code never reads it).

Writes two fixtures (format: see common.py):
  tests/official/fixtures/dreamerv3_2024_disc.npz  int action `action` with 6 classes
                                                   (`policy_dist_disc: categorical`)
  tests/official/fixtures/dreamerv3_2024_cont.npz  action shape (3,) in [-1, 1]
                                                   (`policy_dist_cont: bounded_normal`)
Observations: `image` uint8 (64, 64, 3), `vector` float32 (5,), reward, is_first, is_last,
is_terminal. Each file holds the initial state of the official agent, two train steps on two fixed
batches (every random draw, every metric the train step produces, per-element losses, raw
gradients, parameters, slow value, return normaliser, optimizer state) and five policy steps of
two environments.

Config: the official mechanism (`configs.yaml` `defaults`, then flags parsed by `elements.Flags`
as `dreamerv3/main.py` does; the agent config assembled as `main.make_agent` does), no named
block, only sizes shrunk: `agent.dyn.rssm` deter 32 / hidden 16 / stoch 4 / classes 4 (blocks 8
stays); `agent.enc.simple` and `agent.dec.simple` depth 2 / units 16; rewhead, conhead, policy,
value units 16; batch_size 2, batch_length 8; plus `replay_context 0` (training starts from the
zero state the agent's `init_train` makes, not from replayed latents), `agent.opt.warmup 0`
(with the default 1000 the learning rate of the first update is exactly 0: optax
`linear_schedule(0, lr, 1000)` at count 0; with 0 it is the constant 4e-5 from the first
update), `jax.platform cpu`, `jax.compute_dtype float32` and `jax.jit False`. Everything else is
at `defaults` (imag_length 15, horizon 333, contdisc, bins 255, free_nats 1, unimix 0.01, rms
norms, LaProp (scale_by_rms, then momentum) with AGC 0.3 and eps 1e-20, lr 4e-5, perc retnorm
rate 0.01 without debias, slowvalue rate 0.02 every 1, repval loss, loss scales, ...).
jit is OFF: the rewrite runs unmodified with `jax.jit False` (`internal.setup` then sets
`jax_disable_jit` and leaves the transfer guard alone), so the whole agent runs op by op and
the Python hooks below see every draw in program order (`jax.lax.scan` bodies run as Python
loops in jit-disabled mode).

Pins (Python 3.11, CPU): jax==0.4.33 jaxlib==0.4.33 numpy==1.26.4 scipy==1.14.1
ml_dtypes==0.5.0 opt_einsum==3.4.0 optax==0.2.4 chex==0.1.87 einops==0.8.0 ninjax==3.5.1
elements==3.19.1 granular==0.20.3 portal==3.5.0 ruamel.yaml==0.18.6 cloudpickle==3.1.0
typing_extensions==4.16.0 toolz==1.2.0 absl-py==2.5.1 (the last three: dependencies of jax and
chex whose versions meta records). requirements.txt of the commit asks for jax 0.4.33,
ninjax>=3.5.1, elements>=3.19.1, granular>=0.20.3, portal>=3.5.0, numpy<2, optax, chex, einops;
the lower bounds are pinned. Single-threaded XLA
(XLA_FLAGS, read when this script starts the CPU backend, before the official
`internal.setup` rewrites the variable), fixed seeds: repeated runs are byte-identical.

Shims (configuration only, no numerics):
  * The agent config gets `jax.precompile: False` (an official `embodied.jax.agent.Options`
    field that configs.yaml does not list, so it cannot be given as a flag). With True the
    constructor replaces the train function by an ahead-of-time compiled executable, which
    ignores `jax_disable_jit` and so would run no Python hook.
  * `embodied.jax.internal._to_local` / `_to_global` return an array whose sharding is not a
    `NamedSharding` unchanged. In jit-disabled mode `jax.jit` does not apply its out_shardings,
    so the policy's carry arrives with a `SingleDeviceSharding`, which these functions cannot
    read; with one process on one device both are the identity anyway.
  * Before the policy steps, the policy parameters are set to a copy of the parameters after
    step 2 and the pending sync is dropped, as `Agent.load` does. (The official train call
    queues the PRE-step policy parameters and swaps them in only after the next policy call,
    so the five policy steps would otherwise run with two different parameter sets.)

Hooks (recording; the official maths downstream runs unmodified):
  * `embodied.jax.outs.Categorical.sample` (used by `OneHot.sample` for the RSSM latents and
    directly by the discrete policy): while recording, the draw uses a key from this script's
    numpy-seeded generator (`jax.random.PRNGKey(rng.integers(2**31))`) instead of the
    `nj.seed()` key the official code passes, then the official `jax.random.categorical`; the
    drawn index is recorded, with the logits the distribution holds (after unimix for latents).
    The official `nj.seed()` keys are still split and consumed exactly as in the official code;
    they just do not decide the draw.
  * `embodied.jax.outs.Normal.sample` (the continuous policy, inside `Agg`): while recording,
    eps ~ N(0, 1) from the numpy generator, sample = eps * stddev + mean (the official formula
    with the official `jax.random.normal` replaced); eps, mean and stddev are recorded.
    Outside recording (the init passes, which run with create=True, and the ninjax prerun passes
    of `nj.grad` / `nj.scan`, which run with ignore=True and whose outputs are discarded) both
    samplers run the official code with the official key.
  * `dreamerv3.rssm.RSSM._observe` / `RSSM.imagine` (and the policy callable that `imagine`
    receives) wrapped only to know the draw site (a stack of labels); they call the official
    methods unchanged. `_observe` also copies its output latents out in the policy phase.
  * `embodied.jax.opt.Optimizer.__init__` wrapped: after the official constructor, the
    instance's optax chain gets an `update` that records the incoming gradients (raw gradients
    of the scaled total loss, before `clip_by_agc`) and then calls the official chain.
  * `dreamerv3.agent.Agent.loss`, `dreamerv3.agent.imag_loss`, `dreamerv3.agent.repl_loss` and
    `RSSM.imagine` wrapped to copy out values that the train step drops (per-element losses,
    replay latents and tokens, imagined latents, actions, rewards, continuation probabilities,
    returns).
Initial weights: the official initialisers, except the output layers of the reward head and the
value head, which the official zero-initialises (outscale 0.0): their kernels are set to
N(0, 0.3^2) draws (numpy default_rng(7)) and their biases to -0.5 |i - 127| over the 255 bins
before step 1 (meta `perturbed`); the slow value's output layer is set to the same values as the
value head's (the official `SlowModel` starts as a copy of the value net). With zero outputs
every imagined reward, value, return and advantage of the first updates is exactly zero (the
rewrite's TwoHot.pred uses a symmetric sum) and the behaviour losses would be compared at no
magnitude at all. The bias keeps the probability mass on the bins near zero: unlike the 2023
code (symexp of the expected symlog bin), the rewrite's `symexp_twohot` averages symexp'd bins
(+-4.85e8 at the ends), so random logits alone predict ~1e5..1e7 as a sum of terms of both
signs up to ~1e7, whose float32 rounding (~1) then decides the twohot targets of predictions
that cancel to ~1e3, differently in any two implementations. With the bias the predictions are
of order 1..10, as early in training.
Recording happens only in contexts with `nj.context().create` and `.ignore` both False, i.e. in
the real train/policy computations.

Metrics: `Agent.train` (embodied.jax) returns the metrics of the PREVIOUS call (it keeps the
current ones pending); this script reads `agent.pending_mets` right after each call, so
`stepk/metrics` are the metrics of step k.

Usage: python3 scripts/official/dreamerv3_2024.py [--source GIT_DIR] [--workdir DIR] [--venv DIR]
           [--out tests/official/fixtures] [--only disc|cont]
  --source  git repository or mirror holding the commit (default: clone the official URL)
  --workdir where the exported source lives (default: $XDG_CACHE_HOME or ~/.cache, then
            dreamer_tf/official/dreamerv3_2024)
  --venv    the pinned virtualenv (default: WORKDIR/venv; made once)

Size: every parameter, gradient and optimizer slot of both steps is kept (~36k parameters in
these sizes, ~1.6 MB per file); images are random 8x8-pixel cells (`blocky`), which compress.
"""
import argparse
import json
import os
import subprocess
import sys

URL = 'https://github.com/danijar/dreamerv3'
COMMIT = 'e3f02248693a79dc8b0ebd62c93683888ddaccfe'
PINS = [
    'jax==0.4.33', 'jaxlib==0.4.33', 'numpy==1.26.4', 'scipy==1.14.1', 'ml_dtypes==0.5.0',
    'opt_einsum==3.4.0', 'optax==0.2.4', 'chex==0.1.87', 'einops==0.8.0', 'ninjax==3.5.1',
    'elements==3.19.1', 'granular==0.20.3', 'portal==3.5.0', 'ruamel.yaml==0.18.6',
    'cloudpickle==3.1.0', 'typing_extensions==4.16.0', 'toolz==1.2.0', 'absl-py==2.5.1']
VERSIONED = [p.split('==')[0] for p in PINS]
VARIANTS = ('disc', 'cont')

# Shrunk config: sizes only, plus the run settings listed in the docstring. `elements.Flags`
# syntax, parsed on top of configs.yaml `defaults` as dreamerv3/main.py does.
FLAGS = [
    '--seed', '0',
    '--jax.platform', 'cpu', '--jax.compute_dtype', 'float32', '--jax.jit', 'False',
    '--agent.dyn.rssm.deter', '32', '--agent.dyn.rssm.hidden', '16',
    '--agent.dyn.rssm.stoch', '4', '--agent.dyn.rssm.classes', '4',
    '--agent.enc.simple.depth', '2', '--agent.enc.simple.units', '16',
    '--agent.dec.simple.depth', '2', '--agent.dec.simple.units', '16',
    '--agent.rewhead.units', '16', '--agent.conhead.units', '16',
    '--agent.policy.units', '16', '--agent.value.units', '16',
    '--batch_size', '2', '--batch_length', '8', '--replay_context', '0',
    '--agent.opt.warmup', '0',
]
# Options that configs.yaml lacks (see Shims); added when the agent config is assembled.
JAX_EXTRA = {'precompile': False}
B, T = 2, 8
POLICY_STEPS = 5
ENV = {
    'XLA_FLAGS': '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1',
    'OMP_NUM_THREADS': '1', 'PYTHONHASHSEED': '0', 'JAX_PLATFORMS': 'cpu',
    'TF_CPP_MIN_LOG_LEVEL': '2'}


def default_workdir():
  cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(cache, 'dreamer_tf', 'official', 'dreamerv3_2024')


def prepare(source=None, workdir=None, venv=None):
  """Exports the official source and makes the pinned venv; returns (src, python)."""
  here = os.path.dirname(os.path.abspath(__file__))
  sys.path.insert(0, here)
  import common
  work = common.workdir(workdir or default_workdir())
  src = common.checkout(URL, COMMIT, os.path.join(work, 'dreamerv3'), source, ['scores'])
  python = common.venv(os.path.abspath(venv or os.path.join(work, 'venv')), PINS)
  return src, python


def environment():
  env = dict(os.environ)
  env.update(ENV)
  return env


def outer(args):
  src, python = prepare(args.source, args.workdir, args.venv)
  out = os.path.abspath(args.out or os.path.join(
      os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests', 'official', 'fixtures'))
  logs = os.path.dirname(src)
  failed = False
  # One variant after the other: each process is single-threaded.
  for variant in [args.only] if args.only else list(VARIANTS):
    cmd = [python, os.path.abspath(__file__), '--inner', '--variant', variant,
           '--src', src, '--out', out]
    logname = os.path.join(logs, f'{variant}.log')
    with open(logname, 'w') as log:
      code = subprocess.call(cmd, env=environment(), stdout=log, stderr=subprocess.STDOUT)
    if code:
      failed = True
      print(f'{variant} failed, see {logname}:')
      print(open(logname).read()[-4000:])
    else:
      print(f'{variant}: wrote', os.path.join(out, f'dreamerv3_2024_{variant}.npz'))
  if failed:
    raise SystemExit(1)


# --------------------------------------------------------------------------------------------
# Inner process: runs inside the pinned venv.


def official_config(src, names=(), flags=()):
  """configs.yaml `defaults`, then the named blocks, then flags: dreamerv3/main.py's order."""
  import elements
  import ruamel.yaml as yaml
  configs = yaml.YAML(typ='safe').load(
      elements.Path(os.path.join(src, 'dreamerv3', 'configs.yaml')).read())
  config = elements.Config(configs['defaults'])
  for name in names:
    config = config.update(configs[name])
  return elements.Flags(config).parse(list(flags))


def agent_config(config, jax_extra=None):
  """The config `dreamerv3/main.py` `make_agent` hands to the agent."""
  import elements
  return elements.Config(
      **config.agent,
      logdir=config.logdir,
      seed=config.seed,
      jax=dict(config.jax, **(jax_extra or {})),
      batch_size=config.batch_size,
      batch_length=config.batch_length,
      replay_context=config.replay_context,
      report_length=config.report_length,
      replica=config.replica,
      replicas=config.replicas)


def import_official(src):
  """Imports the official packages from the exported source (main.py's sys.path set-up)."""
  sys.path.insert(0, src)
  import jax
  jax.devices()  # Starts the CPU backend now, with this process's XLA_FLAGS (see Pins).
  import embodied  # noqa: F401
  import dreamerv3.agent  # noqa: F401


class Recorder:
  """Holds the draw generator of the current phase and everything recorded."""

  def __init__(self):
    self.phase = None      # 'step1', 'step2', 'policy' while recording, else None.
    self.rng = None
    self.stack = []        # Labels of the official methods currently running.
    self.arrays = {}       # name -> list of arrays (draws) or array.
    self.order = {}        # phase -> run-length list of draw sites.
    self.grads = {}        # phase -> {param: grad}.

  def active(self, nj):
    if self.phase is None:
      return False
    try:
      ctx = nj.context()
    except RuntimeError:
      return False
    return not ctx.create and not ctx.ignore

  def site(self):
    labels = [x for x in self.stack if x in ('obs', 'img', 'pfn')]
    inner = labels[-1] if labels else None
    if inner == 'obs':
      return 'post'
    if inner == 'img':
      return 'imag_prior'
    return 'action' if self.phase == 'policy' else 'imag_action'

  def add(self, name, value):
    self.arrays.setdefault(f'{self.phase}/{name}', []).append(value)

  def put(self, name, value):
    name = f'{self.phase}/{name}'
    assert name not in self.arrays, name
    self.arrays[name] = value

  def add_draw(self, site, value, params):
    self.add(f'draws/{site}', value)
    for key, val in params.items():
      self.add(f'dist/{site}/{key}', val)
    order = self.order.setdefault(self.phase, [])
    if order and order[-1][0] == site:
      order[-1][1] += 1
    else:
      order.append([site, 1])


def install_shims():
  """See Shims in the docstring."""
  import jax
  import embodied.jax.internal as internal
  named = jax.sharding.NamedSharding
  for name in ('_to_local', '_to_global'):
    orig = getattr(internal, name)

    def shim(x, *a, _orig=orig):
      if not isinstance(x.sharding, named):
        return x  # jit disabled: one device, one process; the official function is identity.
      return _orig(x, *a)
    setattr(internal, name, shim)


def install_hooks(rec):
  import jax
  import jax.numpy as jnp
  import numpy as np
  import ninjax as nj
  import optax
  import embodied.jax.opt
  import embodied.jax.outs as outs
  from dreamerv3 import agent as agt
  from dreamerv3 import rssm

  def concrete(x):
    # Values computed inside jax.value_and_grad in jit-disabled mode are still wrapped.
    while isinstance(x, jax.core.Tracer):
      if hasattr(x, 'primal'):
        x = x.primal
      elif hasattr(x, 'pval'):
        x = x.pval.get_known()
        assert x is not None
      else:
        raise TypeError(type(x))
    return np.array(x)

  tree = lambda xs: jax.tree.map(concrete, xs)

  # Hook: categorical draws (latents and the discrete policy).
  orig_cat = outs.Categorical.sample

  def cat_sample(self, seed, shape=()):
    if not rec.active(nj):
      return orig_cat(self, seed, shape)
    assert shape == (), shape
    site = rec.site()
    key = jax.random.PRNGKey(int(rec.rng.integers(2 ** 31)))
    index = concrete(orig_cat(self, key, shape))
    rec.add_draw(site, index, {'logits': concrete(self.logits)})
    return jnp.asarray(index)
  outs.Categorical.sample = cat_sample

  # Hook: Normal draws (the continuous policy).
  orig_normal = outs.Normal.sample

  def normal_sample(self, seed, shape=()):
    if not rec.active(nj):
      return orig_normal(self, seed, shape)
    assert shape == (), shape
    site = rec.site()
    assert site in ('action', 'imag_action'), site
    mean, std = concrete(self.mean), concrete(self.stddev)
    eps = rec.rng.standard_normal(mean.shape).astype(np.float32)
    rec.add_draw(site, eps, {'mean': mean, 'std': std})
    return jnp.asarray(eps) * self.stddev + self.mean
  outs.Normal.sample = normal_sample

  # Hooks: draw-site labels.
  def push(label, fn, *a, **k):
    rec.stack.append(label)
    try:
      return fn(*a, **k)
    finally:
      rec.stack.pop()

  orig_observe = rssm.RSSM._observe

  def observe(self, carry, tokens, action, reset, training):
    carry, (entry, feat) = push('obs', orig_observe, self, carry, tokens, action, reset, training)
    if rec.phase == 'policy' and rec.active(nj):
      for key, value in feat.items():
        rec.add(f'latent/{key}', concrete(value))
    return carry, (entry, feat)
  rssm.RSSM._observe = observe

  orig_imagine = rssm.RSSM.imagine

  def imagine(self, carry, policy, length, training, single=False):
    if callable(policy) and not getattr(policy, '_labelled', False):
      policyfn = policy

      def policy(feat):
        return push('pfn', policyfn, feat)
      policy._labelled = True
    out = push('img', orig_imagine, self, carry, policy, length, training, single)
    if not single and callable(policy) and rec.active(nj):
      _, feat, action = out
      for key, value in tree(feat).items():
        rec.put(f'imag/feat/{key}', value)
      for key, value in tree(action).items():
        rec.put(f'imag/prevact/{key}', value)
    return out
  rssm.RSSM.imagine = imagine

  # Hook: raw gradients.
  orig_opt_init = embodied.jax.opt.Optimizer.__init__

  def opt_init(self, *a, **k):
    orig_opt_init(self, *a, **k)
    chain = self.opt

    def update(grads, state, params=None):
      if rec.active(nj):
        assert rec.phase not in rec.grads, rec.phase
        rec.grads[rec.phase] = {k: concrete(v) for k, v in grads.items()}
      return chain.update(grads, state, params)
    self.opt = optax.GradientTransformation(chain.init, update)
  embodied.jax.opt.Optimizer.__init__ = opt_init

  # Hooks: auxiliary values the train step drops.
  orig_loss = agt.Agent.loss

  def loss(self, carry, obs, prevact, training):
    total, (carry, entries, aux, metrics) = orig_loss(self, carry, obs, prevact, training)
    if rec.active(nj):
      rec.put('loss', concrete(total))
      for key, value in aux['losses'].items():
        rec.put(f'losses/{key}', concrete(value))
      for key, value in aux['repfeat'].items():
        rec.put(f'wm/repfeat/{key}', concrete(value))
      rec.put('wm/tokens', concrete(aux['tokens']))
    return total, (carry, entries, aux, metrics)
  agt.Agent.loss = loss

  orig_imag_loss = agt.imag_loss

  def imag_loss(act, rew, con, policy, value, slowvalue, *a, **k):
    losses, out, metrics = orig_imag_loss(act, rew, con, policy, value, slowvalue, *a, **k)
    if rec.active(nj):
      for key, val in tree(act).items():
        rec.put(f'imag/act/{key}', val)
      rec.put('imag/rew', concrete(rew))
      rec.put('imag/con', concrete(con))
      rec.put('imag/val', concrete(value.pred()))
      rec.put('imag/slowval', concrete(slowvalue.pred()))
      rec.put('imag/ret', concrete(out['ret']))
      for key, val in losses.items():
        rec.put(f'imag/losses/{key}', concrete(val))
    return losses, out, metrics
  agt.imag_loss = imag_loss

  orig_repl_loss = agt.repl_loss

  def repl_loss(*a, **k):
    losses, out, metrics = orig_repl_loss(*a, **k)
    if rec.active(nj):
      rec.put('repl/ret', concrete(out['ret']))
    return losses, out, metrics
  agt.repl_loss = repl_loss


def spaces(variant):
  import numpy as np
  import elements
  S = elements.Space
  obs_space = {
      'image': S(np.uint8, (64, 64, 3)), 'vector': S(np.float32, (5,)),
      'reward': S(np.float32), 'is_first': S(bool), 'is_last': S(bool),
      'is_terminal': S(bool)}
  if variant == 'disc':
    act_space = {'action': S(np.int32, (), 0, 6)}  # What an env with 6 actions declares.
  else:
    act_space = {'action': S(np.float32, (3,), -1, 1)}  # What NormalizeAction declares.
  return obs_space, act_space


def inner(args):
  import numpy as np
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import common
  import_official(args.src)
  import jax
  import embodied.jax.internal as internal
  from dreamerv3 import agent as agt

  rec = Recorder()
  install_shims()
  install_hooks(rec)
  variant = args.variant
  config = official_config(args.src, (), FLAGS)
  obs_space, act_space = spaces(variant)
  agent = agt.Agent(obs_space, act_space, agent_config(config, JAX_EXTRA))
  assert agent.jaxcfg.precompile is False and jax.config.jax_disable_jit

  def batch(seed):
    rng = np.random.default_rng(seed)
    data = common.observations(rng, (B, T))
    data['is_first'][:, 0] = True
    data['is_first'][1, 5] = True
    data['is_last'][0, 6] = True
    data['is_terminal'][0, 6] = True
    if variant == 'disc':
      data['action'] = rng.integers(0, 6, (B, T)).astype(np.int32)
    else:
      data['action'] = rng.uniform(-1, 1, (B, T, 3)).astype(np.float32)
    # Extra inputs the replay adds (ext_space); with replay_context 0 no op reads them.
    data['consec'] = np.zeros((B, T), np.int32)
    data['stepid'] = np.zeros((B, T, 20), np.uint8)
    return data

  arrays = {}
  # Trainable parameters: the modules of the optimizer (dyn, enc, dec, rew, con, pol, val).
  modules = ('dyn', 'enc', 'dec', 'rew', 'con', 'pol', 'val')
  chain_names = {'1': 'rms', '2': 'momentum', '3': 'schedule'}

  def snapshot(prefix, params, slots=True):
    for key, value in params.items():
      value = np.array(value)
      if key.startswith('opt/state/'):
        index, rest = key[len('opt/state/'):].split('/', 1)
        name = chain_names[index]
        if rest in ('0', 'count'):
          arrays[f'{prefix}/opt/{name}/count'] = value
        elif slots:
          assert rest.startswith('1/'), key
          slot = {'rms': 'nu', 'momentum': 'mu'}[name]
          arrays[f'{prefix}/opt/{name}/{slot}/{rest[2:]}'] = value
      elif key == 'opt/step/value':
        arrays[f'{prefix}/opt/step'] = value
      elif key.startswith('slowval/'):
        arrays[f'{prefix}/slow/{key}'] = value
      elif key == 'slowval_count/value':
        arrays[f'{prefix}/counters/slowval_count'] = value
      elif key.startswith('retnorm/'):
        arrays[f'{prefix}/retnorm/{key.split("/")[1]}'] = value
      else:
        assert key.split('/')[0] in modules, key
        arrays[f'{prefix}/params/{key}'] = value

  def finish(phase):
    for name in [n for n in rec.arrays if n.startswith(phase + '/')]:
      value = rec.arrays.pop(name)
      arrays[name] = np.stack(value, 0) if isinstance(value, list) else value

  # The reward and value heads start with zero output layers (outscale 0), so every imagined
  # reward, value, return and advantage of the first updates would be exactly zero. Their
  # output kernels get small random values and their biases a peak on the bins near zero
  # instead (the one departure from the official initial weights, listed in meta
  # `perturbed`; see the docstring); the slow value stays a copy of the value net.
  perturb = np.random.default_rng(7)
  perturbed = []
  for head in ('rew', 'val'):
    kernel, bias = f'{head}/head/logits/kernel', f'{head}/head/logits/bias'
    assert not np.asarray(agent.params[kernel]).any(), kernel
    values = {kernel: perturb.normal(0.0, 0.3, agent.params[kernel].shape),
              bias: -0.5 * np.abs(np.arange(agent.params[bias].shape[0]) - 127)}
    for key, value in values.items():
      agent.params[key] = jax.device_put(
          value.astype(np.float32), agent.train_params_sharding[key])
      perturbed.append(key)
  for key in ('slowval/head/logits/kernel', 'slowval/head/logits/bias'):
    agent.params[key] = jax.device_put(
        np.array(agent.params['val/' + key[len('slowval/'):]]),
        agent.train_params_sharding[key])
    perturbed.append(key)
  for key in agent.params:
    if key.startswith('slowval/'):
      assert np.array_equal(agent.params[key], agent.params['val/' + key[len('slowval/'):]])
  snapshot('init', agent.params, slots=False)  # nu and mu start at zero.
  param_keys = sorted(k[len('init/params/'):] for k in arrays if k.startswith('init/params/'))

  carry = agent.init_train(B)
  for step in (1, 2):
    phase = f'step{step}'
    data = batch(100 + step)
    for key, value in data.items():
      arrays[f'{phase}/batch/{key}'] = value
    # The carry the official train loop passes in: zeros at step 1 (init_train), the step-1
    # output at step 2 (last latent and last action); is_first at t=0 masks it out.
    (_, dyn_carry, _, prevact) = carry
    for key, value in dyn_carry.items():
      arrays[f'{phase}/carry/{key}'] = np.array(value)
    for key, value in prevact.items():
      arrays[f'{phase}/carry/prevact/{key}'] = np.array(value)
    seed = agent._seeds(step - 1, agent.train_mirrored)  # What agent.stream() attaches.
    arrays[f'{phase}/seed'] = np.array(seed)
    rec.phase, rec.rng = phase, np.random.default_rng(1000 + step)
    carry, outs, _ = agent.train(carry, {**data, 'seed': seed})
    rec.phase = None
    assert not outs, outs
    mets = agent._take_outs(agent.pending_mets)
    for key, value in mets.items():
      arrays[f'{phase}/metrics/{key}'] = np.array(value)
    for key, value in rec.grads[phase].items():
      arrays[f'{phase}/grads/{key}'] = value
    finish(phase)
    snapshot(phase, agent.params)

  grad_keys = sorted(k[len('step1/grads/'):] for k in arrays if k.startswith('step1/grads/'))
  assert grad_keys == param_keys, set(grad_keys) ^ set(param_keys)

  # Policy: five steps of two environments from the initial policy state, with the parameters
  # after step 2 (see Shims).
  agent.pending_sync = None
  agent.policy_params = internal.move(
      {k: agent.params[k].copy() for k in agent.policy_keys}, agent.policy_params_sharding)
  obs_seq = common.observations(np.random.default_rng(103), (POLICY_STEPS, B))
  obs_seq['is_first'][0] = True
  obs_seq['reward'][0] = 0.0
  for key, value in obs_seq.items():
    arrays[f'policy/obs/{key}'] = value
  rec.phase, rec.rng = 'policy', np.random.default_rng(1003)
  pcarry = agent.init_policy(B)
  actions, carries = [], []
  for i in range(POLICY_STEPS):
    obs = {k: v[i] for k, v in obs_seq.items()}
    pcarry, acts, outs = agent.policy(pcarry, obs, mode='train')
    assert not outs, outs
    actions.append(np.array(acts['action']))
    carries.append(jax.tree.map(np.array, pcarry))
  rec.phase = None
  arrays['policy/action'] = np.stack(actions, 0)
  # The carry after each call, per environment (embodied.jax splits it into a list).
  for key in ('deter', 'stoch'):
    arrays[f'policy/carry/{key}'] = np.stack([np.stack(c[1][key], 0) for c in carries], 0)
  arrays['policy/carry/prevact'] = np.stack(
      [np.stack(c[3]['action'], 0) for c in carries], 0)
  assert np.array_equal(arrays['policy/carry/prevact'], arrays['policy/action'])
  finish('policy')
  assert not rec.arrays, list(rec.arrays)

  arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in arrays.items()}

  import importlib.metadata as md
  versions = {p: md.version(p) for p in VERSIONED}
  H = config.agent.imag_length
  N = B * T
  A = '' if variant == 'disc' else ', 3'
  draws_meta = {
      'post': f'(T={T}, B={B}, 4) int32 class indices of the posterior latents drawn in the '
              'observe scan (RSSM._observe), time-major; one-hot value = one_hot(index) with '
              'the official straight-through term added.',
      'imag_action': f'(H+1={H + 1}, B*T={N}{A}) policy draws in imagination, row r of the '
                     'start batch = data row r // T, time r % T (reshape of (B, T)); index h '
                     f'< {H} is drawn inside RSSM.imagine step h (before imag_prior[h]) from '
                     f'the latent before it; index {H} is `lastact`, drawn from the last '
                     'imagined latent after the imagine scan. ' + (
                         'Class indices of the Categorical policy (no unimix).'
                         if variant == 'disc' else
                         'Standard-normal eps; action = eps * std + tanh(mean_out) (not '
                         'clipped by the sampler; RSSM._core divides by sg(max(1, |a|)).'),
      'imag_prior': f'(H={H}, B*T={N}, 4) class indices of the prior latents of the '
                    'imagination steps (after unimix 0.01).',
  }
  policy_draws_meta = {
      'post': f'({POLICY_STEPS}, {B}, 4) posterior class indices per policy call.',
      'action': f'({POLICY_STEPS}, {B}{A}) ' + (
          'action class indices' if variant == 'disc' else 'eps of the Normal policy') + '.',
  }
  meta = {
      'official': {'repo': URL, 'commit': COMMIT, 'export': 'git archive without scores/'},
      'generator': 'scripts/official/dreamerv3_2024.py',
      'variant': variant,
      'config': json.loads(json.dumps(dict(config))),
      'config_flags': FLAGS,
      'agent_config_jax_extra': JAX_EXTRA,
      'obs_space': {k: {'dtype': v.dtype.name, 'shape': list(v.shape)}
                    for k, v in obs_space.items()},
      'act_space': {k: {'dtype': v.dtype.name, 'shape': list(v.shape),
                        'discrete': bool(v.discrete),
                        'low': float(np.min(v.low)), 'high': float(np.max(v.high))}
                    for k, v in act_space.items()},
      'versions': versions,
      'python': sys.version.split()[0],
      'jit': False,
      'replay_context': 0,
      'action_timing': 'data["action"][:, t] is the action taken AFTER observing obs t. The '
                       'agent feeds prevact = concat([carry action, action[:, :-1]], 1) to '
                       'the observe step at t (Agent._apply_replay_context).',
      'draw_sites': {'train': draws_meta, 'policy': policy_draws_meta},
      'draw_order': rec.order,
      'draw_rng': 'numpy default_rng(1000 + k) for step k, default_rng(1003) for the policy; '
                  'categorical draws use jax.random.categorical with '
                  'jax.random.PRNGKey(rng.integers(2**31)), Normal draws '
                  'rng.standard_normal(mean.shape).',
      'batches': 'numpy default_rng(101) / (102): image uint8 uniform 8x8-pixel cells '
                 '(blocky), vector/reward standard normal, is_first True at t=0 of every row '
                 'and at [1, 5], is_last = is_terminal True at [0, 6], action ' + (
                     'int32 uniform in 0..5' if variant == 'disc' else 'uniform [-1, 1]')
                 + '; consec and stepid zeros. Policy obs: default_rng(103), is_first True at '
                 'step 0.',
      'names': {
          'init|stepk/params/<key>': 'trainable parameters (ninjax state keys)',
          'init|stepk/slow/<key>': 'slow value (slowval/...)',
          'init|stepk/counters/slowval_count': 'SlowModel update counter',
          'init|stepk/retnorm/lo|hi': 'perc return normaliser',
          'init|stepk/opt/rms|momentum/count': 'step counters of scale_by_rms / '
                                               'scale_by_momentum (chain entries 1, 2)',
          'init|stepk/opt/schedule/count': 'optax scale_by_learning_rate count (entry 3)',
          'init|stepk/opt/step': 'Optimizer step Variable (opt/step/value)',
          'stepk/opt/rms/nu/<key>': 'scale_by_rms second moment (not bias-corrected)',
          'stepk/opt/momentum/mu/<key>': 'scale_by_momentum first moment (not bias-corrected)',
          'stepk/grads/<key>': 'raw gradients of the total loss, before clip_by_agc',
          'stepk/metrics/<name>': 'the metrics dict of step k (Agent.pending_mets)',
          'stepk/loss': 'total scaled loss (what the optimizer differentiates)',
          'stepk/losses/<name>': 'per-element losses as Agent.loss returns them, unscaled: '
                                 'dyn, rep, image, vector, rew, con (B, T); policy, value '
                                 '(B, T) = mean over the H imagined steps; repval (B, T-1)',
          'stepk/imag/losses/policy|value': '(B*T, H) per-step imagination losses',
          'stepk/imag/act/<key>': '(B*T, H+1[, 3]) imagined actions (imgact)',
          'stepk/imag/rew|con|val|slowval': '(B*T, H+1) reward pred, continuation '
                                            'probability (con.prob(1)), value and slow value '
                                            'preds on the imagined latents',
          'stepk/imag/ret': '(B*T, H) lambda returns (unnormalised)',
          'stepk/imag/feat/<key>': '(B*T, H, ...) latents of the imagine scan (without the '
                                   'start, which is wm/repfeat)',
          'stepk/imag/prevact/<key>': '(B*T, H[, 3]) the actions fed into the imagine steps',
          'stepk/repl/ret': '(B, T-1) replay lambda returns of repl_loss',
          'stepk/wm/repfeat/<key>': 'observe-scan latents deter, stoch (one-hot), logit '
                                    '(raw, before unimix) (B, T, ...)',
          'stepk/wm/tokens': 'encoder output (B, T, D)',
          'stepk/draws/<site>': 'recorded draws, see draw_sites',
          'stepk/dist/<site>/logits|mean|std': 'distribution parameters at each draw '
                                               '(logits after unimix for latents)',
          'stepk/carry/...': 'train carry passed into step k',
          'stepk/seed': 'the official train seed (unused by any draw, see Hooks)',
          'policy/...': 'obs (5, 2, ...), draws, dist, latent/<deter|stoch|logit> of each '
                        'observe step, carry after each call (deter, stoch, prevact), action',
      },
      'perturbed': perturbed,
      'notes': [
          'jit disabled for recording; numerics are the official ops run op by op.',
          'Discrete policy: `categorical` head = outs.Categorical on raw logits; the '
          'policy config unimix 0.01 is NOT applied (Head.categorical ignores it; only '
          '`onehot` heads use unimix). Latents use OneHot with unimix 0.01.',
          'SlowModel starts as a copy of the value net (made in the init pass) and mixes '
          'slow := 0.02 * val + 0.98 * slow after every update (count % every == 0), the '
          'first time after step 1 (no initial hard copy step).',
          'imag_loss slowtar False: lambda-return targets come from the value net itself; '
          'slowreg 1.0 adds the value loss against slowval.pred().',
          'Return normaliser (perc, debias False): updated before it is read in imag_loss; '
          'lo/hi = 0.99 * old + 0.01 * jnp.percentile(ret, 5 / 95) over all (B*T, H) '
          'returns; scale = max(1.0, hi - lo). valnorm and advnorm are `none`.',
          'Imagined continuation is con.prob(1) (a probability, not the mode); with contdisc '
          'the con targets are (1 - 1/333) * (1 - is_terminal) and the imagination discount '
          'is 1; weight = cumprod(con, 1).',
          'opt.warmup 0: constant lr 4e-5 from the first update (with the default warmup '
          '1000 the first update has lr 0).',
          'Raw gradients are of the total loss sum(mean(loss_k) * scale_k) (scales: rec 1 for '
          'image and vector, rew 1, con 1, dyn 1, rep 0.1, policy 1, value 1, repval 0.3).',
          'Train metrics of step k are read from agent.pending_mets right after call k (the '
          'official Agent.train returns them only on call k+1).',
          'Policy mode is ignored by the model (it always samples).',
          'symexp_twohot: bins = symexp(linspace(-20, 20, 255)) and pred = sum(probs * bins) '
          '(symmetric order); the perturbed reward / value heads (kernel N(0, 0.3^2), bias '
          '-0.5 |i - 127|) predict values of order 1..10.',
          'Continuous policy samples are not clipped (|a| > 1 occurs); the env wrapper '
          'ClipAction clips what the env sees, RSSM._core divides by sg(max(1, |a|)).',
      ],
  }
  path = os.path.join(args.out, f'dreamerv3_2024_{variant}.npz')
  common.save(path, arrays, meta)
  print('saved', path, len(arrays), 'arrays')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--source', default=None)
  parser.add_argument('--workdir', default=None)
  parser.add_argument('--venv', default=None)
  parser.add_argument('--out', default=None)
  parser.add_argument('--only', choices=VARIANTS, default=None)
  parser.add_argument('--inner', action='store_true')
  parser.add_argument('--variant', choices=VARIANTS)
  parser.add_argument('--src')
  args = parser.parse_args()
  inner(args) if args.inner else outer(args)


if __name__ == '__main__':
  main()
