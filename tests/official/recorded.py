"""Official recorded updates replayed through our agent, per version.

For each fixture: the official config becomes overrides of our preset (sizes only), the
official initial weights are loaded through dreamer_tf.official, the recorded random draws are
replayed through distributions.Replay, and our production train step and policy run (eagerly,
so the raw gradients can be read at each optimiser). Every pair (ours, official) is collected
by quantity in a harness.Pairs.
"""
import numpy as np

from dreamer_tf import agent as agent_lib
from dreamer_tf import config as cfg
from dreamer_tf import distributions as dists
from dreamer_tf import official

import harness


class Version:
  """What differs between the official codes: presets, sizes, names, conventions."""
  version = None
  presets = ()
  metrics = {}   # official metric name -> ours
  sites = {}     # our draw site -> official site
  slow_prefix = ''  # official slow-critic names are the critic's under init/slow (V2)
  retnorm_prefix = ''  # the return normaliser's recorded names -> the name map's
  normalised_momentum = False  # the optimiser's first slot averages normalised gradients

  def overrides(self, config):
    raise NotImplementedError

  def act_space(self, act):
    """Our action space {'shape', 'discrete'} from the recorded one."""
    act = act.get('action', act)  # V3 records {'action': space}
    discrete = act.get('discrete', 'n' in act)  # V2 records gym's Discrete as {'n': ...}
    return {'shape': tuple(act['shape']), 'discrete': discrete}

  def slots(self, recorded):
    """{(official parameter name, 'm' | 'v'): array} of the recorded optimiser state."""
    return adam_slots(recorded)

  def policy_dists(self, agent, latent):
    """The recorded policy distribution parameters (`policy/dist/...`), from ours."""
    return self.action_dist(agent.ac.actor(latent))

  def latent(self, key, value):
    """A recorded policy latent as ours holds it."""
    del key
    return value

  def action(self, value):
    """A recorded action as ours is (V3 2024: indices of discrete actions)."""
    return value

  def batch(self, batch, agent):
    return {k: batch[k] for k in agent.data_space}

  def draws(self, draws, phase):
    """Our Replay table from the official draws of one step ('step') or the policy."""
    del phase
    return {ours: draws[theirs] for ours, theirs in self.sites.items() if theirs in draws}

  def action_dist(self, dist):
    """The official policy's recorded distribution parameters, from ours."""
    raise NotImplementedError


class DreamerV3(Version):
  version = 'dreamerv3_2023'
  presets = ('dreamerv3',)
  metrics = {
      'model_loss_mean': 'model_loss', 'dyn_loss_mean': 'dyn_loss',
      'rep_loss_mean': 'rep_loss', 'image_loss_mean': 'image_loss',
      'vector_loss_mean': 'vector_loss', 'reward_loss_mean': 'reward_loss',
      'cont_loss_mean': 'cont_loss', 'prior_ent_mean': 'prior_ent', 'post_ent_mean': 'post_ent',
      'reward_max_data': 'reward_max_data', 'reward_max_pred': 'reward_max_pred',
      'model_opt_grad_norm': 'model_opt_grad_norm',
      'actor_opt_loss': 'actor_loss', 'actor_opt_grad_norm': 'actor_opt_grad_norm',
      'adv_mean': 'adv_mean', 'policy_entropy_mean': 'policy_entropy',
      'policy_randomness_mean': 'policy_randomness', 'extr_return_raw_mean': 'return_raw',
      'extr_return_normed_mean': 'return_normed', 'extr_reward_mean': 'imag_reward',
      'extr_critic_critic_opt_loss': 'critic_loss',
      'extr_critic_critic_opt_grad_norm': 'critic_opt_grad_norm',
      'extr_critic_mean': 'critic_value',
  }
  sites = {'post': 'post', 'prior': 'imag_prior', 'action': 'imag_action'}

  def overrides(self, c):
    out = {'batch_size': c['batch_size'], 'batch_length': c['batch_length'],
           'imag_horizon': c['imag_horizon']}
    for key in ('deter', 'units', 'stoch', 'classes'):
      out[f'rssm.{key}'] = c['rssm'][key]
    for part in ('encoder', 'decoder'):
      for key in ('mlp_keys', 'cnn_keys', 'mlp_layers', 'mlp_units', 'cnn_depth'):
        out[f'{part}.{key}'] = c[part][key]
    for part in ('reward_head', 'cont_head', 'actor', 'critic'):
      for key in ('layers', 'units'):
        out[f'{part}.{key}'] = c[part][key]
    return out

  def draws(self, draws, phase):
    sites = dict(self.sites)
    if phase == 'policy':
      sites.update({'post': 'post', 'action': 'action'})
    return {ours: draws[theirs] for ours, theirs in sites.items() if theirs in draws}

  def action_dist(self, dist):
    base = dists._base(dist)  # pylint: disable=protected-access
    if isinstance(base, dists.OneHotST):
      return {'logits': base.logits}
    return {'mean': base.loc, 'std': base.scale}


class DreamerV1(Version):
  version = 'dreamerv1'
  presets = ('dreamerv1',)
  metrics = {
      'model_loss': 'model_loss', 'image_loss': 'image_loss', 'reward_loss': 'reward_loss',
      'div': 'dyn_loss', 'prior_ent': 'prior_ent', 'post_ent': 'post_ent',
      'actor_loss': 'actor_loss', 'value_loss': 'critic_loss',
      'model_grad_norm': 'model_opt_grad_norm', 'actor_grad_norm': 'actor_opt_grad_norm',
      'value_grad_norm': 'critic_opt_grad_norm',
  }

  def overrides(self, c):
    units = c['num_units']
    return {'batch_size': c['batch_size'], 'batch_length': c['batch_length'],
            'imag_horizon': c['horizon'], 'rssm.deter': c['deter_size'],
            'rssm.units': c['deter_size'], 'rssm.stoch': c['stoch_size'],
            'encoder.cnn_depth': c['cnn_depth'], 'decoder.cnn_depth': c['cnn_depth'],
            'reward_head.units': units, 'critic.units': units, 'actor.units': units}

  def batch(self, batch, agent):
    assert not np.any(batch['action'][:, 0]), 'V1 first action: zero in real data and here'
    return actions_after(batch, agent)

  def draws(self, draws, phase):
    if phase == 'policy':
      return {'post': draws['post'], 'action': draws['action'], 'explore': draws['expl']}
    # The official imagines H actions a_0..a_{H-1}; ours also samples one in s_H, unused by V1.
    action = draws['imag_action']
    action = np.concatenate([action, np.zeros_like(action[:1])], 0)
    return {'post': draws['post'], 'prior': draws['imag_prior'], 'action': action}

  def action_dist(self, dist):
    normal = dists._base(dist).distribution  # pylint: disable=protected-access
    return {'mean': normal.loc, 'std': normal.scale}


class DreamerV2(Version):
  version = 'dreamerv2'
  metrics = {
      'model_loss': 'model_loss', 'image_loss': 'image_loss', 'vector_loss': 'vector_loss',
      'reward_loss': 'reward_loss', 'discount_loss': 'cont_loss',
      # kl_loss = 0.8 max(KL, free) + 0.2 max(KL, free), both sides the same value.
      'kl_loss': 'dyn_loss', 'prior_ent': 'prior_ent', 'post_ent': 'post_ent',
      'model_grad_norm': 'model_opt_grad_norm', 'actor_loss': 'actor_loss',
      'actor_ent': 'policy_entropy', 'actor_grad_norm': 'actor_opt_grad_norm',
      'critic_loss': 'critic_loss', 'critic': 'critic_value', 'critic_slow': 'critic_slow',
      'critic_target': 'return_raw', 'reward_mean': 'imag_reward',
      'critic_grad_norm': 'critic_opt_grad_norm',
  }
  slow_prefix = 'slow/'

  def __init__(self, block):
    self.presets = ('dreamerv2', block)

  def overrides(self, c):
    out = {'batch_size': c['dataset']['batch'], 'batch_length': c['dataset']['length'],
           'imag_horizon': c['imag_horizon'], 'rssm.deter': c['rssm']['deter'],
           'rssm.units': c['rssm']['hidden'], 'rssm.stoch': c['rssm']['stoch'],
           'rssm.classes': c['rssm']['discrete']}
    for part in ('encoder', 'decoder'):
      for key in ('mlp_keys', 'cnn_keys', 'cnn_depth'):
        out[f'{part}.{key}'] = c[part][key]
      out[f'{part}.mlp_layers'] = len(c[part]['mlp_layers'])
      out[f'{part}.mlp_units'] = c[part]['mlp_layers'][0]
    for ours, theirs in (('reward_head', 'reward_head'), ('cont_head', 'discount_head'),
                         ('actor', 'actor'), ('critic', 'critic')):
      out[f'{ours}.layers'] = c[theirs]['layers']
      out[f'{ours}.units'] = c[theirs]['units']
    return out

  def batch(self, batch, agent):
    return actions_after(batch, agent)

  def draws(self, draws, phase):
    if phase == 'policy':
      return {'post': draws['post'], 'action': draws['action']}
    # The official imagines H actions; ours also samples one in s_H, unused by V2's losses.
    action = np.concatenate([draws['imag_action'], draws['imag_action'][-1:]], 0)
    return {'post': draws['post'], 'prior': draws['imag_prior'], 'action': action}

  def action_dist(self, dist):
    base = dists._base(dist)  # pylint: disable=protected-access
    if isinstance(base, dists.OneHotST):
      return {'logits': base.logits}
    return {'mean': base.loc, 'std': base.scale}


class DreamerV3_2024(Version):
  """The 2024 rewrite (dreamerv3@e3f0224): one loss and one LaProp optimiser, categorical
  draws recorded as indices, integer discrete actions."""
  version = 'dreamerv3_2024'
  presets = ('dreamerv3_2024',)
  retnorm_prefix = 'retnorm/'
  normalised_momentum = True  # LaProp
  metrics = {
      'loss/dyn': 'dyn_loss', 'loss/rep': 'rep_loss', 'loss/image': 'image_loss',
      'loss/vector': 'vector_loss', 'loss/rew': 'reward_loss', 'loss/con': 'cont_loss',
      'loss/policy': 'actor_loss', 'loss/value': 'critic_loss', 'loss/repval': 'repval_loss',
      'opt/loss': 'loss', 'opt/grad_norm': 'opt_grad_norm', 'dyn_ent': 'prior_ent',
      'rep_ent': 'post_ent', 'ent/action': 'policy_entropy', 'rand/action': 'policy_randomness',
      'adv': 'adv_mean', 'ret': 'return_normed',
  }

  def __init__(self):
    self.classes = self.actions = None

  def overrides(self, c):
    agent = c['agent']
    rssm, enc, dec = agent['dyn']['rssm'], agent['enc']['simple'], agent['dec']['simple']
    self.classes = rssm['classes']
    out = {'batch_size': c['batch_size'], 'batch_length': c['batch_length'],
           'replay_context': c['replay_context'], 'imag_horizon': agent['imag_length'],
           'rssm.deter': rssm['deter'], 'rssm.units': rssm['hidden'],
           'rssm.stoch': rssm['stoch'], 'rssm.classes': rssm['classes'],
           'model_opt.warmup': agent['opt']['warmup']}
    for ours, theirs in (('simple_encoder', enc), ('simple_decoder', dec)):
      for key in ('depth', 'units', 'layers'):
        out[f'{ours}.{key}'] = theirs[key]
    for ours, theirs in (('reward_head', 'rewhead'), ('cont_head', 'conhead'),
                         ('actor', 'policy'), ('critic', 'value')):
      for key in ('layers', 'units'):
        out[f'{ours}.{key}'] = agent[theirs][key]
    return out

  def act_space(self, act):
    act = act['action']
    self.actions = int(act['high']) if act['discrete'] else None  # integers; ours one-hots
    if act['discrete']:
      return {'shape': (self.actions,), 'discrete': True}
    return {'shape': tuple(act['shape']), 'discrete': False}

  def action(self, value):
    return np.eye(self.actions, dtype=np.float32)[value] if self.actions else value

  def batch(self, batch, agent):
    return {k: self.action(v) if k == 'action' else v for k, v in batch.items()
            if k in agent.data_space}

  def draws(self, draws, phase):
    """Categorical draws (indices) as one-hots; the actions' draws for `action`."""
    latent = lambda x: np.eye(self.classes, dtype=np.float32)[x]
    if phase == 'policy':
      return {'post': latent(draws['post']), 'action': self.action(draws['action'])}
    return {'post': latent(draws['post']), 'prior': latent(draws['imag_prior']),
            'action': self.action(draws['imag_action'])}

  def slots(self, recorded):
    """LaProp's state: scale_by_momentum `momentum/mu/<name>` (ours m), scale_by_rms
    `rms/nu/<name>` (ours v)."""
    out = {}
    for key, value in recorded.items():
      for prefix, slot in (('momentum/mu/', 'm'), ('rms/nu/', 'v')):
        if key.startswith(prefix):
          out[key[len(prefix):], slot] = value
    return out

  def policy_dists(self, agent, latent):
    base = dists._base(agent.ac.actor(latent))  # pylint: disable=protected-access
    out = {'post/logits': latent['logit']}
    if isinstance(base, dists.OneHotST):
      return {**out, 'action/logits': base.logits}
    return {**out, 'action/mean': base.loc, 'action/std': base.scale}

  def latent(self, key, value):
    """The rewrite keeps the raw logits in its latent (its distributions record the mixed
    ones); ours the log of the 1% unimix probabilities."""
    if key == 'logit':
      return dists.unimix_logits(value, 0.01).numpy()
    return value


VERSIONS = {'dreamerv3_2023': DreamerV3(), 'dreamerv1': DreamerV1(),
            'dreamerv3_2024': DreamerV3_2024()}
BLOCKS = {'dreamerv2_disc': DreamerV2('dreamerv2_atari'),
          'dreamerv2_cont': DreamerV2('dreamerv2_dmc_vision')}


def actions_after(batch, agent):
  """V1 and V2 store with obs t the action taken before it; ours the one after (the last one,
  never read by the world model, is zero)."""
  out = {k: batch[k] for k in agent.data_space if k != 'action'}
  action = batch['action']
  out['action'] = np.concatenate([action[:, 1:], np.zeros_like(action[:, :1])], 1)
  return out


def build(spec, meta, extra=None):
  """Our agent for the fixture; `extra` overrides on top (harness.py --set: mutation runs)."""
  config = cfg.load(list(spec.presets), {'precision': 'float32', 'compile': 'eager',
                                         **spec.overrides(meta['config']), **(extra or {})})
  obs = {k: (tuple(v['shape']), np.dtype(v['dtype'])) for k, v in meta['obs_space'].items()}
  obs.update({'reward': ((), np.float32), 'is_first': ((), bool), 'is_last': ((), bool),
              'is_terminal': ((), bool)})
  return agent_lib.Agent(obs, spec.act_space(meta['act_space']), config)


def optimisers(agent):
  """The agent's optimisers: one (update_order one_loss) or model, actor and critic."""
  if hasattr(agent, 'opt'):
    return (agent.opt,)
  return (agent.model_opt, agent.actor_opt, agent.critic_opt)


def capture_grads(agent):
  """Wraps each optimiser's apply (eager) to keep the raw gradients it receives."""
  grads = {}
  for opt in optimisers(agent):
    def apply(gs, opt=opt, inner=opt.apply):
      grads.update({v.ref(): g for v, g in zip(opt.variables_, gs)})
      return inner(gs)
    opt.apply = apply
  return grads


def spec_of(fixture):
  return BLOCKS.get(fixture) or VERSIONS[fixture.rsplit('_', 1)[0]]


def replay(fixture, extra=None):
  arrays, meta = harness.load(fixture)
  spec = spec_of(fixture)
  agent = build(spec, meta, extra)
  names = official.name_map(agent, spec.version)
  state = official.name_map(agent, spec.version, state=True)
  official.load_official_params(agent, recorded_state(spec, arrays, 'init'), spec.version)
  grads = capture_grads(agent)
  slots, lrs = {}, {}
  for opt in optimisers(agent):
    for var, m, v in zip(opt.variables_, opt.m, opt.v):
      slots[var.ref()], lrs[var.ref()] = {'m': m, 'v': v}, opt.lr
  pairs = harness.Pairs()
  for step in (1, 2):
    pre = f'step{step}'
    if step > 1:  # each update starts from the official state after the one before
      sync(agent, spec, arrays, f'step{step - 1}', names, state, slots)
    draws = dists.Replay(spec.draws(harness.sub(arrays, f'{pre}/draws'), 'step'))
    agent.set_draws(draws)
    metrics = agent.train(spec.batch(harness.sub(arrays, f'{pre}/batch'), agent))
    _check_used(draws, f'step {step}')
    for theirs, value in harness.sub(arrays, f'{pre}/metrics').items():
      if theirs in spec.metrics:
        pairs.add(f'metrics step {step}', theirs, metrics[spec.metrics[theirs]], value)
    official_grads = {}
    for theirs, value in harness.sub(arrays, f'{pre}/grads').items():
      if theirs not in names:  # '<optimiser>/<parameter>'
        theirs = theirs.split('/', 1)[1]
      official_grads[theirs] = value
      for var, transform in names[theirs]:
        pairs.add(f'grads step {step}', theirs, grads[var.ref()], _apply(transform, value))
    for theirs, value in harness.sub(arrays, f'{pre}/params').items():
      for var, transform in state[theirs]:
        grad = official_grads.get(theirs)
        loose = None
        if grad is not None and var.ref() in lrs:
          # Adam's step m / (sqrt(v) + eps) has magnitude ~lr whatever the gradient's size, so
          # where the two gradients differ by over a tenth of the official one (a near-zero
          # gradient, whose sign rounding decides) the weights may differ by up to 3 lr.
          grad = _apply(transform, grad)
          unsure = np.abs(grad) < 10 * np.abs(grads[var.ref()].numpy() - grad)
          loose = (unsure, 3 * lrs[var.ref()])
        pairs.add(f'params step {step}', theirs, var, _apply(transform, value), loose)
    for theirs, value in slow_critic(spec, arrays, pre).items():
      for var, transform in state[theirs]:
        pairs.add(f'slow critic step {step}', theirs, var, _apply(transform, value))
    for theirs, value in retnorm(spec, arrays, pre).items():
      for var, transform in state[theirs]:
        pairs.add(f'retnorm step {step}', theirs, var, _apply(transform, value))
    for (name, slot), value in spec.slots(harness.sub(arrays, f'{pre}/opt')).items():
      for var, transform in names[name]:
        loose = None
        if slot == 'm' and spec.normalised_momentum:
          # LaProp's momentum averages u = g / (sqrt(v) + eps): each element's own relative
          # rounding error enters it, not one relative to the tensor's largest gradient, and
          # where g^2 underflows v (gradients below ~1e-19; eps is 1e-20) u = g / eps grows
          # with g. Elements whose two gradients differ by over 1e-4 of themselves are held to
          # three times that relative error of (|m| + 1 - beta1) instead.
          grad = _apply(transform, official_grads[name])
          rel = np.abs(grads[var.ref()].numpy() - grad) / np.maximum(np.abs(grad), 1e-30)
          loose = (rel > 1e-4, 3 * rel * (np.abs(_apply(transform, value)) + 0.1))
        pairs.add(f'adam step {step}', f'{name}/{slot}', slots[var.ref()][slot],
                  _apply(transform, value), loose)
  sync(agent, spec, arrays, 'step2', names, state, slots)
  policy(agent, spec, arrays, pairs)
  return pairs


def slow_critic(spec, arrays, prefix):
  """The recorded slow critic at `prefix` (init, step1, step2), by our map's official names."""
  return {spec.slow_prefix + k: v for k, v in harness.sub(arrays, f'{prefix}/slow').items()}


def retnorm(spec, arrays, prefix):
  """The recorded return normaliser at `prefix`, by our map's official names."""
  return {spec.retnorm_prefix + k: v for k, v in harness.sub(arrays, f'{prefix}/retnorm').items()}


def recorded_state(spec, arrays, prefix):
  """The official weights, slow critic and return normaliser at `prefix`, by official name."""
  return {**harness.sub(arrays, f'{prefix}/params'), **slow_critic(spec, arrays, prefix),
          **retnorm(spec, arrays, prefix)}


def adam_slots(recorded):
  """{(official parameter name, 'm' | 'v'): array} from `<opt>/<name>/<slot>` (V1, V2) or
  `<opt>/<slot>/<name>` (V3) entries; step counters are left out."""
  out = {}
  for key, value in recorded.items():
    parts = key.split('/')
    if parts[-1] in ('m', 'v'):
      out['/'.join(parts[1:-1]), parts[-1]] = value
    elif len(parts) > 2 and parts[1] in ('m', 'v'):
      out['/'.join(parts[2:]), parts[1]] = value
  return out


def sync(agent, spec, arrays, prefix, names, state, slots):
  """Sets our agent to the official state after an update (weights, slow critic, return
  normaliser, Adam slots), so that rounding differences of one update do not carry into the
  comparison of the next."""
  for theirs, value in recorded_state(spec, arrays, prefix).items():
    for var, transform in state[theirs]:
      var.assign(_apply(transform, value))
  for (name, slot), value in spec.slots(harness.sub(arrays, f'{prefix}/opt')).items():
    for var, transform in names[name]:
      slots[var.ref()][slot].assign(_apply(transform, value))


def _check_used(draws, when):
  """Our step took exactly as many samples per site as the official one drew."""
  recorded = {k: int(v.shape[0]) for k, v in draws.recorded.items()}
  assert draws.used() == recorded, (when, draws.used(), recorded)


def _apply(transform, value):
  return transform(value) if transform else value


def policy(agent, spec, arrays, pairs):
  obs = harness.sub(arrays, 'policy/obs')
  if 'policy/is_first' in arrays:
    obs['is_first'] = arrays['policy/is_first']
  draws = dists.Replay(spec.draws(harness.sub(arrays, 'policy/draws'), 'policy'))
  agent.set_draws(draws)
  latents = harness.sub(arrays, 'policy/latent')
  params = harness.sub(arrays, 'policy/dist')
  actions = spec.action(arrays['policy/action'])
  state = agent.initial_state(actions.shape[1])
  for t in range(len(actions)):
    step = {k: v[t] for k, v in obs.items()}
    step.setdefault('reward', np.zeros(actions.shape[1], np.float32))
    step.setdefault('is_terminal', np.zeros(actions.shape[1], bool))
    action, state = agent.policy(step, state)
    latent = state[0]
    for key, value in latents.items():
      pairs.add('policy latents', f'{key}[{t}]', latent[key], spec.latent(key, value[t]))
    ours = spec.policy_dists(agent, latent)
    for key, value in params.items():
      pairs.add('policy action dist', f'{key}[{t}]', ours[key], spec.latent(key, value[t]))
    pairs.add('policy actions', f'action[{t}]', action, actions[t])
  _check_used(draws, 'policy')
