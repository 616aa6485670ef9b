"""World model: encoder + RSSM + decoder, reward and continue heads (DreamerV3 eq. 4-5;
dreamerv3@8fa35f8 agent.WorldModel).

The representation objective is chosen by `representation`: `reconstruction` (the decoder's
image and vector log-likelihoods, V1-V3) or `prototypes` (DreamerPro, prototypes.py: no decoder;
two shifted views of every sequence, SwAV and temporal prototype losses, momentum encoder).
"""
import tensorflow as tf
import tf_keras as keras

from . import nets
from . import prototypes
from . import rssm as rssm_lib
from . import simple

sg = tf.stop_gradient


CLIP_REWARDS = {'identity': tf.identity, 'tanh': tf.tanh, 'sign': tf.sign}
REPRESENTATIONS = ('reconstruction', 'prototypes')
NETS = ('multi', 'simple')  # config encoder_typ / decoder_typ


def preprocess(data, clip_rewards='identity', cont_scale=1.0):
  """uint8 images -> float in [0, 1]; cont = cont_scale (1 - is_terminal) (agent.Agent.preprocess).

  DreamerV2 (WorldModel.preprocess) clips rewards (`clip_rewards`) and trains its discount head
  on gamma (1 - is_terminal) (`cont_head.discounted`, cont_scale = gamma). The V1/V2 -0.5 image
  offset lives in nets.KernelConvEncoder/Decoder.
  """
  out = {}
  for key, value in data.items():
    if value.dtype == tf.uint8 and len(value.shape) >= 4:
      out[key] = tf.cast(value, tf.float32) / 255.0
    else:
      out[key] = tf.cast(value, tf.float32)
  if clip_rewards not in CLIP_REWARDS:
    raise ValueError(f"Unknown clip_rewards '{clip_rewards}'. Valid: {', '.join(CLIP_REWARDS)}.")
  out['reward'] = CLIP_REWARDS[clip_rewards](out['reward'])
  out['cont'] = cont_scale * (1.0 - out['is_terminal'])
  return out


class WorldModel(keras.layers.Layer):

  def __init__(self, obs_shapes, action_dim, config):
    super().__init__()
    self.config = config
    if config.representation not in REPRESENTATIONS:
      raise ValueError(f"Unknown representation '{config.representation}'. "
                       f"Valid: {', '.join(REPRESENTATIONS)}.")
    for key in ('encoder_typ', 'decoder_typ'):
      if config[key] not in NETS:
        raise ValueError(f"Unknown {key} '{config[key]}'. Valid: {', '.join(NETS)}.")
    if config.encoder_typ == 'simple':
      make_encoder = lambda: simple.SimpleEncoder(obs_shapes, **config.simple_encoder.to_dict())
    else:
      make_encoder = lambda: nets.MultiEncoder(obs_shapes, **config.encoder.to_dict())
    self.encoder = make_encoder()
    self.rssm = rssm_lib.RSSM(action_dim, **config.rssm.to_dict())
    self.decoder = self.proto = None
    if config.representation == 'reconstruction' and config.decoder_typ == 'simple':
      self.decoder = simple.SimpleDecoder(obs_shapes, **config.simple_decoder.to_dict())
    elif config.representation == 'reconstruction':
      dec = config.decoder.to_dict()
      self.decoder = nets.MultiDecoder(obs_shapes, bins=config.reward_head.bins, **dec)
    else:
      self.proto = prototypes.Prototypes(make_encoder, **config.proto.to_dict())
    # Rows modelled per replay row: DreamerPro models two augmented views of each.
    self.views = 1 if self.proto is None else 2
    self.reward = nets.MLP((), **config.reward_head.to_dict())
    cont = config.cont_head.to_dict()
    self.discounted = cont.pop('discounted')
    # DreamerV1 `pcont: False` / DreamerV2 DMC `pred_discount: False` have no continue head.
    self.cont = nets.MLP((), **cont) if config.pred_cont else None
    self.heads = {'decoder': self.decoder, 'reward': self.reward, 'cont': self.cont}
    self.heads = {k: v for k, v in self.heads.items() if v is not None}
    for name in config.grad_heads:
      if name not in self.heads:
        raise ValueError(f"Unknown grad_heads entry '{name}'. Valid: {', '.join(self.heads)}.")
    scales = config.loss_scales
    self.scales = {'dyn': scales.dyn, 'rep': scales.rep, 'reward': scales.reward,
                   'cont': scales.cont}
    if self.decoder is not None:
      self.scales.update({k: scales.image for k in self.decoder.cnn_shapes})
      self.scales.update({k: scales.vector for k in self.decoder.mlp_shapes})
    else:
      self.scales.update({k: scales[k] for k in ('swav', 'temp', 'proj_norm')})

  @property
  def modules(self):
    """The layers the model optimiser trains (the momentum encoder is not trained)."""
    extra = [] if self.proto is None else [self.proto]
    return [self.encoder, self.rssm, *self.heads.values(), *extra]

  def after_update(self):
    """Runs after each model update: DreamerPro's momentum-encoder step."""
    if self.proto is not None:
      self.proto.update(self.encoder)

  def preprocess(self, data):
    discount = 1.0 - 1.0 / self.config.horizon
    return preprocess(data, self.config.clip_rewards, discount if self.discounted else 1.0)

  def loss(self, data, seed, context=None):
    """data: preprocessed batch (B, T, ...). Returns (scalar loss, posterior, metrics); the
    posterior has `views` B rows. `context` (replay_context): {'state': the latent to start
    from, 'action': a_{-1}} instead of the zero state and action."""
    if self.proto is not None:
      seed, seed_views = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      data = self.proto.views(data, seed_views, self.encoder.cnn_shapes)
    embed = self.encoder(data)  # (B, T, E)
    first = (tf.zeros_like(data['action'][:, :1]) if context is None
             else context['action'][:, None])
    prev_action = tf.concat([first, data['action'][:, :-1]], 1)
    post, prior = self.rssm.observe(embed, prev_action, data['is_first'], seed,
                                    None if context is None else context['state'])
    losses = {
        'dyn': self.rssm.dyn_loss(post, prior, **self.config.dyn_loss.to_dict()),
        'rep': self.rssm.rep_loss(post, prior, **self.config.rep_loss.to_dict()),
    }
    losses = {k: v for k, v in losses.items() if v is not None}
    dists = {}
    for name, head in self.heads.items():
      inputs = post if name in self.config.grad_heads else rssm_lib.sg_state(post)
      out = head(inputs)
      dists.update(out if isinstance(out, dict) else {name: out})
    for key, dist in dists.items():
      losses[key] = -dist.log_prob(data[key])  # (B, T)
    model_loss = tf.reduce_mean(tf.add_n([self.scales[k] * v for k, v in losses.items()]))
    metrics = {f'{k}_loss': tf.reduce_mean(v) for k, v in losses.items()}
    if self.proto is not None:  # scalars: means over the steps after the warm-up
      for key, value in self.proto.loss(data, embed, post).items():
        model_loss += self.scales[key] * value
        metrics[f'{key}_loss'] = value
    metrics['model_loss'] = model_loss
    metrics['prior_ent'] = tf.reduce_mean(self.rssm.get_dist(prior).entropy())
    metrics['post_ent'] = tf.reduce_mean(self.rssm.get_dist(post).entropy())
    metrics['reward_max_data'] = tf.reduce_max(tf.abs(data['reward']))
    metrics['reward_max_pred'] = tf.reduce_max(tf.abs(dists['reward'].mean()))
    return model_loss, post, metrics
