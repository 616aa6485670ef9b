"""Records reference fixtures from the official DreamerV3 code of the 2023 paper (JAX).

Official code: https://github.com/danijar/dreamerv3 at commit
8fa35f83eee1ce7e10f3dee0b766587d0a713a60 (8fa35f8), exported without `scores/` (a mirror may lack
one of its blobs; the code never reads it).

Writes two fixtures (format: see common.py):
  tests/official/fixtures/dreamerv3_2023_disc.npz  6 one-hot actions, REINFORCE actor (defaults:
                                                   `actor_dist_disc: onehot`, `actor_grad_disc`)
  tests/official/fixtures/dreamerv3_2023_cont.npz  action shape (3,), `actor_dist_cont: normal`,
                                                   backprop actor (`actor_grad_cont`)
Each holds the initial state of the official agent, two train steps on two fixed batches (every
random draw, every metric `Agent.train` returns, raw gradients, parameters, slow critic, return
normaliser and optimizer counters; which of the big arrays are kept: see Size) and five policy
steps of two environments.

Config: the official mechanism (`configs.yaml` `defaults`, then flags parsed by `embodied.Flags`
as `train.py` does), no named block (so `atari100k`'s `actor_eval_sample` issue never arises),
only sizes shrunk: rssm deter 32 / units 16 / stoch 8 / classes 8; encoder and decoder
`cnn_keys: image`, `mlp_keys: vector`, mlp_layers 2, mlp_units 16, cnn_depth 2, minres 4;
reward_head / cont_head / actor / critic layers 2, units 16; batch_size 2, batch_length 8; plus
`jax.platform cpu`, `jax.precision float32`, `jax.jit False` and `jax.metrics_every 1` (so that
`JAXAgent.train` returns the metrics of every step). Everything else is at `defaults`
(imag_horizon 15, bins 255, free 1, unimix 0.01, slow critic, perc_ema retnorm, actent 3e-4,
learning rates, eps, clip, ...). jit is OFF: the whole agent runs op by op, so the Python hooks
below see every draw in program order (scan bodies run as Python loops in jit-disabled mode).

Pins (Python 3.11, CPU): jax==0.4.13 jaxlib==0.4.13 numpy==1.24.3 scipy==1.10.1 optax==0.1.5
chex==0.1.7 tensorflow-probability==0.20.1 ml_dtypes==0.2.0 ruamel.yaml==0.17.32
typing_extensions==4.12.2 cloudpickle rich (chex 0.1.7 imports typing_extensions without
declaring it). Single-threaded XLA (XLA_FLAGS), fixed seeds: repeated runs are byte-identical.

Shims (configuration only, no numerics):
  * `jaxagent.JAXAgent._setup` wrapped: after the official setup it sets `jax_transfer_guard`
    back to 'allow'. The official 'disallow' only works under jit; with jit disabled,
    `jax.random.PRNGKey(<device scalar>)` inside `ninjax.pure` is an implicit transfer and fails.

Hooks (recording / replay; the official maths downstream runs unmodified):
  * `jaxutils.OneHotDist._sample_n` (the TFP `OneHotCategorical` sampler that the official
    `OneHotDist.sample` calls through `super().sample`): while recording, the draw uses a key from
    this script's numpy-seeded generator (`jax.random.PRNGKey(rng.integers(2**31))`) instead of
    the `nj.rng()` key the official code passes; the one-hot value (before the official
    straight-through term is added) is recorded. The official `nj.rng()` keys are still split
    and consumed exactly as in the official code; they just do not decide the draw.
  * `tfd.Normal._sample_n` (the actor's `Independent(Normal(tanh(out), std))`): while recording,
    eps ~ N(0, 1) from the numpy generator, sample = eps * std + mean (the same formula as TFP's
    `sampled * scale + loc`); eps is recorded.
    Outside recording (the initialisation passes that ninjax runs with create=True, see below)
    both samplers call the original TFP code with the official seed.
  * `nets.RSSM.obs_step` / `nets.RSSM.img_step` / `agent.Agent.policy` wrapped only to know the
    draw site (a stack of labels); they call the official methods unchanged.
  * `jaxutils.Optimizer.__init__` wrapped: after the official constructor, the instance's optax
    chain gets an `update` that records the incoming gradients (raw gradients of the unscaled
    loss, before `clip_by_global_norm`) and then calls the official chain.
  * `agent.WorldModel.train` and `agent.ImagActorCritic.train` wrapped to copy out auxiliary
    values that `Agent.train` drops (per-element world-model losses, post/prior, embed;
    imagined cont and weight).
Initial weights: the official initialisers, except the output kernels of the reward head, the
critic and the slow critic, which the official zero-initialises (outscale 0.0): they are set to
N(0, 0.3^2) draws before step 1 (meta `perturbed`). With zero outputs every imagined reward,
value, return and advantage of the first updates is float32 rounding noise (~1e-7) whose sum
order differs between XLA and TensorFlow; with these, the behaviour losses are compared at
working magnitudes. dreamer_tf's zero initialisation of these layers is tested separately.
Recording happens only in non-creating ninjax contexts (`nj.context().create` False), i.e. in
the real train/policy calls, not in the init passes `nj.jit` runs on the first call.

Usage: python3 scripts/official/dreamerv3_2023.py [--source GIT_DIR] [--workdir DIR]
           [--out tests/official/fixtures] [--only disc|cont]
       python3 scripts/official/dreamerv3_2023.py --convert LOGDIR/checkpoint.ckpt OUT.npz
           (an official run's weights for dreamer_tf.official.load_official_params)

Size: cnn_depth 2 (not 4), as the V1/V2 generators, so that every fixture of the three versions
stays under 10 MB together while all parameters, gradients and Adam m/v of both steps are kept
(~2 MB per file); images are random 8x8-pixel cells (`blocky`), which compress.
"""
import argparse
import json
import os
import subprocess
import sys

URL = 'https://github.com/danijar/dreamerv3'
COMMIT = '8fa35f83eee1ce7e10f3dee0b766587d0a713a60'
PINS = [
    'jax==0.4.13', 'jaxlib==0.4.13', 'numpy==1.24.3', 'scipy==1.10.1', 'optax==0.1.5',
    'chex==0.1.7', 'tensorflow-probability==0.20.1', 'ml_dtypes==0.2.0',
    'ruamel.yaml==0.17.32', 'typing_extensions==4.12.2', 'cloudpickle', 'rich']
VARIANTS = ('disc', 'cont')

# Shrunk config: sizes only. Flags in the official `embodied.Flags` syntax.
OVERRIDES = [
    '--seed', '0',
    '--jax.platform', 'cpu', '--jax.precision', 'float32', '--jax.jit', 'False',
    '--jax.metrics_every', '1',
    '--rssm.deter', '32', '--rssm.units', '16', '--rssm.stoch', '8', '--rssm.classes', '8',
    '--encoder.cnn_keys', 'image', '--encoder.mlp_keys', 'vector',
    '--encoder.mlp_layers', '2', '--encoder.mlp_units', '16', '--encoder.cnn_depth', '2',
    '--encoder.minres', '4',
    '--decoder.cnn_keys', 'image', '--decoder.mlp_keys', 'vector',
    '--decoder.mlp_layers', '2', '--decoder.mlp_units', '16', '--decoder.cnn_depth', '2',
    '--decoder.minres', '4',
    '--reward_head.layers', '2', '--reward_head.units', '16',
    '--cont_head.layers', '2', '--cont_head.units', '16',
    '--actor.layers', '2', '--actor.units', '16',
    '--critic.layers', '2', '--critic.units', '16',
    '--batch_size', '2', '--batch_length', '8',
]
B, T = 2, 8
POLICY_STEPS = 5


def outer(args):
  here = os.path.dirname(os.path.abspath(__file__))
  sys.path.insert(0, here)
  import common
  work = common.workdir(args.workdir)
  src = common.checkout(URL, COMMIT, os.path.join(work, 'dreamerv3'), args.source, ['scores'])
  python = common.venv(os.path.join(work, 'venv'), PINS)
  if args.convert:
    cmd = [python, os.path.abspath(__file__), '--inner-convert', args.convert[0],
           os.path.abspath(args.convert[1]), '--src', src]
    raise SystemExit(subprocess.call(cmd))
  out = os.path.abspath(args.out or common.FIXTURES)
  env = dict(os.environ)
  env.update({
      'XLA_FLAGS': '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1',
      'OMP_NUM_THREADS': '1', 'PYTHONHASHSEED': '0', 'JAX_PLATFORMS': 'cpu',
      'TF_CPP_MIN_LOG_LEVEL': '2'})
  variants = [args.only] if args.only else list(VARIANTS)
  procs = []
  for variant in variants:
    cmd = [python, os.path.abspath(__file__), '--inner', '--variant', variant,
           '--src', src, '--out', out]
    log = open(os.path.join(work, f'{variant}.log'), 'w')
    procs.append((variant, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT),
                  log))
  failed = False
  for variant, proc, log in procs:
    proc.wait()
    log.close()
    if proc.returncode:
      failed = True
      print(f'{variant} failed, see {log.name}:')
      print(open(log.name).read()[-4000:])
    else:
      print(f'{variant}: wrote', os.path.join(out, f'dreamerv3_2023_{variant}.npz'))
  if failed:
    raise SystemExit(1)


# --------------------------------------------------------------------------------------------
# Inner process: runs inside the pinned venv.


class Recorder:
  """Holds the draw generator of the current phase and everything recorded."""

  def __init__(self):
    self.phase = None      # 'step1', 'step2', 'policy' while recording, else None.
    self.rng = None
    self.stack = []        # Labels of the official methods currently running.
    self.arrays = {}       # name -> list of arrays (draws) or array.
    self.order = {}        # phase -> run-length list of draw sites.
    self.grads = {}        # phase -> optimizer name -> {param: grad}.

  def active(self, nj):
    if self.phase is None:
      return False
    try:
      return not nj.context().create
    except RuntimeError:
      return False

  def site(self, kind):
    """kind: 'latent' or 'action'."""
    inside = [x for x in self.stack if x in ('obs', 'img')]
    if kind == 'latent':
      assert inside, self.stack
      if inside[-1] == 'obs':
        return 'post'
      return 'prior_obs' if 'obs' in inside else 'imag_prior'
    assert not inside, self.stack
    return 'action' if self.phase == 'policy' else 'imag_action'

  def add_draw(self, site, value, params):
    name = f'{self.phase}/draws/{site}'
    self.arrays.setdefault(name, []).append(value)
    for key, val in params.items():
      self.arrays.setdefault(f'{self.phase}/dist/{site}/{key}', []).append(val)
    order = self.order.setdefault(self.phase, [])
    if order and order[-1][0] == site:
      order[-1][1] += 1
    else:
      order.append([site, 1])


def inner(args):
  import numpy as np
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import common
  sys.path.insert(0, args.src)
  import jax
  import jax.numpy as jnp
  import dreamerv3  # noqa: F401  (sets up its sys.path entries)
  from dreamerv3 import agent as agt
  from dreamerv3 import embodied
  from dreamerv3 import jaxagent
  from dreamerv3 import jaxutils
  from dreamerv3 import nets
  from dreamerv3 import ninjax as nj
  import optax
  from tensorflow_probability.substrates import jax as tfp
  tfd = tfp.distributions

  rec = Recorder()
  variant = args.variant

  def concrete(x):
    # Values computed inside jax.value_and_grad in jit-disabled mode may still be wrapped.
    while isinstance(x, jax.core.Tracer):
      if hasattr(x, 'primal'):
        x = x.primal
      elif hasattr(x, 'pval'):
        x = x.pval.get_known()
      else:
        raise TypeError(type(x))
    return np.asarray(x)

  # Shim: transfer guard.
  orig_setup = jaxagent.JAXAgent._setup

  def setup(self):
    orig_setup(self)
    jax.config.update('jax_transfer_guard', 'allow')
  jaxagent.JAXAgent._setup = setup

  # Hook: one-hot samples.
  orig_onehot = tfd.OneHotCategorical._sample_n

  def onehot_sample_n(self, n, seed=None):
    if not rec.active(nj):
      return orig_onehot(self, n, seed=seed)
    # Inside RSSM.obs_step / img_step every draw is a latent; elsewhere it is an action.
    kind = 'latent' if any(x in ('obs', 'img') for x in rec.stack) else 'action'
    site = rec.site(kind)
    key = jax.device_put(jax.random.PRNGKey(int(rec.rng.integers(2 ** 31))))
    sample = orig_onehot(self, n, seed=key)
    value = concrete(sample).astype(np.float32)
    assert value.shape[0] == 1, value.shape
    params = {}
    if kind == 'action':
      params['logits'] = concrete(self.logits).astype(np.float32)
    rec.add_draw(site, value[0], params)
    return jax.device_put(value)
  jaxutils.OneHotDist._sample_n = onehot_sample_n

  # Hook: Normal samples.
  orig_normal = tfd.Normal._sample_n

  def normal_sample_n(self, n, seed=None):
    if not rec.active(nj):
      return orig_normal(self, n, seed=seed)
    site = rec.site('action')
    loc, scale = jnp.asarray(self.loc), jnp.asarray(self.scale)
    shape = (n,) + tuple(np.broadcast_shapes(loc.shape, scale.shape))
    eps = rec.rng.standard_normal(shape).astype(np.float32)
    rec.add_draw(site, eps[0], {
        'mean': concrete(loc).astype(np.float32), 'std': concrete(scale).astype(np.float32)})
    return jax.device_put(eps) * scale + loc
  tfd.Normal._sample_n = normal_sample_n

  # Hooks: draw-site labels.
  def labelled(cls, method, label):
    orig = getattr(cls, method)

    def wrapper(self, *a, **k):
      rec.stack.append(label)
      try:
        return orig(self, *a, **k)
      finally:
        rec.stack.pop()
    setattr(cls, method, wrapper)
  labelled(nets.RSSM, 'obs_step', 'obs')
  labelled(nets.RSSM, 'img_step', 'img')
  labelled(agt.Agent.inner, 'policy', 'policy')

  # Hook: raw gradients.
  orig_opt_init = jaxutils.Optimizer.__init__

  def opt_init(self, *a, **k):
    orig_opt_init(self, *a, **k)
    chain = self.opt
    name = self.name

    def update(grads, state, params=None):
      if rec.active(nj):
        got = rec.grads.setdefault(rec.phase, {})
        assert name not in got, name
        got[name] = {k: concrete(v).astype(np.float32) for k, v in grads.items()}
      return chain.update(grads, state, params)
    self.opt = optax.GradientTransformation(chain.init, update)
  jaxutils.Optimizer.__init__ = opt_init

  # Hooks: auxiliary outputs.
  orig_wm_train = agt.WorldModel.train

  def wm_train(self, data, state):
    state_out, outs, metrics = orig_wm_train(self, data, state)
    if rec.active(nj):
      for key, value in outs.items():
        if key in ('post', 'prior'):
          for k, v in value.items():
            rec.arrays[f'{rec.phase}/wm/{key}/{k}'] = concrete(v)
        else:
          rec.arrays[f'{rec.phase}/wm/{key}'] = concrete(value)
    return state_out, outs, metrics
  agt.WorldModel.train = wm_train

  orig_ac_train = agt.ImagActorCritic.train

  def ac_train(self, imagine, start, context):
    traj, metrics = orig_ac_train(self, imagine, start, context)
    if rec.active(nj):
      for key in ('cont', 'weight'):
        rec.arrays[f'{rec.phase}/traj/{key}'] = concrete(traj[key])
    return traj, metrics
  agt.ImagActorCritic.train = ac_train

  # Build the official agent through the official config mechanism.
  config = embodied.Config(agt.Agent.configs['defaults'])
  task = {'disc': 'dummy_disc', 'cont': 'dummy_cont'}[variant]
  config = embodied.Flags(config).parse(OVERRIDES + ['--task', task])
  S = embodied.Space
  obs_space = {
      'image': S(np.uint8, (64, 64, 3)), 'vector': S(np.float32, (5,)),
      'reward': S(np.float32), 'is_first': S(bool), 'is_last': S(bool),
      'is_terminal': S(bool)}
  if variant == 'disc':
    # What train.py's wrappers.OneHotAction makes of a 6-action discrete env.
    act = S(np.float32, (6,), 0, 1)
    act._discrete = True
  else:
    # What wrappers.NormalizeAction makes of a continuous env.
    act = S(np.float32, (3,), -1, 1)
  act_space = {'action': act, 'reset': S(bool)}
  agent = agt.Agent(obs_space, act_space, embodied.Counter(), config)

  def batch(seed):
    rng = np.random.default_rng(seed)
    data = common.observations(rng, (B, T))
    data['is_first'][:, 0] = True
    data['is_first'][1, 5] = True
    data['is_last'][0, 6] = True
    data['is_terminal'][0, 6] = True
    if variant == 'disc':
      data['action'] = np.eye(6, dtype=np.float32)[rng.integers(0, 6, (B, T))]
    else:
      data['action'] = rng.uniform(-1, 1, (B, T, 3)).astype(np.float32)
    return data

  arrays = {}
  optimizers = {}  # short name -> ninjax path.
  inner_agent = agent.agent
  for opt in (inner_agent.wm.opt, inner_agent.task_behavior.ac.opt,
              inner_agent.task_behavior.ac.critics['extr'].opt):
    optimizers[opt.name] = opt.path

  def snapshot(prefix, varibs, adam_slots=True):
    for key, value in varibs.items():
      opt_name = next((n for n, p in optimizers.items() if key.startswith(p + '/')), None)
      if opt_name and key.endswith('/state'):
        adam = [s for s in value if isinstance(s, optax.ScaleByAdamState)]
        assert len(adam) == 1 and len(value) == 3, value
        arrays[f'{prefix}/opt/{opt_name}/count'] = np.asarray(adam[0].count)
        if adam_slots:
          for k, v in adam[0].mu.items():
            arrays[f'{prefix}/opt/{opt_name}/m/{k}'] = np.asarray(v)
          for k, v in adam[0].nu.items():
            arrays[f'{prefix}/opt/{opt_name}/v/{k}'] = np.asarray(v)
      elif opt_name and key == optimizers[opt_name] + '/step/value':
        arrays[f'{prefix}/opt/{opt_name}/step'] = np.asarray(value)
      elif '/critic/slow/' in key:
        arrays[f'{prefix}/slow/{key}'] = np.asarray(value)
      elif '/retnorm_' in key:
        arrays[f'{prefix}/retnorm/{key}'] = np.asarray(value)
      elif key.endswith('/updates/value'):
        arrays[f'{prefix}/counters/{key}'] = np.asarray(value)
      else:
        assert not isinstance(value, (tuple, list, dict)), key
        arrays[f'{prefix}/params/{key}'] = np.asarray(value)

  def finish_draws(phase):
    for name in [n for n in rec.arrays if n.startswith(phase + '/')]:
      value = rec.arrays.pop(name)
      arrays[name] = np.stack(value, 0) if isinstance(value, list) else value

  # The reward head and the critics start with zero output layers (outscale 0), so in the first
  # updates their predictions, the imagined returns and the advantages are float32 rounding
  # noise around zero (~1e-7), in which the sum order of XLA and another framework differ by
  # 100%. These output kernels get small random values instead (the one departure from the
  # official initial weights, listed in meta `perturbed`), so that returns, the return
  # normaliser and the actor's advantages are compared at working magnitudes.
  perturb = np.random.default_rng(7)
  perturbed = sorted(k for k in agent.varibs if k.endswith('/dist_out/out/kernel') and (
      '/wm/rew/' in k or '/critic/' in k))
  for key in perturbed:
    shape = agent.varibs[key].shape
    agent.varibs[key] = jax.device_put(perturb.normal(0.0, 0.3, shape).astype(np.float32))
  snapshot('init', agent.varibs, adam_slots=False)  # Adam m/v start at zero.
  param_keys = sorted(k[len('init/params/'):] for k in arrays if k.startswith('init/params/'))

  state = None
  for step, seed in ((1, 101), (2, 102)):
    phase = f'step{step}'
    data = batch(seed)
    for key, value in data.items():
      arrays[f'{phase}/batch/{key}'] = value
    if state is not None:
      # Carry-over state the official train loop passes in (last posterior of the previous batch
      # and its last action); with is_first True at t=0 it is masked out.
      (latent, action) = state
      for key, value in latent.items():
        arrays[f'{phase}/carry/{key}'] = np.asarray(value)
      arrays[f'{phase}/carry/action'] = np.asarray(action)
    rec.phase, rec.rng = phase, np.random.default_rng(1000 + step)
    outs, state, mets = agent.train(data, state)
    rec.phase = None
    assert not outs, outs
    for key, value in mets.items():
      arrays[f'{phase}/metrics/{key}'] = np.asarray(value)
    for opt_name, grads in rec.grads[phase].items():
      for key, value in grads.items():
        arrays[f'{phase}/grads/{key}'] = value
    finish_draws(phase)
    snapshot(phase, agent.varibs)

  grad_keys = sorted(k[len('step1/grads/'):] for k in arrays if k.startswith('step1/grads/'))
  assert grad_keys == param_keys, set(grad_keys) ^ set(param_keys)

  # Policy: five steps of two environments, training mode, from the initial state.
  obs_seq = common.observations(np.random.default_rng(103), (POLICY_STEPS, B))
  obs_seq['is_first'][0] = True
  obs_seq['reward'][0] = 0.0
  for key, value in obs_seq.items():
    arrays[f'policy/obs/{key}'] = value
  rec.phase, rec.rng = 'policy', np.random.default_rng(1003)
  pstate = None
  latents, actions, entropies = [], [], []
  for i in range(POLICY_STEPS):
    obs = {k: v[i] for k, v in obs_seq.items()}
    outs, pstate = agent.policy(obs, pstate, mode='train')
    (latent, action), _, _ = pstate
    latents.append(latent)
    actions.append(outs['action'])
    entropies.append(outs['log_entropy'])
    assert np.array_equal(action, outs['action'])
  rec.phase = None
  for key in latents[0]:
    arrays[f'policy/latent/{key}'] = np.stack([x[key] for x in latents], 0)
  arrays['policy/action'] = np.stack(actions, 0)
  arrays['policy/log_entropy'] = np.stack(entropies, 0)
  finish_draws('policy')
  # The action distribution parameters live at the draw site of the action.
  for name in [n for n in arrays if n.startswith('policy/dist/action/')]:
    arrays['policy/dist/' + name[len('policy/dist/action/'):]] = arrays.pop(name)
  assert not rec.arrays, list(rec.arrays)

  arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 and 'metrics/params_' not in k
                else v) for k, v in arrays.items()}

  import importlib.metadata as md
  versions = {p: md.version(p) for p in (
      'jax', 'jaxlib', 'numpy', 'scipy', 'optax', 'chex', 'tensorflow-probability',
      'ml_dtypes', 'ruamel.yaml', 'typing_extensions', 'cloudpickle', 'rich', 'dm-tree')}
  A = act.shape[0]
  H = config.imag_horizon
  draws_meta = {
      'post': f'(T={T}, B={B}, 8, 8) one-hot posterior samples of the observe scan, time-major; '
              'drawn in obs_step after its img_step; the value before the straight-through '
              'term (sample + probs - sg(probs)).',
      'prior_obs': f'(T={T}, B={B}, 8, 8) one-hot prior samples drawn by the img_step inside '
                   'obs_step (the prior dict keeps them as prior["stoch"]); unused by any '
                   'loss (the KL uses logits only), drawn before post at every t.',
      'imag_action': f'(H+1={H + 1}, B*T={B * T}, {A}) actor samples in imagination, row r of '
                     'the start batch = data row r // T, time r % T (reshape of (B, T)); index 0 '
                     'is drawn from the start state before any img_step, index h>=1 after '
                     'imag_prior[h-1]. ' + (
                         'One-hot values (disc).' if variant == 'disc' else
                         'Standard-normal eps; action = eps * std + tanh(out) (no clipping in '
                         'the sampler; img_step scales |a|>1 down by action_clip=1).'),
      'imag_prior': f'(H={H}, B*T={B * T}, 8, 8) one-hot prior samples of img_step in '
                    'imagination, h-th drawn before imag_action[h+1].',
  }
  policy_draws_meta = {
      'post': f'({POLICY_STEPS}, {B}, 8, 8) posterior samples of obs_step per policy call.',
      'prior_obs': f'({POLICY_STEPS}, {B}, 8, 8) prior samples inside that obs_step (unused).',
      'action': f'({POLICY_STEPS}, {B}, {A}) ' + (
          'one-hot action samples' if variant == 'disc' else 'eps of the Normal actor') + '.',
  }
  meta = {
      'official': {'repo': URL, 'commit': COMMIT,
                   'export': 'git archive without scores/'},
      'generator': 'scripts/official/dreamerv3_2023.py',
      'variant': variant,
      'config': json.loads(json.dumps(dict(config))),
      'config_flags': OVERRIDES + ['--task', task],
      'obs_space': {k: {'dtype': v.dtype.name, 'shape': list(v.shape)}
                    for k, v in obs_space.items()},
      'act_space': {'action': {'dtype': 'float32', 'shape': list(act.shape),
                               'discrete': bool(act.discrete),
                               'low': float(act.low.min()), 'high': float(act.high.max())}},
      'versions': versions,
      'python': sys.version.split()[0],
      'jit': False,
      'optimizers': {n: {'path': p, 'params_prefixes': None} for n, p in optimizers.items()},
      'action_timing': 'data["action"][:, t] is the action taken AFTER observing obs t '
                       '(embodied.Driver stores obs t with the policy output for obs t). The '
                       'world model feeds prev_action = concat([carry action, action[:, :-1]]) '
                       'to obs_step at t.',
      'draw_sites': {'train': draws_meta, 'policy': policy_draws_meta},
      'draw_order': rec.order,
      'draw_rng': 'numpy default_rng(1000 + k) for step k, default_rng(1003) for the policy; '
                  'one-hot draws use jax.random.PRNGKey(rng.integers(2**31)) with the TFP '
                  'OneHotCategorical sampler, Normal draws rng.standard_normal.',
      'batches': 'numpy default_rng(101) / (102): image uint8 uniform 8x8-pixel cells '
                 '(blocky), vector/reward standard normal, is_first True at t=0 of every row '
                 'and at [1, 5], is_last = '
                 'is_terminal True at [0, 6], action ' + (
                     'one-hot of uniform indices' if variant == 'disc' else 'uniform [-1, 1]')
                 + '. Policy obs: default_rng(103), is_first True at step 0.',
      'names': {
          'init/params/<key>': 'trainable parameters (ninjax state keys) before step 1',
          'init|stepk/slow/<key>': 'slow critic (agent/task_behavior/critic/slow/...)',
          'init|stepk/retnorm/<key>': 'perc_ema return normaliser low/high',
          'init|stepk/counters/<key>': 'SlowUpdater update counter',
          'init|stepk/opt/<opt>/count': 'optax ScaleByAdamState.count',
          'init|stepk/opt/<opt>/step': 'jaxutils.Optimizer step Variable (<path>/step/value)',
          'stepk/opt/<opt>/m|v/<key>': 'Adam mu / nu',
          'stepk/params/<key>': 'parameters after the step',
          'stepk/grads/<key>': 'raw gradients before clip_by_global_norm',
          'stepk/metrics/<name>': 'everything JAXAgent.train returned (metrics_every=1)',
          'stepk/draws/<site>': 'recorded draws, see draw_sites',
          'stepk/dist/imag_action/<param>': 'actor distribution parameters at each imag_action '
                                            'draw (logits, or mean/std)',
          'stepk/wm/<name>': 'WorldModel.loss aux outputs: embed, '
                             'post/prior dicts, per-element <k>_loss (B, T), unscaled',
          'stepk/traj/cont|weight': 'imagined cont (index 0 = 1 - is_terminal of the start) '
                                    'and weight (H+1, B*T)',
          'stepk/carry/<key>': 'train state passed into step k (step 2: step 1 output)',
          'policy/...': 'obs (5, 2, ...), draws, latent (deter, logit, stoch) after each call, '
                        'dist (action distribution parameters), action, log_entropy',
      },
      'perturbed': perturbed,
      'notes': [
          'jit disabled for recording; numerics are the official ops run op by op.',
          'SlowUpdater runs after the critic optimizer step; first call (updates == 0) mixes '
          'with 1.0, i.e. slow := net after the step-1 update; afterwards mix 0.02 every step. '
          'The step-1 slowreg target still comes from init/slow (independently initialised; '
          'with the zero-initialised output layer its mean is symexp(sum(softmax(0) * bins)), '
          'about 1.19e-7, not exactly 0).',
          'Return normaliser (perc_ema) is updated inside the actor loss BEFORE its stats are '
          'read: low/high = 0.99 * old + 0.01 * jnp.percentile(ret, 5 / 95) over all (H, B*T) '
          'returns (linear interpolation); invscale = max(1 / max = 1.0, high - low).',
          'Imagined continuation uses the cont head MODE (1.0 where logit > 0, else 0.0) for '
          'h >= 1 and 1 - is_terminal of the start at h = 0; weight = cumprod(disc * cont) / '
          'disc with disc = 1 - 1 / horizon (333).',
          'prior_obs draws are taken in every obs_step (img_step samples) but no loss uses '
          'them; the KL terms use logits only.',
          'model_opt global grad norm exceeds clip = 1000 at both steps: clip_by_global_norm '
          'is active; actor/critic norms are below 100.',
          'Reward head and critic output layers are zero-initialised (outscale 0).',
          'Continuous actions are not clipped by the sampler (|a| > 1 occurs); obs_step / '
          'img_step scale them by sg(1 / max(1, |a|)) per element.',
          'Every *_dist metric is the full flattened array (<= 1024 elements, so subsample '
          'draws no permutation key).',
          'metrics/params_<optimizer path> are python floats (float64) and appear at step 1 '
          'only (JAXAgent adds them on its first train call).',
          'Initial Adam m/v are zeros and not stored.',
      ],
  }
  for n in meta['optimizers']:
    meta['optimizers'][n]['params_prefixes'] = sorted({
        '/'.join(k.split('/')[:4]) for k in rec.grads['step1'][n]})
  path = os.path.join(args.out, f'dreamerv3_2023_{variant}.npz')
  common.save(path, arrays, meta)
  print('saved', path, len(arrays), 'arrays')


def convert(checkpoint, out, src):
  """An official checkpoint (embodied.Checkpoint: a pickle of {'agent': {ninjax name: value},
  ...}) to an .npz of its arrays, for dreamer_tf.official.load_official_params. Runs in the
  official environment, since unpickling needs the official classes (optax states); optimiser
  states (not arrays) stay behind."""
  import pickle
  import numpy as np
  sys.path.insert(0, src)
  with open(checkpoint, 'rb') as f:
    data = pickle.load(f)
  arrays = {k: np.asarray(v) for k, v in data['agent'].items() if isinstance(v, np.ndarray)}
  np.savez(out, **arrays)
  print(f'wrote {out}: {len(arrays)} arrays of {len(data["agent"])} agent entries')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--source', default=None)
  parser.add_argument('--workdir', default=None)
  parser.add_argument('--out', default=None)
  parser.add_argument('--only', choices=VARIANTS, default=None)
  parser.add_argument('--convert', nargs=2, metavar=('CHECKPOINT', 'OUT_NPZ'),
                      help='convert an official checkpoint.ckpt to .npz instead of recording')
  parser.add_argument('--inner-convert', nargs=2)
  parser.add_argument('--inner', action='store_true')
  parser.add_argument('--variant', choices=VARIANTS)
  parser.add_argument('--src')
  args = parser.parse_args()
  if args.inner_convert:
    convert(*args.inner_convert, args.src)
  else:
    inner(args) if args.inner else outer(args)


if __name__ == '__main__':
  main()
