"""World model: encoder + RSSM + decoder, reward and continue heads (DreamerV3 eq. 4-5;
dreamerv3@8fa35f8 agent.WorldModel)."""
import tensorflow as tf
import tf_keras as keras

from . import nets
from . import rssm as rssm_lib

sg = tf.stop_gradient


def preprocess(data):
  """uint8 images -> float in [0, 1]; cont = 1 - is_terminal (agent.Agent.preprocess)."""
  out = {}
  for key, value in data.items():
    if value.dtype == tf.uint8 and len(value.shape) >= 4:
      out[key] = tf.cast(value, tf.float32) / 255.0
    else:
      out[key] = tf.cast(value, tf.float32)
  out['cont'] = 1.0 - out['is_terminal']
  return out


class WorldModel(keras.layers.Layer):

  def __init__(self, obs_shapes, action_dim, config):
    super().__init__()
    self.config = config
    self.encoder = nets.MultiEncoder(obs_shapes, **config.encoder.to_dict())
    self.rssm = rssm_lib.RSSM(action_dim, **config.rssm.to_dict())
    dec = config.decoder.to_dict()
    self.decoder = nets.MultiDecoder(obs_shapes, bins=config.reward_head.bins, **dec)
    self.reward = nets.MLP((), **config.reward_head.to_dict())
    self.cont = nets.MLP((), **config.cont_head.to_dict())
    self.heads = {'decoder': self.decoder, 'reward': self.reward, 'cont': self.cont}
    for name in config.grad_heads:
      if name not in self.heads:
        raise ValueError(f"Unknown grad_heads entry '{name}'. Valid: {', '.join(self.heads)}.")
    scales = config.loss_scales
    self.scales = {'dyn': scales.dyn, 'rep': scales.rep, 'reward': scales.reward,
                   'cont': scales.cont}
    self.scales.update({k: scales.image for k in self.decoder.cnn_shapes})
    self.scales.update({k: scales.vector for k in self.decoder.mlp_shapes})

  def loss(self, data, seed):
    """data: preprocessed batch (B, T, ...). Returns (scalar loss, posterior, metrics)."""
    embed = self.encoder(data)  # (B, T, E)
    prev_action = tf.concat([tf.zeros_like(data['action'][:, :1]), data['action'][:, :-1]], 1)
    post, prior = self.rssm.observe(embed, prev_action, data['is_first'], seed)
    losses = {
        'dyn': self.rssm.dyn_loss(post, prior, **self.config.dyn_loss.to_dict()),
        'rep': self.rssm.rep_loss(post, prior, **self.config.rep_loss.to_dict()),
    }
    dists = {}
    for name, head in self.heads.items():
      inputs = post if name in self.config.grad_heads else rssm_lib.sg_state(post)
      out = head(inputs)
      dists.update(out if isinstance(out, dict) else {name: out})
    for key, dist in dists.items():
      losses[key] = -dist.log_prob(data[key])  # (B, T)
    model_loss = tf.add_n([self.scales[k] * v for k, v in losses.items()])
    metrics = {f'{k}_loss': tf.reduce_mean(v) for k, v in losses.items()}
    metrics['model_loss'] = tf.reduce_mean(model_loss)
    metrics['prior_ent'] = tf.reduce_mean(self.rssm.get_dist(prior).entropy())
    metrics['post_ent'] = tf.reduce_mean(self.rssm.get_dist(post).entropy())
    metrics['reward_max_data'] = tf.reduce_max(tf.abs(data['reward']))
    metrics['reward_max_pred'] = tf.reduce_max(tf.abs(dists['reward'].mean()))
    return tf.reduce_mean(model_loss), post, metrics
