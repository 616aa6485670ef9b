"""The 2024 rewrite's `simple` encoder and decoder (dreamerv3@e3f0224 dreamerv3/rssm.py Encoder,
Decoder; `enc.simple`, `dec.simple` in its configs.yaml), the `simple` choices of config keys
`encoder_typ` / `decoder_typ` (config blocks `simple_encoder`, `simple_decoder`).

Images: stages of depth `depth * mults[i]`, each a kernel-`kernel` convolution at stride 1 then a
2x2 max-pool (`strided`: a stride-2 convolution instead), rms norm and activation; the decoder
mirrors them with nearest-neighbour upsampling. Vectors: symlog, then an MLP. Every Linear and
convolution has a bias; initialisers are truncated normals over the fan-in (`winit`, `fan`).
"""
import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import distributions as dists
from . import nets


def _conv(depth, kernel, stride, winit, fan, outscale=1.0):
  """Conv2D 'same' with a bias; `outscale` multiplies the initial weights (its square the
  variance), as the rewrite's Conv2D._scaled_winit."""
  return keras.layers.Conv2D(depth, kernel, stride, 'same',
                             kernel_initializer=nets.initializer(winit, fan, outscale ** 2))


def _upsample(x):
  """x.repeat(2, -2).repeat(2, -3): nearest-neighbour upsampling by 2."""
  return tf.repeat(tf.repeat(x, 2, 1), 2, 2)


def _transposed(x):
  """The rewrite's stride-2 transposed convolution input (Conv2D with `transp`): upsampled,
  then every pixel zeroed except those at odd rows and columns, for a stride-1 convolution."""
  x = _upsample(x)
  keep = lambda n: tf.cast(tf.range(n) % 2 == 1, x.dtype)
  return x * (keep(x.shape[1])[:, None] * keep(x.shape[2])[None, :])[None, :, :, None]


def _minres(size, stages):
  res = size // 2 ** stages
  if res * 2 ** stages != size or not 3 <= res <= 16:
    raise ValueError(f'Image size {size} does not reduce to 3..16 pixels after {stages} halvings '
                     '(simple encoder: len(mults) stages, one fewer with outer).')
  return res


class SimpleEncoder(keras.layers.Layer):
  """Observations (B, T, ...) -> tokens (B, T, E): [vector MLP output, flattened image maps]."""

  def __init__(self, shapes, cnn_keys, mlp_keys, depth, mults, layers, units, act, norm, winit,
               fan, symlog, kernel, strided, outer):
    super().__init__()
    self.cnn_shapes, self.mlp_shapes = nets.split_keys(shapes, cnn_keys, mlp_keys)
    if not self.cnn_shapes and not self.mlp_shapes:
      raise ValueError(
          f'No observation matches simple_encoder.cnn_keys={cnn_keys!r} (images) or '
          f'simple_encoder.mlp_keys={mlp_keys!r} (vectors); observation space: {shapes}.')
    # DictConcat and the image concatenation order the keys by name.
    self.cnn_shapes = dict(sorted(self.cnn_shapes.items()))
    self.mlp_shapes = dict(sorted(self.mlp_shapes.items()))
    self.symlog, self.strided, self.outer = symlog, strided, outer
    self.act = nets.get_act(act)
    self.mlp = [nets.Linear(units, act, norm, winit, fan, bias=True) for _ in range(layers)]
    self.convs, self.norms = [], []
    if self.cnn_shapes:
      size = list(self.cnn_shapes.values())[0][0]
      _minres(size, len(mults) - int(outer))
      for i, mult in enumerate(mults):
        stride = 2 if strided and not (outer and i == 0) else 1
        self.convs.append(_conv(depth * mult, kernel, stride, winit, fan))
        self.norms.append(nets.Norm(norm))
    self.norm_acts = [nets.NormAct(n, self.act, c.filters, self.compute_dtype)
                      for n, c in zip(self.norms, self.convs)]

  def call(self, obs):
    some = next(iter({**self.cnn_shapes, **self.mlp_shapes}))
    lead = tf.shape(obs[some])[:2]
    outs = []
    if self.mlp_shapes:
      x = tf.concat([tf.reshape(tf.cast(obs[k], tf.float32), tf.concat([lead, [-1]], 0))
                     for k in self.mlp_shapes], -1)
      x = dists.symlog_log1p(x) if self.symlog else x
      x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, x.shape[-1]])
      for layer in self.mlp:
        x = layer(x)
      outs.append(tf.cast(x, tf.float32))
    if self.cnn_shapes:
      x = tf.concat([obs[k] for k in self.cnn_shapes], -1)  # in [0, 1] (preprocess)
      x = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
      x = tf.cast(x, self.compute_dtype) - 0.5
      for i, (conv, norm_act) in enumerate(zip(self.convs, self.norm_acts)):
        x = conv(x)
        if not self.strided and not (self.outer and i == 0):
          x = tf.nn.max_pool2d(x, 2, 2, 'VALID')
        x = norm_act(x)
      outs.append(tf.cast(tf.reshape(x, [tf.shape(x)[0], np.prod(x.shape[1:])]), tf.float32))
    x = tf.concat(outs, -1)
    return tf.reshape(x, tf.concat([lead, [x.shape[-1]]], 0))


class SimpleDecoder(keras.layers.Layer):
  """Latent state (B, T, ...) -> {key: distribution}: images through `bspace` block-diagonal maps
  from h_t plus an MLP from z_t to the smallest feature map, then upsampling convolutions and a
  sigmoid (MSE summed over pixels); vectors through an MLP on [z_t, h_t], symlog MSE."""

  def __init__(self, shapes, cnn_keys, mlp_keys, depth, mults, layers, units, act, norm, winit,
               fan, outscale, kernel, bspace, strided, outer, symlog):
    super().__init__()
    self.cnn_shapes, self.mlp_shapes = nets.split_keys(shapes, cnn_keys, mlp_keys)
    self.cnn_shapes = dict(sorted(self.cnn_shapes.items()))
    self.mlp_shapes = dict(sorted(self.mlp_shapes.items()))
    self.symlog, self.strided, self.outer, self.bspace = symlog, strided, outer, bspace
    self.act = nets.get_act(act)
    self.depths = [depth * m for m in mults]
    if self.mlp_shapes:
      self.mlp = [nets.Linear(units, act, norm, winit, fan, bias=True) for _ in range(layers)]
      self.vec = [keras.layers.Dense(int(np.prod(s)), kernel_initializer=nets.initializer(
          winit, fan, outscale ** 2)) for s in self.mlp_shapes.values()]
    if self.cnn_shapes:
      size = list(self.cnn_shapes.values())[0][:2]
      res = _minres(size[0], len(self.depths) - int(outer))
      self.space = (res, res, self.depths[-1])
      channels = int(np.prod(self.space))
      if bspace:  # h through block-diagonal maps, z through an MLP (sp1) into sp2
        self.sp0 = nets.BlockLinear(channels, bspace, winit, fan)
        self.sp1 = nets.Linear(2 * units, act, norm, winit, fan, bias=True)
      self.sp2 = keras.layers.Dense(channels, kernel_initializer=nets.initializer(winit, fan))
      self.norms = [nets.Norm(norm) for _ in self.depths]  # spnorm, then one per conv
      self.spnorm = nets.NormAct(self.norms[0], self.act, self.depths[-1], self.compute_dtype)
      self.convs = [_conv(d, kernel, 1, winit, fan) for d in reversed(self.depths[:-1])]
      self.norm_acts = [nets.NormAct(n, self.act, c.filters, self.compute_dtype)
                        for n, c in zip(self.norms[1:], self.convs)]
      self.channels = sum(v[-1] for v in self.cnn_shapes.values())
      self.imgout = _conv(self.channels, kernel, 1, winit, fan, outscale)

  def call(self, state):
    lead = tf.shape(state['deter'])[:-1]
    flat = lambda x, n: tf.reshape(tf.cast(x, self.compute_dtype), [-1, n])
    deter = flat(state['deter'], state['deter'].shape[-1])
    stoch = flat(state['stoch'], int(np.prod(state['stoch'].shape[-2:])))  # (stoch, classes)
    out = {}
    if self.mlp_shapes:
      x = tf.concat([stoch, deter], -1)
      for layer in self.mlp:
        x = layer(x)
      for (key, shape), layer in zip(self.mlp_shapes.items(), self.vec):
        pred = tf.reshape(tf.cast(layer(x), tf.float32), tf.concat([lead, shape], 0))
        out[key] = (dists.SymlogMSE(pred, len(shape), 0.0, dists.symlog_log1p) if self.symlog
                    else dists.MSE(pred, len(shape)))
    if self.cnn_shapes:
      out.update(self._images(deter, stoch, lead))
    return out

  def _images(self, deter, stoch, lead):
    h, w, c = self.space
    if self.bspace:  # '... (g h w c) -> ... h w (g c)'
      g = self.bspace
      x0 = tf.reshape(self.sp0(deter), [-1, g, h, w, c // g])
      x0 = tf.reshape(tf.transpose(x0, [0, 2, 3, 1, 4]), [-1, h, w, c])
      x1 = tf.reshape(self.sp2(self.sp1(stoch)), [-1, h, w, c])
      x = self.spnorm(x0 + x1)
    else:
      x = self.spnorm(tf.reshape(self.sp2(tf.concat([stoch, deter], -1)), [-1, h, w, c]))
    for conv, norm_act in zip(self.convs, self.norm_acts):
      x = norm_act(conv(_transposed(x) if self.strided else _upsample(x)))
    if not self.outer:
      x = _transposed(x) if self.strided else _upsample(x)
    x = tf.sigmoid(tf.cast(self.imgout(x), tf.float32))
    x = tf.reshape(x, tf.concat([lead, tf.shape(x)[1:]], 0))
    splits = [v[-1] for v in self.cnn_shapes.values()]
    return {k: dists.MSE(v, 3) for k, v in zip(self.cnn_shapes, tf.split(x, splits, -1))}
