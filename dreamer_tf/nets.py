"""Networks of DreamerV3 (dreamerv3@8fa35f8 nets.py): Linear blocks, MLP heads, CNN encoder/decoder.

Layers are Keras 2 (tf_keras) layers. The compute dtype follows the Keras global policy set by
`precision()`; layer norm and every distribution are float32 islands.
"""
import contextlib
import pathlib
import re

import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import distributions as dists

POLICIES = {'float32': 'float32', 'float16': 'mixed_float16', 'bfloat16': 'mixed_bfloat16'}


@contextlib.contextmanager
def precision(name):
  """Builds layers under the Keras mixed-precision policy for `name` (config `precision`)."""
  if name not in POLICIES:
    raise ValueError(f"Unknown precision '{name}'. Valid: {', '.join(POLICIES)}.")
  old = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(POLICIES[name])
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(old)


def native_bfloat16(cpuinfo='/proc/cpuinfo'):
  """Whether `precision: bfloat16` has hardware behind it: a GPU, or a CPU whose flags name
  bfloat16 instructions (avx512_bf16, amx_bf16). Without them oneDNN emulates bfloat16 and the
  update runs several times slower than float32 (README, Performance). None where the flags
  cannot be read (not Linux)."""
  if tf.config.list_physical_devices('GPU'):
    return True
  try:
    flags = pathlib.Path(cpuinfo).read_text()
  except OSError:
    return None
  return bool(re.search(r'\b(avx512_bf16|amx_bf16)\b', flags))


def initializer(winit='uniform', fan='avg', scale=1.0):
  """dreamerv3 nets.Initializer: variance scaling by fan; `normal` is truncated to 2 std."""
  if scale == 0.0:
    return keras.initializers.Zeros()
  dist = {'normal': 'truncated_normal', 'uniform': 'uniform'}[winit]
  mode = {'avg': 'fan_avg', 'in': 'fan_in', 'out': 'fan_out'}[fan]
  return keras.initializers.VarianceScaling(scale, mode, dist)


def get_act(name):
  if name == 'none':
    return tf.identity
  if name in ('silu', 'elu', 'relu', 'tanh', 'sigmoid'):
    return getattr(tf.nn, name)
  raise ValueError(f"Unknown activation '{name}'. Valid: none, silu, elu, relu, tanh, sigmoid.")


class Norm(keras.layers.Layer):
  """Normalisation over the last axis in float32: `layer` norm with eps 1e-3 (dreamerv3@8fa35f8
  nets.Norm, jax.nn.standardize) or `rms` norm x / sqrt(mean(x^2) + 1e-4) * scale, with a scale
  and no shift (the 2024 rewrite, dreamerv3@e3f0224 embodied/jax/nets.Norm impl 'rms')."""

  KINDS = ('none', 'layer', 'rms')
  EPS = {'layer': 1e-3, 'rms': 1e-4}  # NormAct normalises with the same

  def __init__(self, impl, **kw):
    super().__init__(dtype='float32', **kw)
    if impl not in self.KINDS:
      raise ValueError(f"Unknown norm '{impl}'. Valid: {', '.join(self.KINDS)}.")
    self.impl = impl
    self.ln = None
    if impl == 'layer':
      self.ln = keras.layers.LayerNormalization(epsilon=self.EPS['layer'], dtype='float32')
    self.scale = None

  def build(self, input_shape):
    if self.impl == 'rms' and self.scale is None:
      self.scale = self.add_weight('scale', (input_shape[-1],), tf.float32, 'ones')
    super().build(input_shape)

  def call(self, x):
    if self.impl == 'rms':
      return x * (tf.math.rsqrt(tf.reduce_mean(tf.square(x), -1, keepdims=True)
                                + self.EPS['rms']) * self.scale)
    return x if self.ln is None else self.ln(x)

  def build_for(self, shape):
    """Creates the scale and offset for inputs of `shape` before a call (`NormAct` reads them
    directly, inside its custom gradient, where no variable can be created)."""
    if self.ln is not None and not self.ln.built:
      self.ln.build(tf.TensorShape(shape))
    if not self.built:
      self.build(tf.TensorShape(shape))


class NormAct:
  """act(norm(x)) of a conv stage (N, H, W, channels), or conv(act(norm(x))) with the next conv
  of the stack, with one hand-written backward pass: it keeps only the normalised input x^ and
  1/std (the conv output, the norm's output and the activation, which the next conv's filter
  gradient needs, are not kept) and recomputes the scale, shift and activation from x^, then
  g_x = (g' - mean(g') - x^ mean(g' x^)) / std with g' = act'(.) g * scale (layer norm; rms
  norm: no mean terms). Over the N x 32 x 32 x C maps of the image encoder and decoder, the
  encoder + decoder step of tests/test_agent.py peaks at 0.6x autodiff's tensor memory, the XS
  update at 1.15 GB (1.51 GB keeping the activations), 9% faster than `tf.recompute_grad`
  (bfloat16: 11-14%; README, Performance). Values match autodiff's to float32 rounding
  (tests/test_agent.py, tests/official)."""

  def __init__(self, norm, act, channels, dtype, then=None):
    """then: the stack's next conv (keras Conv2D or Conv2DTranspose, 'same' padding), applied
    inside; built here for `channels` inputs."""
    norm.build_for([None, None, None, channels])
    self.norm, self.act, self.dtype, self.then = norm, act, dtype, then
    if then is not None and not then.built:
      then.build(tf.TensorShape([None, None, None, channels]))

  def __call__(self, x):
    norm, then = self.norm, self.then
    conv = []  # the next conv's kernel, read outside as the norm's weights
    if then is not None:
      conv = [tf.cast(tf.convert_to_tensor(then.kernel), self.dtype)]
    if norm.impl == 'none':
      out = self.act(x) if then is None else self._convolve(self.act(x), *conv)
    elif norm.impl == 'layer':
      out = self._fused(x, True, Norm.EPS['layer'], norm.ln.gamma, norm.ln.beta, *conv)
    else:
      out = self._fused(x, False, Norm.EPS['rms'], norm.scale, *conv)
    if then is not None and then.use_bias:
      out = tf.nn.bias_add(out, tf.cast(then.bias, out.dtype))
    return out

  def _convolve(self, a, kernel):
    then = self.then
    if isinstance(then, keras.layers.Conv2DTranspose):  # 'same': each side times the stride
      shape = tf.shape(a)
      out = [shape[0], shape[1] * then.strides[0], shape[2] * then.strides[1], then.filters]
      return tf.nn.conv2d_transpose(a, kernel, tf.stack(out), then.strides, 'SAME')
    return then.convolution_op(a, kernel)

  def _fused(self, x, center, eps, *weights):
    act, dtype, then = self.act, self.dtype, self.then
    axes = list(range(len(x.shape) - 1))
    def stage(y, kernel):  # the activation in float32, then the cast (bfloat16: Eigen's sigmoid)
      a = tf.cast(act(y), dtype)
      return a if then is None else self._convolve(a, kernel)

    @tf.custom_gradient
    def fn(x, *weights):  # weights: scale, offset (layer norm), the next conv's kernel
      x32 = tf.cast(x, tf.float32)
      if center:
        x32 -= tf.reduce_mean(x32, -1, keepdims=True)
      var = tf.reduce_mean(tf.square(x32), -1, keepdims=True)
      inv_std = tf.math.rsqrt(var + eps)
      normed = x32 * inv_std
      kernel = weights[-1] if then is not None else None
      affine = lambda: normed * weights[0] + (weights[1] if center else 0.0)

      def grad(g):
        # Recompute once g exists: with no dependence on g the executor would run it right after
        # the forward pass and keep it until the backward got here (XS: +0.19 GB at the peak).
        with tf.control_dependencies([g]):
          y = affine()
        with tf.GradientTape() as tape:  # the stage's forward output itself is not computed
          tape.watch([y] + ([kernel] if then is not None else []))
          out = stage(y, kernel)
        g_y, *g_kernel = tape.gradient(out, [y] + ([kernel] if then is not None else []), g)
        g_n = g_y * weights[0]
        g_x = g_n - normed * tf.reduce_mean(g_n * normed, -1, keepdims=True)
        if center:
          g_x -= tf.reduce_mean(g_n, -1, keepdims=True)
        g_w = [tf.reduce_sum(g_y * normed, axes)] + ([tf.reduce_sum(g_y, axes)] if center else [])
        return (tf.cast(g_x * inv_std, x.dtype), *g_w, *g_kernel)
      return stage(affine(), kernel), grad
    # Read outside: inside, a (mirrored) variable would count as one the gradient must return.
    return fn(x, *[tf.convert_to_tensor(w) for w in weights])


class Linear(keras.layers.Layer):
  """Dense -> norm -> act; no bias when normed (nets.Linear) unless `bias` says otherwise."""

  def __init__(self, units, act='none', norm='none', winit='uniform', fan='avg', outscale=1.0,
               bias=None, **kw):
    super().__init__(**kw)
    bias = (norm == 'none') if bias is None else bias
    self.dense = keras.layers.Dense(
        units, use_bias=bias, kernel_initializer=initializer(winit, fan, outscale))
    self.norm = Norm(norm)
    self.act = get_act(act)

  def call(self, x):
    return self._finish(self.dense(x))

  def _finish(self, x):
    return self.act(tf.cast(self.norm(x), self.compute_dtype))

  def split_kernel(self, lead, width):
    """(W[:lead], W[lead:]) in the compute dtype, for a layer on concat([x, y]) with x of `lead`
    and y of `width` features: y's share can then be computed once for a whole sequence."""
    if not self.dense.built:
      self.dense.build(tf.TensorShape([None, lead + width]))
    kernel = tf.cast(self.dense.kernel, self.dense.compute_dtype)
    return kernel[:lead], kernel[lead:]

  def partial(self, y, kernel_y):
    """y's share of the layer on concat([x, y]): y @ W[lead:] (+ bias)."""
    out = tf.tensordot(tf.cast(y, kernel_y.dtype), kernel_y, 1)
    return out + tf.cast(self.dense.bias, out.dtype) if self.dense.use_bias else out

  def complete(self, x, share, kernel_x):
    """The layer on concat([x, y]) given y's share and W[:lead]."""
    return self._finish(tf.matmul(tf.cast(x, kernel_x.dtype), kernel_x) + share)


class BlockLinear(keras.layers.Layer):
  """Block-diagonal dense layer of the 2024 rewrite (embodied/jax/nets.BlockLinear): the input's
  `blocks` equal slices each map to their own slice of the `units` outputs. Kernel (blocks,
  in / blocks, units / blocks), whose fans count the whole input and output (fan_in = in), and
  a bias."""

  use_bias = True

  def __init__(self, units, blocks, winit='normal', fan='in', outscale=1.0, **kw):
    super().__init__(**kw)
    if units % blocks:
      raise ValueError(f'BlockLinear units {units} are not a multiple of blocks {blocks}.')
    self.units, self.blocks = units, blocks
    self.init = initializer(winit, fan, outscale)

  def build(self, input_shape):
    size = input_shape[-1]
    if size % self.blocks:
      raise ValueError(f'BlockLinear input {size} is not a multiple of blocks {self.blocks}.')
    shape = (self.blocks, size // self.blocks, self.units // self.blocks)
    self.kernel = self.add_weight('kernel', shape, tf.float32, self.init)
    self.bias = self.add_weight('bias', (self.units,), tf.float32, 'zeros')
    super().build(input_shape)

  def call(self, x):  # (N, in) -> (N, units)
    kernel = tf.cast(self.kernel, self.compute_dtype)
    x = tf.reshape(x, [-1, self.blocks, x.shape[-1] // self.blocks])
    x = tf.einsum('nki,kio->nko', x, kernel)
    return tf.reshape(x, [-1, self.units]) + tf.cast(self.bias, self.compute_dtype)


def features(state, keys=('deter', 'stoch')):
  """Concatenates latent parts, flattening (..., stoch, classes) -> (..., stoch * classes)."""
  dims = len(state['deter'].shape)
  parts = []
  for key in keys:
    x = state[key]
    if len(x.shape) > dims:
      x = tf.reshape(x, tf.concat([tf.shape(x)[:dims - 1], [np.prod(x.shape[dims - 1:])]], 0))
    parts.append(tf.cast(x, tf.float32))
  return tf.concat(parts, -1)


class Head(keras.layers.Layer):
  """Output layer(s) producing a distribution by name (nets.Dist)."""

  DISTS = ('symlog_disc', 'symexp_twohot', 'mse', 'symlog_mse', 'binary', 'onehot', 'normal',
           'unit_normal', 'tanh_normal', 'trunc_normal')
  STD_DISTS = ('normal', 'tanh_normal', 'trunc_normal')

  def __init__(self, shape, dist, outscale=1.0, bins=255, minstd=1.0, maxstd=1.0, unimix=0.0,
               init_std=0.0, winit='uniform', fan='avg', **kw):
    super().__init__(**kw)
    self.shape, self.dist = tuple(shape), dist
    self.minstd, self.maxstd, self.unimix, self.init_std = minstd, maxstd, unimix, init_std
    if dist not in self.DISTS:
      raise ValueError(f"Unknown output dist '{dist}'. Valid: {', '.join(self.DISTS)}.")
    if dist == 'tanh_normal' and init_std <= 0:
      raise ValueError(f'tanh_normal needs init_std > 0 (the std at zero input), got {init_std}.')
    out = (*self.shape, bins) if dist in ('symlog_disc', 'symexp_twohot') else self.shape
    # 2023: Dist's Linear has the default init (uniform, avg); the rewrite's heads use the MLP's
    init = lambda: initializer(winit, fan, outscale)
    self.out_shape = out
    self.out = keras.layers.Dense(int(np.prod(out)), kernel_initializer=init())
    if dist in self.STD_DISTS:  # a std layer beside the mean layer (V2 DistLayer); V1's single
      # 2A-wide layer has the same parameters
      self.std = keras.layers.Dense(int(np.prod(self.shape)), kernel_initializer=init())

  def call(self, x, lead=None):
    """x: (N, F); `lead` (the batch shape of the distribution) defaults to (N,)."""
    batch = tf.shape(x)[:-1] if lead is None else lead
    out = tf.reshape(tf.cast(self.out(x), tf.float32), tf.concat([batch, self.out_shape], 0))
    nd = len(self.shape)
    if self.dist == 'symlog_disc':
      return dists.TwoHot(out)
    if self.dist == 'symexp_twohot':
      return dists.SymexpTwoHot(out)
    if self.dist == 'mse':
      return dists.MSE(out, nd)
    if self.dist == 'symlog_mse':
      return dists.SymlogMSE(out, nd)
    if self.dist == 'unit_normal':
      return dists.unit_normal(out, nd)
    if self.dist == 'binary':
      return dists.bernoulli(out, nd)
    if self.dist == 'onehot':
      return dists.onehot(out, self.unimix, nd - 1)
    std = tf.reshape(tf.cast(self.std(x), tf.float32), tf.concat([batch, self.shape], 0))
    if self.dist == 'tanh_normal':
      return dists.tanh_normal(out, std, self.init_std, self.minstd, nd)
    if self.dist == 'trunc_normal':
      return dists.trunc_normal(out, std, self.init_std, self.minstd, nd)
    return dists.normal(out, std, self.minstd, self.maxstd, nd)


class MLP(keras.layers.Layer):
  """`layers` Linear blocks then an optional Head (nets.MLP). Input: tensor or latent dict.

  `bias`: 'auto' gives the hidden layers a bias only without a norm (2023 nets.Linear), 'always'
  always (the rewrite's Linear). `outinit`: the output layer's init, 'uniform_avg' (2023 Dist)
  or 'winit' (the hidden layers' winit and fan, the rewrite's Head)."""

  BIAS = {'auto': None, 'always': True}
  OUTINITS = ('uniform_avg', 'winit')

  def __init__(self, shape, layers, units, act='silu', norm='layer', winit='normal', fan='avg',
               inputs=('deter', 'stoch'), symlog_inputs=False, dist=None, bias='auto',
               outinit='uniform_avg', **head_kw):
    super().__init__()
    if bias not in self.BIAS:
      raise ValueError(f"Unknown bias '{bias}'. Valid: {', '.join(self.BIAS)}.")
    if outinit not in self.OUTINITS:
      raise ValueError(f"Unknown outinit '{outinit}'. Valid: {', '.join(self.OUTINITS)}.")
    self.inputs = tuple(inputs)
    self.symlog_inputs = symlog_inputs
    self.hidden = [Linear(units, act, norm, winit, fan, bias=self.BIAS[bias])
                   for _ in range(layers)]
    if outinit == 'winit':  # the rewrite multiplies the initial weights by outscale
      # (Linear._scaled_winit), where the 2023 Initializer scales their variance
      head_kw.update(winit=winit, fan=fan, outscale=head_kw.get('outscale', 1.0) ** 2)
    self.head = Head(shape, dist, **head_kw) if shape is not None else None

  def call(self, x):
    x = features(x, self.inputs) if isinstance(x, dict) else x
    if self.symlog_inputs:
      x = dists.symlog(tf.cast(x, tf.float32))
    lead = tf.shape(x)[:-1]
    x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, x.shape[-1]])  # layers see (N, F)
    for layer in self.hidden:
      x = layer(x)
    if self.head is not None:
      return self.head(x, lead)
    return tf.reshape(x, tf.concat([lead, [x.shape[-1]]], 0))


def _stages(size, minres):
  stages = int(np.log2(size) - np.log2(minres))
  if 2 ** stages * minres != size:
    raise ValueError(f'Image size {size} is not minres {minres} times a power of two.')
  return stages


class ConvEncoder(keras.layers.Layer):
  """Stride-2 4x4 convs, depth doubling until `minres` (ImageEncoderResnet, blocks 0)."""

  def __init__(self, size, depth, act, norm, winit, fan, minres=4):
    super().__init__()
    self.convs, self.norms = [], []
    for i in range(_stages(size, minres)):
      self.convs.append(keras.layers.Conv2D(
          depth * 2 ** i, 4, 2, 'same', use_bias=(norm == 'none'),
          kernel_initializer=initializer(winit, fan)))
      self.norms.append(Norm(norm))
    self.act = get_act(act)
    # Each stage's norm + act applies the next conv (NormAct: its input is then not kept).
    self.norm_acts = [NormAct(n, self.act, c.filters, self.compute_dtype, then)
                      for n, c, then in zip(self.norms, self.convs, self.convs[1:] + [None])]

  def call(self, x):  # (N, H, W, C) in [0, 1] -> (N, minres * minres * depth * 2**(stages-1))
    x = self.convs[0](tf.cast(x, self.compute_dtype) - 0.5)
    for norm_act in self.norm_acts:
      x = norm_act(x)
    return tf.reshape(x, [tf.shape(x)[0], np.prod(x.shape[1:])])


class ConvDecoder(keras.layers.Layer):
  """Linear to (minres, minres, depth) then stride-2 transposed convs (ImageDecoderResnet)."""

  def __init__(self, shape, depth, act, norm, winit, fan, minres=4, sigmoid=False):
    super().__init__()
    stages = _stages(shape[0], minres)
    depth = depth * 2 ** (stages - 1)
    self.minres, self.depth0, self.sigmoid = minres, depth, sigmoid
    self.inp = keras.layers.Dense(minres * minres * depth)  # official 'in': default uniform init
    self.convs, self.norms = [], []
    for i in range(stages):
      last = i == stages - 1
      depth = shape[-1] if last else depth // 2
      self.convs.append(keras.layers.Conv2DTranspose(
          depth, 4, 2, 'same', use_bias=(last or norm == 'none'),
          kernel_initializer=initializer('uniform', 'avg') if last else initializer(winit, fan)))
      self.norms.append(None if last else Norm(norm))
    self.act = get_act(act)
    # As the encoder: each stage's norm + act applies the next transposed conv.
    self.norm_acts = [NormAct(n, self.act, c.filters, self.compute_dtype, then)
                      for n, c, then in zip(self.norms[:-1], self.convs, self.convs[1:])]

  def call(self, x):  # (N, F) -> (N, H, W, C)
    x = tf.reshape(self.inp(tf.cast(x, self.compute_dtype)),
                   [-1, self.minres, self.minres, self.depth0])
    x = self.convs[0](x)
    for norm_act in self.norm_acts:
      x = norm_act(x)
    x = tf.cast(x, tf.float32)
    return tf.sigmoid(x) if self.sigmoid else x + 0.5


class KernelConvEncoder(keras.layers.Layer):
  """DreamerV1/V2 encoder: 'valid' stride-2 convs of the given kernels, depth doubling
  (dreamer@56d4d44 models.ConvEncoder, dreamerv2@07d906e common/nets.Encoder._cnn)."""

  def __init__(self, depth, kernels, act, norm, winit, fan):
    super().__init__()
    self.convs = [keras.layers.Conv2D(depth * 2 ** i, k, 2, 'valid', use_bias=True,
                                      kernel_initializer=initializer(winit, fan))
                  for i, k in enumerate(kernels)]
    self.norms = [Norm(norm) for _ in kernels]
    self.act = get_act(act)

  def call(self, x):  # (N, 64, 64, C) in [0, 1] -> (N, 2 * 2 * depth * 8)
    x = tf.cast(x, self.compute_dtype) - 0.5
    for conv, norm in zip(self.convs, self.norms):
      x = self.act(tf.cast(norm(conv(x)), self.compute_dtype))
    return tf.reshape(x, [tf.shape(x)[0], np.prod(x.shape[1:])])


class KernelConvDecoder(keras.layers.Layer):
  """DreamerV1/V2 decoder: Dense to 32 depth at 1x1, then 'valid' stride-2 transposed convs
  (kernels 5, 5, 6, 6 give 5, 13, 30, 64 pixels) (models.ConvDecoder, nets.Decoder._cnn)."""

  def __init__(self, shape, depth, kernels, act, norm, winit, fan):
    super().__init__()
    self.depth = depth
    self.inp = keras.layers.Dense(32 * depth, kernel_initializer=initializer(winit, fan))
    self.convs, self.norms = [], []
    for i, k in enumerate(kernels):
      last = i == len(kernels) - 1
      self.convs.append(keras.layers.Conv2DTranspose(
          shape[-1] if last else depth * 2 ** (len(kernels) - i - 2), k, 2, 'valid',
          kernel_initializer=initializer(winit, fan)))
      self.norms.append(None if last else Norm(norm))
    self.act, self.shape = get_act(act), tuple(shape)

  def call(self, x):  # (N, F) -> (N, H, W, C)
    x = tf.reshape(self.inp(tf.cast(x, self.compute_dtype)), [-1, 1, 1, 32 * self.depth])
    for conv, norm in zip(self.convs, self.norms):
      x = conv(x)
      if norm is not None:
        x = self.act(tf.cast(norm(x), self.compute_dtype))
    if tuple(x.shape[1:]) != self.shape:
      raise ValueError(f'decoder.cnn_kernels give images of {tuple(x.shape[1:])}, '
                       f'observations are {self.shape}.')
    return tf.cast(x, tf.float32) + 0.5


CNNS = ('stride', 'kernels')


def split_keys(shapes, cnn_keys, mlp_keys):
  """Observation keys the encoder/decoder models: images (rank 3) and vectors (rank <= 1)."""
  skip = ('reward', 'is_first', 'is_last', 'is_terminal')
  shapes = {k: v for k, v in shapes.items() if k not in skip and not k.startswith('log_')}
  cnn = {k: v for k, v in shapes.items() if len(v) == 3 and re.match(cnn_keys, k)}
  mlp = {k: v for k, v in shapes.items() if len(v) == 1 and re.match(mlp_keys, k)}
  return cnn, mlp


class MultiEncoder(keras.layers.Layer):
  """Encodes a dict of observations (B, T, ...) into one embedding (B, T, E) (nets.MultiEncoder)."""

  def __init__(self, shapes, cnn_keys, mlp_keys, act, norm, mlp_layers, mlp_units, cnn_depth,
               winit, fan, symlog_inputs, minres, cnn='stride', cnn_kernels=(4, 4, 4, 4),
               cnn_act=None):
    super().__init__()
    if cnn not in CNNS:
      raise ValueError(f"Unknown encoder.cnn '{cnn}'. Valid: {', '.join(CNNS)}.")
    self.cnn_shapes, self.mlp_shapes = split_keys(shapes, cnn_keys, mlp_keys)
    if not self.cnn_shapes and not self.mlp_shapes:
      raise ValueError(
          f'No observation matches encoder.cnn_keys={cnn_keys!r} (images) or '
          f'encoder.mlp_keys={mlp_keys!r} (vectors); observation space: {shapes}.')
    if self.cnn_shapes:
      sizes = {v[:2] for v in self.cnn_shapes.values()}
      if len(sizes) != 1 or list(sizes)[0][0] != list(sizes)[0][1]:
        raise ValueError(f'Images must be square and of one size, got {self.cnn_shapes}.')
      if cnn == 'stride':
        self.cnn = ConvEncoder(list(sizes)[0][0], cnn_depth, cnn_act or act, norm, winit, fan,
                               minres)
      else:
        self.cnn = KernelConvEncoder(cnn_depth, cnn_kernels, cnn_act or act, norm, winit, fan)
    if self.mlp_shapes:
      self.mlp = MLP(None, mlp_layers, mlp_units, act, norm, winit, fan,
                     symlog_inputs=symlog_inputs)

  def call(self, obs):
    some = next(iter({**self.cnn_shapes, **self.mlp_shapes}))
    lead = tf.shape(obs[some])[:2]
    outs = []
    if self.cnn_shapes:
      x = tf.concat([obs[k] for k in self.cnn_shapes], -1)
      x = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
      outs.append(tf.cast(self.cnn(x), tf.float32))
    if self.mlp_shapes:
      x = tf.concat([tf.reshape(tf.cast(obs[k], tf.float32), tf.concat([lead, [-1]], 0))
                     for k in self.mlp_shapes], -1)
      x = tf.reshape(x, [-1, x.shape[-1]])
      outs.append(tf.cast(self.mlp(x), tf.float32))
    x = tf.concat(outs, -1)
    return tf.reshape(x, tf.concat([lead, [x.shape[-1]]], 0))


class MultiDecoder(keras.layers.Layer):
  """Latent features (B, T, F) -> dict of distributions per observation key (nets.MultiDecoder)."""

  def __init__(self, shapes, cnn_keys, mlp_keys, act, norm, mlp_layers, mlp_units, cnn_depth,
               image_dist, vector_dist, inputs, winit, fan, outscale, minres, cnn_sigmoid, bins=255,
               cnn='stride', cnn_kernels=(5, 5, 6, 6), cnn_act=None):
    super().__init__()
    self.cnn_shapes, self.mlp_shapes = split_keys(shapes, cnn_keys, mlp_keys)
    self.inputs = tuple(inputs)
    if image_dist not in ('mse', 'normal'):
      raise ValueError(f"Unknown decoder.image_dist '{image_dist}'. Valid: mse, normal.")
    if cnn not in CNNS:
      raise ValueError(f"Unknown decoder.cnn '{cnn}'. Valid: {', '.join(CNNS)}.")
    self.image_dist = image_dist
    if self.cnn_shapes:
      size = list(self.cnn_shapes.values())[0][:2]
      channels = sum(v[-1] for v in self.cnn_shapes.values())
      if cnn == 'stride':
        self.cnn = ConvDecoder((*size, channels), cnn_depth, cnn_act or act, norm, winit, fan,
                               minres, cnn_sigmoid)
      else:
        self.cnn = KernelConvDecoder((*size, channels), cnn_depth, cnn_kernels, cnn_act or act,
                                     norm, winit, fan)
    if self.mlp_shapes:  # one trunk, one head per key (MLP with a dict shape)
      self.mlp = MLP(None, mlp_layers, mlp_units, act, norm, winit, fan)
      self.heads = [Head(v, vector_dist, outscale, bins) for v in self.mlp_shapes.values()]

  def call(self, state):
    feat = features(state, self.inputs)
    out = {}
    if self.cnn_shapes:
      lead = tf.shape(feat)[:-1]
      flat = tf.reshape(feat, [-1, feat.shape[-1]])
      images = self.cnn(flat)
      images = tf.reshape(images, tf.concat([lead, tf.shape(images)[1:]], 0))
      splits = [v[-1] for v in self.cnn_shapes.values()]
      for key, mean in zip(self.cnn_shapes, tf.split(images, splits, -1)):
        out[key] = dists.MSE(mean, 3) if self.image_dist == 'mse' else dists.unit_normal(mean, 3)
    if self.mlp_shapes:
      lead = tf.shape(feat)[:-1]
      hidden = self.mlp(tf.reshape(feat, [-1, feat.shape[-1]]))
      for key, head in zip(self.mlp_shapes, self.heads):
        out[key] = head(hidden, lead)
    return out
