"""Actor-critic learning in imagination, by version (config key `behavior`):

- `dreamerv3`: DreamerV3 Sec. 3 (dreamerv3@8fa35f8 agent.ImagActorCritic, agent.VFunction,
  jaxutils.Moments, jaxutils.SlowUpdater): twohot critic, percentile return normaliser.
- `dreamerv2`: dreamerv2@07d906e agent.ActorCritic: unit-Normal critic, returns from the slow
  target critic, REINFORCE / dynamics / mixed actor gradients, entropy bonus.
- `dreamerv1`: dreamer@56d4d44 dreamer.py `_train`: the V2 objective with dynamics gradients and no
  entropy, the critic trained on the imagined states only; with a slow critic copied every
  update it is V1's online value network.
- `dreamerv3_2024`: the rewrite (dreamerv3@e3f0224 agent.py imag_loss, repl_loss): the V3
  objective with the continue head's probabilities as discounts (`contdisc`), no first-update
  copy of the slow critic, and the replay value loss `repval` (`ActorCritic2024`).
"""
import tensorflow as tf
import tf_keras as keras

from . import distribute
from . import distributions as dists
from . import nets
from . import rssm as rssm_lib

sg = tf.stop_gradient


def lambda_return(reward, value, cont, discount, lam):
  """DreamerV3 eq. 7, as VFunction.score.

  reward (H, N): r_1..r_H; value (H + 1, N): v_0..v_H; cont (H + 1, N): c_0..c_H.
  R_t = r_{t+1} + gamma c_{t+1} ((1 - lam) v_{t+1} + lam R_{t+1}),  R_H = v_H.
  Returns R_0..R_{H-1} (H, N).
  """
  disc = cont[1:] * discount
  interm = reward + disc * value[1:] * (1.0 - lam)
  horizon = reward.shape[0]
  returns = [value[-1]]
  for t in reversed(range(horizon)):
    returns.append(interm[t] + disc[t] * lam * returns[-1])
  return tf.stack(returns[::-1][:-1])


class Moments(keras.layers.Layer):
  """Return normaliser `perc_ema`: EMA of the 5th and 95th return percentiles (DreamerV3 eq. 12).

  Returns (offset, scale) with scale = max(1 / max, hi - lo), i.e. max(1, S) for max = 1.
  """

  def __init__(self, impl='perc_ema', decay=0.99, max=1.0, perclo=5.0, perchi=95.0):
    super().__init__(dtype='float32')
    if impl != 'perc_ema':
      raise ValueError(f"Unknown retnorm.impl '{impl}'. Valid: perc_ema.")
    self.decay, self.max, self.perclo, self.perchi = decay, max, perclo, perchi
    self.low = self.add_weight('low', (), tf.float32, 'zeros', trainable=False)
    self.high = self.add_weight('high', (), tf.float32, 'zeros', trainable=False)

  def update(self, x):
    # Percentiles over the global batch: every replica's returns (distribute.py).
    x = distribute.gather(tf.reshape(sg(tf.cast(x, tf.float32)), [-1]))
    self.low.assign(self.decay * self.low + (1 - self.decay) * percentile(x, self.perclo))
    self.high.assign(self.decay * self.high + (1 - self.decay) * percentile(x, self.perchi))

  def stats(self):
    scale = tf.maximum(1.0 / self.max, self.high - self.low)
    return sg(tf.identity(self.low)), sg(scale)


def percentile(x, q):
  """Linear-interpolation percentile of a flat tensor (numpy/jnp.percentile default)."""
  x = tf.sort(x)
  pos = (q / 100.0) * tf.cast(tf.size(x) - 1, tf.float32)
  lo = tf.cast(tf.floor(pos), tf.int32)
  hi = tf.minimum(lo + 1, tf.size(x) - 1)
  frac = pos - tf.floor(pos)
  return tf.gather(x, lo) * (1.0 - frac) + tf.gather(x, hi) * frac


class ActorCritic(keras.layers.Layer):
  """DreamerV3 actor-critic."""

  GRADS = ('reinforce', 'backprop')  # gradients through the imagined rollout: 'backprop'
  # The official slow critic starts as its own random init, overwritten by a copy after the
  # first update; the copy from the start gives the same outputs (zero-initialised output
  # layer) and is kept (README Deviations).
  slow_starts_as_copy = True
  slow_copy_at_first_update = True  # SlowUpdater: mix 1 at the first update
  draws = dists.Draws()  # randomness of the actor's samples (site 'action'); see Draws

  def __init__(self, action_shape, discrete, config):
    super().__init__()
    self.config, self.discrete = config, discrete
    self.grad = config.actor_grad_disc if discrete else config.actor_grad_cont
    if self.grad not in self.GRADS:
      raise ValueError(f"Unknown actor gradient '{self.grad}' for behavior {config.behavior}. "
                       f"Valid: {', '.join(self.GRADS)}.")
    actor_kw = config.actor.to_dict()
    self.dist_name = config.actor_dist_disc if discrete else config.actor_dist_cont
    if not discrete:
      actor_kw.pop('unimix')
    self.actor = nets.MLP(action_shape, dist=self.dist_name, **actor_kw)
    self.critic = nets.MLP((), **config.critic.to_dict())
    self.slow_critic = nets.MLP((), **config.critic.to_dict())
    self.slow_updates = self.add_weight('slow_updates', (), tf.int64, 'zeros', trainable=False)
    self.discount = 1.0 - 1.0 / config.horizon
    self._setup(action_shape)

  def _setup(self, action_shape):
    self.retnorm = Moments(**self.config.retnorm.to_dict())
    self.entropy_bounds = dists.entropy_bounds(
        self.dist_name, action_shape, self.config.actor.minstd, self.config.actor.maxstd)

  @property
  def rollout_grads(self):
    """Whether the actor loss differentiates through the imagined rollout."""
    return self.grad in ('backprop', 'dynamics', 'both')

  def policy(self, state, seed):
    return self.draws.sample('action', self.actor(rssm_lib.sg_state(state)), seed)

  def imagine(self, wm, start, seed):
    """Imagined trajectory (H + 1, N) with rewards, continues and weights (WorldModel.imagine)."""
    first_cont = 1.0 - tf.cast(start['is_terminal'], tf.float32)
    traj = wm.rssm.imagine(start, self.policy, self.config.imag_horizon, seed)
    cont = wm.cont(traj).mode()
    traj['cont'] = tf.concat([first_cont[None], cont[1:]], 0)
    traj['weight'] = tf.math.cumprod(self.discount * traj['cont'], 0) / self.discount
    traj['reward'] = wm.reward(traj).mean()[1:]
    return traj

  def score(self, traj):
    """Lambda returns R_0..R_{H-1}, the critic baseline v_0..v_{H-1} and the critic's
    distribution on all H + 1 states."""
    dist = self.critic(traj)
    value = dist.mean()
    ret = lambda_return(traj['reward'], value, traj['cont'], self.imag_discount,
                        self.config.return_lambda)
    return ret, value[:-1], dist

  @property
  def imag_discount(self):
    """The discount of imagined returns on top of the continue predictions."""
    return self.discount

  def actor_loss(self, traj):
    """Returns (loss, targets, metrics); targets carry the returns and the critic's
    distribution, which critic_loss reuses (one critic pass per update)."""
    ret, base, value = self.score(traj)
    self.retnorm.update(ret)
    offset, scale = self.retnorm.stats()
    adv = self._advantage(ret, base, offset, scale)
    policy = self.actor(rssm_lib.sg_state(traj))
    logpi = policy.log_prob(sg(traj['action']))[:-1]
    loss = {'backprop': lambda: -adv, 'reinforce': lambda: -logpi * sg(adv)}[self.grad]()
    ent = policy.entropy()[:-1]
    loss -= self.config.actent * ent
    loss *= sg(traj['weight'])[:-1]
    lo, hi = self.entropy_bounds
    metrics = {
        'actor_loss': tf.reduce_mean(loss), 'adv_mean': tf.reduce_mean(adv),
        'policy_entropy': tf.reduce_mean(ent),
        'policy_randomness': tf.reduce_mean((ent - lo) / (hi - lo)),
        'return_raw': tf.reduce_mean(ret), 'return_normed': tf.reduce_mean((ret - offset) / scale),
        'retnorm_low': offset, 'retnorm_scale': scale,
        'imag_reward': tf.reduce_mean(traj['reward']),
    }
    targets = {'ret': ret, 'value': value}
    return self.config.loss_scales.actor * tf.reduce_mean(loss), targets, metrics

  def _advantage(self, ret, base, offset, scale):
    """Normalised advantage (DreamerV3 eq. 12), written as behaviors.ImagActorCritic does."""
    return (ret - offset) / scale - (base - offset) / scale

  def critic_loss(self, traj, targets):
    """Twohot critic on s_0..s_{H-1} towards the lambda return, regularised towards the slow
    critic's mean. The critic's distribution on s_0..s_H comes from actor_loss (`targets`); its
    row H gets a placeholder target and is dropped."""
    if self.config.critic_slowreg != 'logprob':
      raise ValueError(f"Unknown critic_slowreg '{self.config.critic_slowreg}'. Valid: logprob.")
    dist = targets['value']
    states = {k: v[:-1] for k, v in traj.items() if k != 'reward'}
    pad = lambda x: tf.concat([sg(x), sg(x[-1:])], 0)
    loss = -dist.log_prob(pad(targets['ret']))[:-1]
    slow = self.slow_critic(states).mean()
    loss += self.config.loss_scales.slowreg * -dist.log_prob(pad(slow))[:-1]
    loss = tf.reduce_mean(loss * sg(states['weight']))
    metrics = {'critic_loss': loss, 'critic_value': tf.reduce_mean(dist.mean()[:-1])}
    return self.config.loss_scales.critic * loss, metrics

  def update_slow(self):
    """slow <- mix * critic + (1 - mix) * slow, mix = fraction every `slow_critic_update`-th
    update counting from the first; 1 at the first update with slow_copy_at_first_update
    (SlowUpdater; the rewrite's embodied.jax.SlowModel.update has no such copy)."""
    n = self.slow_updates
    need_init = tf.cast(tf.equal(n, 0), tf.float32) if self.slow_copy_at_first_update else 0.0
    need_update = tf.cast(tf.equal(n % self.config.slow_critic_update, 0), tf.float32)
    mix = tf.clip_by_value(need_init + self.config.slow_critic_fraction * need_update, 0.0, 1.0)
    for src, dst in zip(self.critic.weights, self.slow_critic.weights):
      dst.assign(mix * src + (1.0 - mix) * dst)
    self.slow_updates.assign_add(1)


def replay_return(is_last, is_terminal, reward, boot, discount, lam):
  """Lambda returns along replayed sequences (B, T) (dreamerv3@e3f0224 agent.lambda_return with
  the replay's is_last, is_terminal, reward and `boot`, the imagined return from each state):
      R_t = r_{t+1} + g_{t+1} ((1 - c_{t+1}) boot_{t+1} + c_{t+1} R_{t+1}),  R_{T-1} = boot_{T-1}
  with g_t = discount (1 - is_terminal_t) and c_t = lam (1 - is_last_t). Returns R_0..R_{T-2}."""
  live = (1.0 - tf.cast(is_terminal, tf.float32))[:, 1:] * discount
  cont = (1.0 - tf.cast(is_last, tf.float32))[:, 1:] * lam
  interm = reward[:, 1:] + (1.0 - cont) * live * boot[:, 1:]
  returns = [boot[:, -1]]
  for t in reversed(range(live.shape[1])):
    returns.append(interm[:, t] + live[:, t] * cont[:, t] * returns[-1])
  return tf.stack(returns[::-1][:-1], 1)


class ActorCritic2024(ActorCritic):
  """The rewrite's actor-critic (dreamerv3@e3f0224 agent.Agent.loss, imag_loss, repl_loss).

  Differences from the 2023 objective: the continue head is trained on gamma (1 - is_terminal)
  (`contdisc`, cont_head.discounted) and its probabilities on every imagined state, the start
  state included, are the discounts of the returns and the weights, w_t = c_0 ... c_t; the
  advantage is (R_t - v_t) / S; the slow critic starts as a copy of the critic and mixes in
  `slow_critic_fraction` from the first update. `replay_value_loss` adds the critic's loss on
  the replayed posterior states towards returns bootstrapped from the imagined ones; its
  gradients reach the world model. The agent trains all of it as one loss (update_order
  one_loss) with one optimiser.
  """

  GRADS = ('reinforce',)  # imag_loss: the rewrite's actor is REINFORCE for every action space

  def imagine(self, wm, start, seed):
    traj = wm.rssm.imagine(start, self.policy, self.config.imag_horizon, seed)
    traj['cont'] = wm.cont(traj).mean()  # con.prob(1)
    traj['weight'] = tf.math.cumprod(traj['cont'], 0)
    traj['reward'] = wm.reward(traj).mean()[1:]
    return traj

  imag_discount = 1.0  # contdisc: the continue probabilities carry the discount
  slow_copy_at_first_update = False

  def _advantage(self, ret, base, offset, scale):
    del offset
    return (ret - base) / scale

  def replay_value_loss(self, post, data, ret):
    """repl_loss: the critic on the replayed posterior (B, T) towards replay_return bootstrapped
    with the imagined returns R_0 of each start state (`ret` (H, B * T)), regularised towards the
    slow critic, weighted by 1 - is_last, over t = 0..T-2."""
    dist = self.critic(post)
    lead = tf.shape(data['reward'])
    boot = tf.reshape(sg(ret[0]), lead)
    target = replay_return(data['is_last'], data['is_terminal'], data['reward'], boot,
                           self.discount, self.config.return_lambda)
    pad = lambda x: tf.concat([sg(x), tf.zeros_like(x[:, -1:])], 1)
    loss = -dist.log_prob(pad(target))
    slow = self.slow_critic(rssm_lib.sg_state(post)).mean()
    loss += self.config.loss_scales.slowreg * -dist.log_prob(sg(slow))
    weight = 1.0 - tf.cast(data['is_last'], tf.float32)
    loss = tf.reduce_mean((weight * loss)[:, :-1])
    metrics = {'repval_loss': loss, 'repval_return': tf.reduce_mean(target)}
    return self.config.loss_scales.repval * loss, metrics


class ActorCriticV2(ActorCritic):
  """DreamerV2 actor-critic (dreamerv2@07d906e agent.ActorCritic, WorldModel.imagine).

  Alignment of the imagined trajectory s_0..s_H (s_0 a replay posterior): r_t, v_t and the
  discount d_t are predicted from s_t; the action taken in s_t is `action[t]` here (the original
  stores it at t + 1). d_0 = gamma (1 - is_terminal_0), later d_t = gamma or the discount head's
  mean; weights w_t = d_0 ... d_{t-1}. Returns use the slow critic:
      R_t = r_t + d_t ((1 - lambda) v_{t+1} + lambda R_{t+1}),   R_H = v_H.
  The actor maximises sum_t w_t (objective_t + eta H[pi(.|s_t)]) over t = 0..H-2 with
  objective_t = R_{t+1} (dynamics) or log pi(a_t|s_t) sg(R_{t+1} - v_t) (reinforce), or their
  mix (both, `actor_grad_mix`); the critic regresses v(s_t) on R_t with weights w_t.
  With `actor_from_start` (dreamerv2@e783832, the base of DreamerPro: dreamer-pro@809b417
  agent.ActorCritic.actor_loss) the actor covers t = 0..H-1 with objective_t = R_t, and the
  REINFORCE baseline v_t is the online critic's.
  """

  GRADS = ('dynamics', 'reinforce', 'both')
  # dreamerv2 ActorCritic: the slow target is its own random init until update_slow_target
  # copies the critic after update 0, so update 0's returns come from an untrained other net.
  slow_starts_as_copy = False

  def _setup(self, action_shape):
    """No return normaliser (V2's reward StreamNorm with momentum 1 is the identity)."""

  def imagine(self, wm, start, seed):
    first = self.discount * (1.0 - tf.cast(start['is_terminal'], tf.float32))
    traj = wm.rssm.imagine(start, self.policy, self.config.imag_horizon, seed)
    if wm.cont is not None:  # `pred_discount`: the head is trained on gamma (1 - is_terminal)
      disc = tf.concat([first[None], wm.cont(traj).mean()[1:]], 0)
    else:
      disc = self.discount * tf.ones_like(traj['deter'][..., 0])
    traj['disc'] = disc
    traj['weight'] = tf.math.cumprod(tf.concat([tf.ones_like(disc[:1]), disc[:-1]], 0), 0)
    traj['reward'] = wm.reward(traj).mode()
    return traj

  def target(self, traj):
    """R_0..R_{H-1} (H, N) and the slow critic's values v_0..v_H."""
    value = self.slow_critic(traj).mode()
    # lambda_return(reward, value, cont, 1, lam) computes r[t] + cont[t + 1] (...): d_t = cont[t+1].
    cont = tf.concat([tf.ones_like(traj['disc'][:1]), traj['disc'][:-1]], 0)
    ret = lambda_return(traj['reward'][:-1], value, cont, 1.0, self.config.return_lambda)
    return ret, value

  def actor_loss(self, traj):
    ret, value = self.target(traj)
    from_start = self.config.actor_from_start
    steps = ret.shape[0] - (0 if from_start else 1)  # actor states s_0..s_{steps-1}
    head = {k: v[:steps] for k, v in traj.items()}
    policy = self.actor(rssm_lib.sg_state(head))
    target = ret if from_start else ret[1:]
    adv = sg(target - (self.critic(head).mode() if from_start else value[:steps]))
    metrics = {}
    if self.grad == 'dynamics':
      objective = target
    else:
      action = head['action'] if self.grad == 'both' else sg(head['action'])
      objective = policy.log_prob(action) * adv
      if self.grad == 'both':
        mix = self.config.actor_grad_mix
        objective = mix * target + (1.0 - mix) * objective
    if self.config.actent:
      ent = policy.entropy()
      objective += self.config.actent * ent
      metrics['policy_entropy'] = tf.reduce_mean(ent)
    loss = -tf.reduce_mean(sg(traj['weight'][:steps]) * objective)
    metrics.update({
        'actor_loss': loss, 'adv_mean': tf.reduce_mean(adv), 'return_raw': tf.reduce_mean(ret),
        'critic_slow': tf.reduce_mean(value), 'imag_reward': tf.reduce_mean(traj['reward'])})
    return self.config.loss_scales.actor * loss, {'ret': ret}, metrics

  def _critic_terms(self, traj, target):
    """States, targets and weights the critic trains on: s_0..s_{H-1}, R_t, w_t."""
    return {k: v[:-1] for k, v in traj.items()}, target, traj['weight'][:-1]

  def critic_loss(self, traj, targets):
    states, target, weight = self._critic_terms(traj, targets['ret'])
    dist = self.critic(states)
    loss = -tf.reduce_mean(dist.log_prob(sg(target)) * sg(weight))
    metrics = {'critic_loss': loss, 'critic_value': tf.reduce_mean(dist.mode())}
    return self.config.loss_scales.critic * loss, metrics


class ActorCriticV1(ActorCriticV2):
  """DreamerV1 value learning (dreamer@56d4d44 dreamer.py `_train`): imagination starts are not
  trained on, v(s_t), t = 1..H-1, regresses R_t with the actor's weights w_{t-1} = gamma^(t-1).
  The returns come from the value net itself (the slow critic is its copy after every update)."""

  slow_starts_as_copy = True

  def _critic_terms(self, traj, target):
    return {k: v[1:-1] for k, v in traj.items()}, target[1:], traj['weight'][:-2]


BEHAVIORS = {'dreamerv3': ActorCritic, 'dreamerv2': ActorCriticV2, 'dreamerv1': ActorCriticV1,
             'dreamerv3_2024': ActorCritic2024}


def make(action_shape, discrete, config):
  if config.behavior not in BEHAVIORS:
    raise ValueError(f"Unknown behavior '{config.behavior}'. Valid: {', '.join(BEHAVIORS)}.")
  return BEHAVIORS[config.behavior](action_shape, discrete, config)
