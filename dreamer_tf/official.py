"""Weights of the official implementations, loaded by an explicit name map.

`load_official_params(agent, source, version)` copies a parameter tree saved by the official code
(danijar/dreamerv3@8fa35f8, its 2024 rewrite danijar/dreamerv3@e3f0224, danijar/dreamerv2@07d906e,
danijar/dreamer@56d4d44) into an agent
built from the matching preset. `source` is a dict {official name: array} (nested dicts are
joined with '/'), a `.npz` of such arrays, or, behind `allow_pickle=True`, the official 2023
code's pickled checkpoint. Unpickling runs code stored in the file: open only files you trust,
or convert them to `.npz` in the official environment first (README, "Equivalence with the
official code"). Every missing, extra or mis-shaped tensor is named in one error before
anything is assigned.

The maps follow the official module paths (ninjax names for V3, Keras variable names for V1/V2)
and read our modules by attribute, so a renamed layer breaks the map loudly, not silently.
"""
import os
import pickle
import re

import numpy as np

VERSIONS = ('dreamerv3_2023', 'dreamerv3_2024', 'dreamerv2', 'dreamerv1')
# Entries of an official checkpoint that are not weights: optimiser states and step counters
# (dreamerv3 jaxutils.Optimizer `<name>_opt/state|step`, SlowUpdater `updates`).
SKIP = {'dreamerv3_2023': r'/(model|actor|critic)_opt/|/updates/value$',
        'dreamerv3_2024': r'^opt/|^slowval_count|_count/value$',
        'dreamerv2': r'^(model|actor|critic)_opt/', 'dreamerv1': r'^(model|actor|value)_opt/'}


def flip(kernel):
  """jax.lax.conv_transpose (transpose_kernel=False) correlates with the kernel as stored; TF's
  Conv2DTranspose is the gradient of a convolution, i.e. uses it spatially flipped."""
  return kernel[::-1, ::-1]


# --- DreamerV3 (2023): ninjax paths of dreamerv3@8fa35f8 agent.py / nets.py / behaviors.py -----

def _linear(prefix, layer, out):
  """nets.Linear: kernel, bias (unnormed) or norm/{scale,bias} (normed)."""
  out[f'{prefix}/kernel'] = layer.dense.kernel
  if layer.dense.use_bias:
    out[f'{prefix}/bias'] = layer.dense.bias
  if layer.norm.ln is not None:
    out[f'{prefix}/norm/scale'] = layer.norm.ln.gamma
    out[f'{prefix}/norm/bias'] = layer.norm.ln.beta


def _dense(prefix, dense, out, transform=None):
  out[f'{prefix}/kernel'] = (dense.kernel, transform) if transform else dense.kernel
  if dense.use_bias:
    out[f'{prefix}/bias'] = dense.bias


def _columns(lo, hi):
  """The columns [lo, hi) of a kernel or bias (one official layer feeding two of ours)."""
  return lambda value: value[..., lo:hi]


def _mlp(prefix, mlp, out, dist_name='out'):
  for i, layer in enumerate(mlp.hidden):
    _linear(f'{prefix}/h{i}', layer, out)
  if mlp.head is not None:
    _dist(f'{prefix}/dist_{dist_name}', mlp.head, out)


def _dist(prefix, head, out):
  """nets.Dist: `out` Linear, and `std` for the Normal actor."""
  _dense(f'{prefix}/out', head.out, out)
  if hasattr(head, 'std'):
    _dense(f'{prefix}/std', head.std, out)


def _conv_norm(prefix, conv, norm, out, transform=None):
  _dense(prefix, conv, out, transform)
  if norm is not None and norm.ln is not None:
    out[f'{prefix}/norm/scale'] = norm.ln.gamma
    out[f'{prefix}/norm/bias'] = norm.ln.beta


def _v3(agent):
  wm, ac, out = agent.wm, agent.ac, {}
  enc, dec, rssm = wm.encoder, wm.decoder, wm.rssm
  if enc.cnn_shapes:
    for i, (conv, norm) in enumerate(zip(enc.cnn.convs, enc.cnn.norms)):
      _conv_norm(f'agent/wm/enc/cnn/s{i}res', conv, norm, out)
  if enc.mlp_shapes:
    _mlp('agent/wm/enc/mlp', enc.mlp, out)
  out['agent/wm/rssm/initial'] = rssm.init_deter
  for name in ('img_in', 'gru', 'img_out', 'obs_out'):
    _linear(f'agent/wm/rssm/{name}', getattr(rssm, name), out)
  for name in ('img_stats', 'obs_stats'):
    _dense(f'agent/wm/rssm/{name}', getattr(rssm, name), out)
  if dec.cnn_shapes:
    _dense('agent/wm/dec/cnn/in', dec.cnn.inp, out)
    for i, (conv, norm) in enumerate(zip(dec.cnn.convs, dec.cnn.norms)):
      _conv_norm(f'agent/wm/dec/cnn/s{i}res', conv, norm, out, flip)
  if dec.mlp_shapes:
    _mlp('agent/wm/dec/mlp', dec.mlp, out)
    for key, head in zip(dec.mlp_shapes, dec.heads):
      _dist(f'agent/wm/dec/mlp/dist_{key}', head, out)
  _mlp('agent/wm/rew', wm.reward, out)
  _mlp('agent/wm/cont', wm.cont, out)
  _mlp('agent/task_behavior/ac/actor', ac.actor, out)
  _mlp('agent/task_behavior/critic/net', ac.critic, out)
  return out


def _v3_state(agent):
  """Non-trainable state: slow critic and return normaliser (jaxutils.SlowUpdater, Moments)."""
  out = {}
  _mlp('agent/task_behavior/critic/slow', agent.ac.slow_critic, out)
  out['agent/task_behavior/ac/retnorm_extr/low/value'] = agent.ac.retnorm.low  # nj.Variable
  out['agent/task_behavior/ac/retnorm_extr/high/value'] = agent.ac.retnorm.high
  return out


# --- DreamerV3 (2024 rewrite): ninjax paths of dreamerv3@e3f0224 agent.py / rssm.py / heads.py --

def _rms(prefix, norm, out):
  out[f'{prefix}/scale'] = norm.scale


def _linear_2024(prefix, layer, out):
  """nets.Linear + nets.Norm of the rewrite: `<name>/{kernel,bias}` and `<name>norm/scale`."""
  _dense(prefix, layer.dense, out)
  _rms(f'{prefix}norm', layer.norm, out)


def _head_mlp_2024(prefix, mlp, out, heads):
  """heads.MLPHead: mlp/linear{i}, mlp/norm{i}, then the head's Linear layers `heads`."""
  for i, layer in enumerate(mlp.hidden):
    _dense(f'{prefix}/mlp/linear{i}', layer.dense, out)
    _rms(f'{prefix}/mlp/norm{i}', layer.norm, out)
  for name, dense in heads:
    _dense(f'{prefix}/head/{name}', dense, out)


def _policy_heads(actor):
  """Head.categorical: `action/logits`; Head.bounded_normal: `action/mean`, `action/stddev`."""
  head = actor.head
  if hasattr(head, 'std'):
    return [('action/mean', head.out), ('action/stddev', head.std)]
  return [('action/logits', head.out)]


def _v3_2024(agent):
  wm, ac, out = agent.wm, agent.ac, {}
  enc, dec, rssm = wm.encoder, wm.decoder, wm.rssm
  for i, layer in enumerate(enc.mlp if enc.mlp_shapes else []):
    _linear_2024(f'enc/mlp{i}', layer, out)
  for i, (conv, norm) in enumerate(zip(enc.convs, enc.norms)):
    _dense(f'enc/cnn{i}', conv, out)
    _rms(f'enc/cnn{i}norm', norm, out)
  for i, layer in enumerate(rssm.core.dynin):
    _linear_2024(f'dyn/dynin{i}', layer, out)
  for i, (layer, norm) in enumerate(zip(rssm.core.hidden, rssm.core.norms)):
    _dense(f'dyn/dynhid{i}', layer, out)
    _rms(f'dyn/dynhid{i}norm', norm, out)
  _dense('dyn/dyngru', rssm.core.gates, out)
  _linear_2024('dyn/obs0', rssm.obs_out, out)
  _dense('dyn/obslogit', rssm.obs_stats, out)
  for i, layer in enumerate([rssm.img_out, *rssm.img_more]):
    _linear_2024(f'dyn/prior{i}', layer, out)
  _dense('dyn/priorlogit', rssm.img_stats, out)
  if dec.mlp_shapes:
    for i, layer in enumerate(dec.mlp):
      _dense(f'dec/mlp/linear{i}', layer.dense, out)
      _rms(f'dec/mlp/norm{i}', layer.norm, out)
    for key, dense in zip(dec.mlp_shapes, dec.vec):
      _dense(f'dec/vec/{key}/pred', dense, out)
  if dec.cnn_shapes:
    if dec.bspace:
      _dense('dec/sp0', dec.sp0, out)
      _linear_2024('dec/sp1', dec.sp1, out)
    _dense('dec/sp2' if dec.bspace else 'dec/space', dec.sp2, out)
    _rms('dec/spnorm' if dec.bspace else 'dec/spacenorm', dec.norms[0], out)
    stages = len(dec.convs)  # ours run conv{stages-1} ... conv0 of the rewrite's loop
    for j, (conv, norm) in enumerate(zip(dec.convs, dec.norms[1:])):
      _dense(f'dec/conv{stages - 1 - j}', conv, out)
      _rms(f'dec/conv{stages - 1 - j}norm', norm, out)
    _dense('dec/imgout', dec.imgout, out)
  _head_mlp_2024('rew', wm.reward, out, [('logits', wm.reward.head.out)])
  _head_mlp_2024('con', wm.cont, out, [('logit', wm.cont.head.out)])
  _head_mlp_2024('pol', ac.actor, out, _policy_heads(ac.actor))
  _head_mlp_2024('val', ac.critic, out, [('logits', ac.critic.head.out)])
  return out


def _v3_2024_state(agent):
  """The slow value (embodied.jax.SlowModel `slowval`) and the return normaliser (Normalize)."""
  out = {}
  slow = agent.ac.slow_critic
  _head_mlp_2024('slowval', slow, out, [('logits', slow.head.out)])
  out['retnorm/lo'] = agent.ac.retnorm.low
  out['retnorm/hi'] = agent.ac.retnorm.high
  return out


# --- DreamerV1: Keras layer names of dreamer@56d4d44 models.py, by module -------------------------

def _keras_mlp(prefix, mlp, out, first=0):
  """models.DenseDecoder / ActionDecoder: h{i} then hout (the V1 actor's hout holds the mean
  columns, then the std columns)."""
  for i, layer in enumerate(mlp.hidden):
    _dense(f'{prefix}/h{i + first}', layer.dense, out)
  head = mlp.head
  if hasattr(head, 'std'):
    size = head.out.units
    out[f'{prefix}/hout/kernel'] = [(head.out.kernel, _columns(0, size)),
                                    (head.std.kernel, _columns(size, 2 * size))]
    out[f'{prefix}/hout/bias'] = [(head.out.bias, _columns(0, size)),
                                  (head.std.bias, _columns(size, 2 * size))]
  else:
    _dense(f'{prefix}/hout', head.out, out)


def _v1(agent):
  wm, ac, out = agent.wm, agent.ac, {}
  for i, conv in enumerate(wm.encoder.cnn.convs):
    _dense(f'encode/h{i + 1}', conv, out)
  rssm = wm.rssm
  out['dynamics/cell/kernel'] = rssm.gru.kernel
  out['dynamics/cell/recurrent_kernel'] = rssm.gru.recurrent_kernel
  out['dynamics/cell/bias'] = rssm.gru.bias
  for theirs, ours in (('img1', rssm.img_in.dense), ('img2', rssm.img_out.dense),
                       ('img3', rssm.img_stats), ('obs1', rssm.obs_out.dense),
                       ('obs2', rssm.obs_stats)):
    _dense(f'dynamics/{theirs}', ours, out)
  dec = wm.decoder.cnn
  _dense('decode/h1', dec.inp, out)
  for i, conv in enumerate(dec.convs):
    _dense(f'decode/h{i + 2}', conv, out)
  _keras_mlp('reward', wm.reward, out)
  _keras_mlp('actor', ac.actor, out)
  _keras_mlp('value', ac.critic, out)
  return out


def _v1_state(agent):
  """V1 has no target network: our slow critic is the value net (a copy after every update)."""
  out = {}
  _keras_mlp('value', agent.ac.slow_critic, out)
  return out


# --- DreamerV2: Module.get names of dreamerv2@07d906e agent.py / common/nets.py -----------------

def _swap_rows(first):
  """GRUCell's Dense reads concat([x, h]); ours concat([h, x]) (dreamerv3's order)."""
  return lambda value: np.concatenate([value[first:], value[:first]], 0)


def _v2_mlp(prefix, mlp, out):
  """common.MLP (dense{i}) then DistLayer (out/out, out/std)."""
  for i, layer in enumerate(mlp.hidden):
    _dense(f'{prefix}/dense{i}', layer.dense, out)
  if mlp.head is not None:
    _dense(f'{prefix}/out/out', mlp.head.out, out)
    if hasattr(mlp.head, 'std'):
      _dense(f'{prefix}/out/std', mlp.head.std, out)


def _v2(agent):
  wm, ac, out = agent.wm, agent.ac, {}
  enc, dec, rssm = wm.encoder, wm.decoder, wm.rssm
  if enc.cnn_shapes:
    for i, conv in enumerate(enc.cnn.convs):
      _dense(f'encoder/conv{i}', conv, out)
  if enc.mlp_shapes:
    _v2_mlp('encoder', enc.mlp, out)
  _dense('rssm/img_in', rssm.img_in.dense, out)
  units = rssm.img_in.dense.units
  _dense('rssm/_cell/_layer', rssm.gru.dense, out, _swap_rows(units))
  out['rssm/_cell/_norm/gamma'] = rssm.gru.norm.ln.gamma
  out['rssm/_cell/_norm/beta'] = rssm.gru.norm.ln.beta
  _dense('rssm/img_out_0', rssm.img_out.dense, out)
  _dense('rssm/img_dist_0', rssm.img_stats, out)
  _dense('rssm/obs_out', rssm.obs_out.dense, out)
  _dense('rssm/obs_dist', rssm.obs_stats, out)
  if dec.cnn_shapes:
    _dense('decoder/convin', dec.cnn.inp, out)
    for i, conv in enumerate(dec.cnn.convs):
      _dense(f'decoder/conv{i}', conv, out)
  if dec.mlp_shapes:
    _v2_mlp('decoder', dec.mlp, out)
    for key, head in zip(dec.mlp_shapes, dec.heads):
      _dense(f'decoder/dense_{key}/out', head.out, out)
  _v2_mlp('reward', wm.reward, out)
  if wm.cont is not None:
    _v2_mlp('discount', wm.cont, out)
  _v2_mlp('actor', ac.actor, out)
  _v2_mlp('critic', ac.critic, out)
  return out


def _v2_state(agent):
  """The slow target critic (ActorCritic._target_critic), under `slow/`."""
  out = {}
  _v2_mlp('slow/critic', agent.ac.slow_critic, out)
  return out


MAPS = {'dreamerv3_2023': (_v3, _v3_state), 'dreamerv3_2024': (_v3_2024, _v3_2024_state),
        'dreamerv2': (_v2, _v2_state),
        'dreamerv1': (_v1, _v1_state)}


def name_map(agent, version, state=False):
  """{official name: [(our variable, transform of the official array or None), ...]}.

  state=True adds the non-trainable state the official code keeps beside the weights (slow
  critic/target, return normaliser); where that state is the official weights themselves (V1's
  value net as our slow critic) the name gets a second target."""
  if version not in VERSIONS:
    raise ValueError(f"Unknown official version '{version}'. Valid: {', '.join(VERSIONS)}.")
  if version not in MAPS:
    raise NotImplementedError(f'No name map for {version} yet. Available: {", ".join(MAPS)}.')
  params, extra = MAPS[version]
  out = {k: _targets(v) for k, v in params(agent).items()}
  if state:
    for name, targets in extra(agent).items():
      out[name] = out.get(name, []) + _targets(targets)
  return out


def _targets(entry):
  entries = entry if isinstance(entry, list) else [entry]
  return [e if isinstance(e, tuple) else (e, None) for e in entries]


def flatten(tree, prefix=''):
  """Nested dicts -> {'a/b/c': leaf}."""
  out = {}
  for key, value in tree.items():
    name = f'{prefix}/{key}' if prefix else str(key)
    if isinstance(value, dict):
      out.update(flatten(value, name))
    else:
      out[name] = value
  return out


def read(source, allow_pickle=False, skip=None):
  """{official name: array} from a dict, an .npz file, or (allow_pickle) a pickled checkpoint;
  names matching the regex `skip` are left out before conversion."""
  keep = lambda tree: {k: np.asarray(v) for k, v in flatten(tree).items()
                       if not (skip and re.search(skip, k))}
  if isinstance(source, dict):
    return keep(source)
  path = os.fspath(source)
  if path.endswith('.npz'):
    with np.load(path, allow_pickle=False) as f:
      return keep({k: f[k] for k in f.files})
  if not allow_pickle:
    raise ValueError(
        f"{path} is not an .npz file. Official checkpoints are pickles, and unpickling runs code "
        'stored in the file: convert it to .npz in the official environment, or pass '
        'allow_pickle=True for a file you trust.')
  with open(path, 'rb') as f:
    tree = pickle.load(f)
  if isinstance(tree, dict) and 'agent' in tree and isinstance(tree['agent'], dict):
    tree = tree['agent']  # dreamerv3 embodied.Checkpoint: {'agent': {name: array}, ...}
  return keep(tree)


def load_official_params(agent, source, version, allow_pickle=False):
  """Assigns the official weights to `agent`; returns the names assigned.

  Every trainable weight must be present; the state the official code keeps beside them (slow
  critic/target, return normaliser) is loaded where present; optimiser states and counters
  (SKIP) are left out. Any other name is an error, as is a missing or mis-shaped tensor, and
  nothing is assigned then.
  """
  targets = name_map(agent, version, state=True)  # checks the version first
  arrays = read(source, allow_pickle, SKIP[version])
  missing = sorted(set(name_map(agent, version)) - set(arrays))
  extra = sorted(set(arrays) - set(targets))
  values, shapes = [], []
  for name in sorted(set(targets) & set(arrays)):
    for var, transform in targets[name]:
      value = np.asarray(arrays[name], np.float32)
      value = transform(value) if transform else value
      if tuple(value.shape) != tuple(var.shape):
        shapes.append(f'{name}: official {tuple(value.shape)}, ours {tuple(var.shape)}')
      values.append((var, value))
  if missing or extra or shapes:
    lines = [f'Official {version} parameters do not fit this agent:']
    lines += [f'  missing: {n}' for n in missing] + [f'  extra: {n}' for n in extra]
    lines += [f'  shape {s}' for s in shapes]
    raise ValueError('\n'.join(lines))
  for var, value in values:
    var.assign(value)
  return sorted(set(targets) & set(arrays))
