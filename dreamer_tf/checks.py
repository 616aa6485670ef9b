"""Ranges and choices of config values: one table, checked when a config is loaded
(`config.load`) and again when a run starts (`run.run`), before anything is written.

`RULES` maps a key pattern (a regular expression matched against the whole dotted key) to a
`Check`: a test of the value (given the whole config, for rules that depend on another key) and
the text naming what is valid. Every key of configs/defaults.yaml is covered by a rule, is a
bool (its type is checked by config.py), or is in `FREE`; tests/test_config.py keeps it so.

The choices repeat the registries that use them (nets.POLICIES, agent.COMPILE, behavior.BEHAVIORS,
rssm.RSSM.LATENTS, ...), which import TensorFlow; tests/test_config.py asserts they are equal.
This module imports no TensorFlow: `config.load` rejects a bad value in a fraction of a second.
"""
import functools
import math
import re
import typing

from . import envs
from .envs import vector


class Check(typing.NamedTuple):
  test: typing.Callable  # (value, flat config dict) -> bool
  valid: str             # what is valid, for the error message
  choices: tuple = ()    # the valid values of a choice (one_of)


def _number(value):
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def at_least(low):
  kind = 'an integer' if isinstance(low, int) else 'a number'
  return Check(lambda v, c: _number(v) and v >= low, f'{kind} >= {low}')


def above(low):
  return Check(lambda v, c: _number(v) and v > low, f'a number > {low}')


def within(low, high, open_low=False):
  test = (lambda v, c: _number(v) and low < v <= high) if open_low else (
      lambda v, c: _number(v) and low <= v <= high)
  return Check(test, f"a number in {'(' if open_low else '['}{low}, {high}]")


def one_of(*options):
  return Check(lambda v, c: v in options, 'one of: ' + ', '.join(repr(o) for o in options),
               options)


def list_of(check, length=None):
  """A non-empty list (of exactly `length` items if given) whose items pass `check`."""
  count = f'{length} items' if length else 'a non-empty list'
  return Check(lambda v, c: (isinstance(v, list) and len(v) == (length or len(v)) > 0
                             and all(check.test(x, c) for x in v)),
               f'{count}, each {check.valid}')


def when(condition, text, check):
  """`check` applies only where `condition(config)` holds; `text` says where."""
  return Check(lambda v, c: not condition(c) or check.test(v, c), f'{check.valid} {text}')


def _regex(value, config):
  try:
    re.compile(value)
  except re.error:
    return False
  return True


def _task(value, config):
  try:
    envs.split(value)
  except ValueError:
    return False
  return True


ACTS = ('none', 'silu', 'elu', 'relu', 'tanh', 'sigmoid')    # nets.get_act
DISTS = ('symlog_disc', 'symexp_twohot', 'mse', 'symlog_mse', 'binary', 'onehot', 'normal',
         'unit_normal', 'tanh_normal', 'trunc_normal')       # nets.Head.DISTS
GRADS = {'dreamerv3': ('reinforce', 'backprop'),             # behavior.BEHAVIORS[b].GRADS
         'dreamerv2': ('dynamics', 'reinforce', 'both'),
         'dreamerv1': ('dynamics', 'reinforce', 'both'),
         'dreamerv3_2024': ('reinforce',)}
HEADS = ('decoder', 'reward', 'cont')                        # world_model.WorldModel.heads

FREE = ('method', 'logdir', 'env.dmc.background')  # labels and paths: any string

RULES = {
    # Top level, compilation and numerics.
    'seed': within(0, 2 ** 31 - 1),
    'behavior': one_of('dreamerv3', 'dreamerv2', 'dreamerv1', 'dreamerv3_2024'),
    'task': Check(_task, f"<suite>_<name> (suites: {', '.join(envs.SUITES)}) or {envs.GYM}<id>"),
    'precision': one_of('float32', 'float16', 'bfloat16'),
    'compile': one_of('auto', 'eager', 'graph', 'xla'),
    # Run: budgets in agent steps, intervals in agent steps or seconds (0: never / every time).
    r'run\.script': one_of('train', 'train_eval'),
    r'run\.steps': at_least(1),
    r'run\.train_ratio': above(0),
    r'run\.(train_fill|train_every|pretrain|eval_every|log_every|save_every)': at_least(0),
    r'run\.report_every': at_least(0),  # seconds; 0: never (openloop.Reporter)
    r'run\.train_steps': at_least(1),
    r'run\.eval_eps': when(lambda c: c['run.script'] == 'train_eval',
                           "when run.script is 'train_eval'", at_least(1)),
    r'run\.keep_checkpoints': at_least(1),
    r'run\.strategy': one_of('default', 'mirrored', 'multi_worker'),   # distribute.STRATEGIES
    # Environments.
    r'env\.\w+\.size': list_of(at_least(1), length=2),
    r'env\.\w+\.repeat': at_least(1),
    r'env\.atari\.(noops|noops_min|length)': at_least(0),
    r'env\.atari\.actions': one_of('all', 'needed'),
    r'env\.atari\.lives': one_of('unused', 'discount', 'reset'),
    r'env\.atari\.resize': one_of('opencv', 'pillow'),
    r'env\.atari\.gray_source': one_of('rgb', 'ale'),
    r'env\.dmc\.camera': at_least(-1),
    r'env\.dummy\.length': at_least(1),
    r'envs\.amount': at_least(1),
    r'envs\.parallel': one_of(*vector.PARALLEL),
    # Replay and batches.
    'replay_size': Check(  # split evenly over the envs' streams (replay.Streams)
        lambda v, c: _number(v) and v >= max(1, c['batch_length'] * c['envs.amount']),
        'an integer >= batch_length x envs.amount'),
    'replay_chunk|batch_size|batch_length': at_least(1),
    'replay_context': Check(lambda v, c: _number(v) and v >= 0 and (
        v == 0 or c['rssm.latent'] == 'categorical'),
        'an integer >= 0 (> 0 only with rssm.latent categorical)'),
    # World model.
    'representation': one_of('reconstruction', 'prototypes'),   # world_model.REPRESENTATIONS
    r'proto\.(prototypes|dim|sinkhorn_iters|ema_every)': at_least(1),
    r'proto\.warm_up': Check(lambda v, c: _number(v) and 0 <= v < c['batch_length'],
                             'an integer in [0, batch_length)'),
    r'proto\.freeze': at_least(0),
    r'proto\.(temperature|sinkhorn_eps)': above(0.0),
    r'proto\.ema_fraction': within(0.0, 1.0, open_low=True),
    r'proto\.aug_max_delta': at_least(0.0),
    'grad_heads': Check(
        lambda v, c: all(h in HEADS and (h != 'cont' or c['pred_cont']) for h in v),
        f"a list of: {', '.join(HEADS)} ('cont' only with pred_cont)"),
    'clip_rewards': one_of('identity', 'tanh', 'sign'),
    r'rssm\.latent': one_of('categorical', 'gaussian'),
    r'rssm\.(units|stoch|classes)': at_least(1),
    r'rssm\.initial': one_of('learned', 'zeros'),
    r'rssm\.gru': one_of('norm', 'norm_bias', 'keras', 'blocks'),
    r'rssm\.deter': Check(lambda v, c: _number(v) and v >= 1 and (
        c['rssm.gru'] != 'blocks' or v % c['rssm.blocks'] == 0),
        'an integer >= 1, a multiple of rssm.blocks with rssm.gru blocks'),
    r'rssm\.(blocks|img_layers)': at_least(1),
    r'rssm\.dyn_layers': at_least(0),
    r'.*\.bias': one_of('auto', 'always'),                  # nets.MLP.BIAS
    r'.*\.outinit': one_of('uniform_avg', 'winit'),         # nets.MLP.OUTINITS
    '(en|de)coder_typ': one_of('multi', 'simple'),           # world_model.WorldModel
    r'simple_(en|de)coder\.(cnn|mlp)_keys': Check(_regex, 'a valid regular expression'),
    r'simple_(en|de)coder\.(depth|kernel)': at_least(1),
    r'simple_(en|de)coder\.mults': list_of(at_least(1)),
    r'simple_decoder\.bspace': at_least(0),
    r'rssm\.std_act': one_of('softplus', 'sigmoid2'),
    r'rssm\.min_std': above(0),
    r'rssm\.action_clip': at_least(0.0),
    r'(en|de)coder\.(mlp|cnn)_keys': Check(_regex, 'a valid regular expression'),
    r'(en|de)coder\.(mlp_units|cnn_depth|minres)': at_least(1),
    r'(en|de)coder\.cnn': one_of('stride', 'kernels'),
    r'(en|de)coder\.cnn_kernels': list_of(at_least(1)),
    r'(en|de)coder\.cnn_act': one_of('', *ACTS),
    r'decoder\.image_dist': one_of('mse', 'normal'),
    r'decoder\.vector_dist|(reward_head|cont_head|critic)\.dist': one_of(*DISTS),
    r'.*\.act': one_of(*ACTS),
    r'.*\.norm': one_of('none', 'layer', 'rms'),           # nets.Norm.KINDS
    r'.*\.winit': one_of('normal', 'uniform'),
    r'.*\.fan': one_of('avg', 'in', 'out'),
    r'.*\.(layers|mlp_layers)': at_least(0),
    r'.*\.units': at_least(1),
    r'.*\.inputs': list_of(one_of('deter', 'stoch')),
    r'.*\.outscale': at_least(0.0),
    r'.*\.bins': at_least(2),
    r'.*\.unimix': within(0.0, 1.0),
    r'loss_scales\.\w+': at_least(0.0),
    r'(dyn|rep)_loss\.free': at_least(0.0),
    r'dyn_loss\.impl': one_of('kl', 'kl_joint'),
    r'rep_loss\.impl': one_of('kl', 'none'),
    r'\w+_opt\.opt': one_of('adam', 'adam_keras', 'laprop'),   # optim.OPTIMIZERS
    r'\w+_opt\.(agc|warmup)': at_least(0),  # laprop only (optim.make)
    r'\w+_opt\.(lr|eps)': above(0.0),
    r'\w+_opt\.(clip|wd)': at_least(0.0),  # clip 0: no clipping
    # Actor critic.
    r'actor\.minstd': above(0.0),
    r'actor\.maxstd': Check(lambda v, c: _number(v) and v >= c['actor.minstd'],
                            'a number >= actor.minstd'),
    r'actor\.init_std': when(lambda c: c['actor_dist_cont'] == 'tanh_normal',
                             "when actor_dist_cont is 'tanh_normal'", above(0.0)),
    'actor_dist_disc': one_of('onehot'),
    'actor_dist_cont': one_of('normal', 'tanh_normal', 'trunc_normal'),  # nets.Head.STD_DISTS
    'actor_grad_(disc|cont)': Check(
        lambda v, c: c['behavior'] not in GRADS or v in GRADS[c['behavior']],
        'for behavior dreamerv3 one of: reinforce, backprop; for dreamerv2 and dreamerv1 one '
        'of: dynamics, reinforce, both; for dreamerv3_2024: reinforce'),
    'actor_grad_mix': within(0.0, 1.0),
    'imag_horizon': Check(lambda v, c: v >= (1 if c['behavior'].startswith('dreamerv3') else 2),
                          'an integer >= 1 (>= 2 for behavior dreamerv2 and dreamerv1, whose '
                          'actor loss leaves out the last two imagined states)'),
    'update_order': one_of('model_first', 'joint', 'one_loss'),
    'horizon': at_least(2),  # discount 1 - 1 / horizon > 0 (V3 weights divide by it)
    'return_lambda': within(0.0, 1.0),
    'critic_slowreg': one_of('logprob'),
    'slow_critic_update': at_least(1),
    'slow_critic_fraction': within(0.0, 1.0, open_low=True),
    r'retnorm\.impl': one_of('perc_ema'),
    r'retnorm\.decay': within(0.0, 1.0),
    r'retnorm\.max': above(0.0),
    r'retnorm\.perclo': within(0.0, 100.0),
    r'retnorm\.perchi': Check(lambda v, c: _number(v) and c['retnorm.perclo'] < v <= 100,
                              'a number in (retnorm.perclo, 100]'),
    'actent|expl_noise': at_least(0.0),
}


@functools.lru_cache(maxsize=None)
def rules_of(key):
  """The checks that apply to the dotted `key` (RULES is fixed: cached per key)."""
  return tuple(check for pattern, check in RULES.items() if re.fullmatch(pattern, key))


def problems(config):
  """One line per value of `config` (a config.Config) outside its range or choices."""
  flat = config.flat
  lines = []
  for key, value in sorted(flat.items()):
    for check in rules_of(key):
      if not check.test(value, flat):
        lines.append(f'Invalid config value {key}={value!r}: expected {check.valid}.')
  return lines
