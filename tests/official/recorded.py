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

  def overrides(self, config):
    raise NotImplementedError

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


VERSIONS = {'dreamerv3_2023': DreamerV3(), 'dreamerv1': DreamerV1()}
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
  act = meta['act_space']
  act = act.get('action', act)  # V3 records {'action': space}
  discrete = act.get('discrete', 'n' in act)  # V2 records gym's Discrete as {'n': ...}
  return agent_lib.Agent(obs, {'shape': tuple(act['shape']), 'discrete': discrete}, config)


def capture_grads(agent):
  """Wraps each optimiser's apply (eager) to keep the raw gradients it receives."""
  grads = {}
  for opt in (agent.model_opt, agent.actor_opt, agent.critic_opt):
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
  for opt in (agent.model_opt, agent.actor_opt, agent.critic_opt):
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
    for theirs, value in harness.sub(arrays, f'{pre}/retnorm').items():
      for var, transform in state[theirs]:
        pairs.add(f'retnorm step {step}', theirs, var, _apply(transform, value))
    for (name, slot), value in adam_slots(harness.sub(arrays, f'{pre}/opt')).items():
      for var, transform in names[name]:
        pairs.add(f'adam step {step}', f'{name}/{slot}', slots[var.ref()][slot],
                  _apply(transform, value))
  sync(agent, spec, arrays, 'step2', names, state, slots)
  policy(agent, spec, arrays, pairs)
  return pairs


def slow_critic(spec, arrays, prefix):
  """The recorded slow critic at `prefix` (init, step1, step2), by our map's official names."""
  return {spec.slow_prefix + k: v for k, v in harness.sub(arrays, f'{prefix}/slow').items()}


def recorded_state(spec, arrays, prefix):
  """The official weights, slow critic and return normaliser at `prefix`, by official name."""
  return {**harness.sub(arrays, f'{prefix}/params'), **slow_critic(spec, arrays, prefix),
          **harness.sub(arrays, f'{prefix}/retnorm')}


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
  for (name, slot), value in adam_slots(harness.sub(arrays, f'{prefix}/opt')).items():
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
  actions = arrays['policy/action']
  state = agent.initial_state(actions.shape[1])
  for t in range(len(actions)):
    step = {k: v[t] for k, v in obs.items()}
    step.setdefault('reward', np.zeros(actions.shape[1], np.float32))
    step.setdefault('is_terminal', np.zeros(actions.shape[1], bool))
    action, state = agent.policy(step, state)
    latent = state[0]
    for key, value in latents.items():
      pairs.add('policy latents', f'{key}[{t}]', latent[key], value[t])
    ours = spec.action_dist(agent.ac.actor(latent))
    for key, value in params.items():
      pairs.add('policy action dist', f'{key}[{t}]', ours[key], value[t])
    pairs.add('policy actions', f'action[{t}]', action, actions[t])
  _check_used(draws, 'policy')
