import importlib.util
import re

import pytest

from dreamer_tf import checks
from dreamer_tf import config as cfg


def test_presets_merge_in_order_and_regex_keys():
  c = cfg.load(['dreamerv3', 'atari100k'])
  assert c.rssm.deter == 512 and c.encoder.cnn_depth == 32 and c.decoder.cnn_depth == 32
  # `.*\.units$` sets every head and the RSSM but not encoder.mlp_units (official semantics).
  assert c.actor.units == c.critic.units == c.rssm.units == c.reward_head.units == 512
  assert c.encoder.mlp_units == 1024
  assert c.actor.layers == 2 and c.encoder.mlp_layers == 5
  assert c.run.train_ratio == 1024.0 and c.env.atari.sticky is False
  assert c.env.atari.actions == 'needed' and c.env.atari.noops == 30
  later = cfg.load(['dreamerv3', 'atari100k', 'xs'])
  assert later.rssm.deter == 256 and later.actor.layers == 1 and later.encoder.cnn_depth == 24


def test_defaults_are_the_official_values():
  c = cfg.load(['dreamerv3'])
  assert c.horizon == 333 and c.return_lambda == 0.95 and c.imag_horizon == 15
  assert c.loss_scales.dyn == 0.5 and c.loss_scales.rep == 0.1
  assert c.dyn_loss.free == 1.0 and c.rep_loss.free == 1.0
  assert c.slow_critic_fraction == 0.02 and c.actent == 3e-4
  assert c.retnorm.perclo == 5.0 and c.retnorm.perchi == 95.0 and c.retnorm.decay == 0.99
  assert (c.model_opt.lr, c.model_opt.eps, c.model_opt.clip) == (1e-4, 1e-8, 1000.0)
  assert (c.actor_opt.lr, c.actor_opt.eps, c.actor_opt.clip) == (3e-5, 1e-5, 100.0)
  assert c.rssm.unimix == 0.01 and c.actor.unimix == 0.01 and c.critic.bins == 255


def test_overrides_from_argv_with_types():
  c = cfg.load(['dreamerv3'], ['--batch_size=8', '--run.train_ratio', '64',
                               '--.*\\.layers', '3', '--env.atari.size', '32,32'])
  assert c.batch_size == 8 and isinstance(c.batch_size, int)
  assert c.run.train_ratio == 64.0 and isinstance(c.run.train_ratio, float)
  assert c.actor.layers == 3 and c.cont_head.layers == 3
  assert c.env.atari.size == [32, 32]
  assert cfg.load([], {'run.steps': '1e5'}).run.steps == 100000


def test_unknown_key_names_closest():
  with pytest.raises(cfg.ConfigError, match="Unknown config key 'batch_sise'.*batch_size"):
    cfg.load([], {'batch_sise': 3})
  with pytest.raises(cfg.ConfigError, match='rssm.deter'):
    cfg.load([], {'rssm.detr': 3})


def test_unknown_preset_lists_valid():
  with pytest.raises(cfg.ConfigError, match="Unknown preset 'atari100'.*atari100k"):
    cfg.load(['atari100'])


def test_wrong_types_are_errors():
  with pytest.raises(cfg.ConfigError, match="'batch_size' expects a int"):
    cfg.load([], {'batch_size': 'large'})
  with pytest.raises(cfg.ConfigError, match='expects a int'):
    cfg.load([], {'batch_size': 2.5})
  with pytest.raises(cfg.ConfigError, match='expects a bool'):
    cfg.load([], {'run.eval_initial': 'maybe'})
  with pytest.raises(cfg.ConfigError, match='is a group'):
    cfg.load([], {'rssm': 3})
  with pytest.raises(cfg.ConfigError, match='not followed by a value'):
    cfg.load([], ['--seed'])


def test_save_round_trip(tmp_path):
  c = cfg.load(['dreamerv3', 'atari100k'], {'seed': 3})
  c.save(tmp_path / 'config.yaml')
  again = cfg.defaults().update(cfg.yaml.safe_load((tmp_path / 'config.yaml').read_text()))
  assert again == c


# --- ranges and choices (checks.py) ---------------------------------------------------------------
ROOT = cfg.CONFIG_DIR.parent


def reproduce_script(name):
  """reproduce/<name>.py as a module (its main(argv) and preset tables)."""
  path = ROOT / 'reproduce' / f'{name}.py'
  spec = importlib.util.spec_from_file_location(f'reproduce_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize('argv, message', [
    (['--steps', '-5'], 'run.steps=-5: expected an integer >= 1.'),
    (['--run.train_ratio=0'], 'run.train_ratio=0.0: expected a number > 0.'),
    (['--precision=float8'],
     "precision='float8': expected one of: 'float32', 'float16', 'bfloat16'."),
])
def test_reproduce_rejects_bad_values_before_writing(tmp_path, argv, message):
  """The issue's three examples: an error naming key, value and range; no logdir created, and
  an existing one left as it was."""
  main = reproduce_script('atari100k').main
  fresh = tmp_path / 'fresh'
  with pytest.raises(SystemExit) as exit_:
    main(['--game', 'pong', '--logdir', str(fresh), *argv])
  assert exit_.value.code == f'error: Invalid config value {message}'
  assert not fresh.exists()
  old = tmp_path / 'old'
  old.mkdir()
  (old / 'config.yaml').write_text('seed: 0\n')
  before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in old.iterdir()}
  with pytest.raises(SystemExit):
    main(['--game', 'pong', '--logdir', str(old), *argv])
  assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in old.iterdir()} == before


@pytest.mark.parametrize('overrides, message', [
    ({'run.steps': 0}, 'run.steps=0: expected an integer >= 1'),
    ({'run.train_ratio': -1}, 'run.train_ratio=-1.0: expected a number > 0'),
    ({'compile': 'jit'}, "compile='jit': expected one of: 'auto', 'eager', 'graph', 'xla'"),
    ({'batch_size': 0}, 'batch_size=0: expected an integer >= 1'),
    ({'batch_length': -3}, 'batch_length=-3: expected an integer >= 1'),
    ({'replay_size': 10}, 'replay_size=10: expected an integer >= batch_length'),
    ({'run.script': 'train_eval', 'run.eval_eps': 0},
     "run.eval_eps=0: expected an integer >= 1 when run.script is 'train_eval'"),
    ({'model_opt.lr': 0}, 'model_opt.lr=0.0: expected a number > 0.0'),
    ({'actor_opt.lr': -3e-5}, 'actor_opt.lr=-3e-05: expected a number > 0.0'),
    ({'imag_horizon': 0}, 'imag_horizon=0: expected an integer >= 1'),
    ({'horizon': 1}, 'horizon=1: expected an integer >= 2'),
    ({'rssm.deter': 0}, 'rssm.deter=0: expected an integer >= 1'),
    ({'.*\\.units$': 0}, 'actor.units=0: expected an integer >= 1'),
    ({'env.atari.size': '64'}, 'env.atari.size=[64]: expected 2 items, each an integer >= 1'),
    ({'env.atari.repeat': 0}, 'env.atari.repeat=0: expected an integer >= 1'),
    ({'return_lambda': 1.5}, 'return_lambda=1.5: expected a number in [0.0, 1.0]'),
    ({'slow_critic_fraction': 0}, 'slow_critic_fraction=0.0: expected a number in (0.0, 1.0]'),
    ({'rssm.latent': 'gauss'}, "rssm.latent='gauss': expected one of: 'categorical', 'gaussian'"),
    ({'behavior': 'dreamerv4'}, "behavior='dreamerv4': expected one of: 'dreamerv3'"),
    ({'actor_grad_disc': 'dynamics'}, "actor_grad_disc='dynamics': expected for behavior "
                                      'dreamerv3 one of: reinforce, backprop'),
    ({'encoder.cnn_keys': '(image'}, "encoder.cnn_keys='(image': expected a valid regular"),
    ({'retnorm.perchi': 5.0}, 'retnorm.perchi=5.0: expected a number in (retnorm.perclo, 100]'),
    ({'task': 'mujoco_walker'}, "task='mujoco_walker': expected <suite>_<name> (suites: atari"),
    ({'grad_heads': 'decoder,value'}, "grad_heads=['decoder', 'value']: expected a list of"),
])
def test_bad_values_name_key_value_and_range(overrides, message):
  with pytest.raises(cfg.ConfigError, match='Invalid config value ' + re.escape(message)):
    cfg.load(['dreamerv3'], overrides)


def test_every_bad_value_is_reported_at_once_and_run_checks_again(tmp_path):
  from dreamer_tf import run
  with pytest.raises(cfg.ConfigError) as error:
    cfg.load([], {'run.steps': -5, 'precision': 'float8', 'run.train_ratio': 0})
  assert str(error.value).splitlines() == [
      "Invalid config value precision='float8': expected one of: 'float32', 'float16', "
      "'bfloat16'.",
      'Invalid config value run.steps=-5: expected an integer >= 1.',
      'Invalid config value run.train_ratio=0.0: expected a number > 0.']
  unchecked = cfg.load(['dreamerv3', 'debug']).update({'run.steps': -5})  # update() is unchecked
  with pytest.raises(cfg.ConfigError, match='run.steps=-5'):
    run.run(unchecked, tmp_path / 'x')
  assert not (tmp_path / 'x').exists()


def preset_combinations():
  """Every preset alone, the presets each reproduce script and `dreamer_tf.train` resolve to,
  and those with `debug` (the tests' smoke runs)."""
  import dreamer_tf
  atari100k, atari200m = reproduce_script('atari100k'), reproduce_script('atari200m')
  dmc, regression = reproduce_script('dmc'), reproduce_script('regression')
  combos = [[name] for name in cfg.presets()]
  combos += [['dreamerv3', 'atari100k', size] for size in atari100k.AGENTS['dreamerv3'][0]]
  combos += [['dreamerv3_2024', 'dreamerv3_2024_atari100k', f'dreamerv3_2024_{size}']
             for size in atari100k.AGENTS['dreamerv3_2024'][0]]
  combos += list(atari200m.AGENTS.values())
  for agent, (vision, proprio) in dmc.AGENTS.items():
    sizes = dmc.SIZES.get(agent, (None,))
    combos += [presets + dmc.size_presets(agent, size) for presets in (vision, proprio)
               if presets for size in sizes]
  combos += [list(check.presets) for check in regression.CHECKS.values() if check.presets]
  combos.append(list(dreamer_tf.DEFAULT_PRESETS))
  return combos + [combo + ['debug'] for combo in combos]


def test_config_files_parse_the_same_with_libyaml():
  import yaml
  for name in ('defaults.yaml', 'presets.yaml'):
    text = (cfg.CONFIG_DIR / name).read_text()
    assert yaml.load(text, Loader=cfg.LOADER) == yaml.safe_load(text), name


def test_presets_and_reproduce_combinations_pass_the_checks():
  combos = preset_combinations()
  assert ['dreamerv2', 'dreamerv2_dmc_proprio', 'debug'] in combos and len(combos) > 60
  for combo in combos:
    cfg.load(combo)   # raises ConfigError naming the first bad value
  regression = reproduce_script('regression')
  runs = ROOT / 'results' / 'runs'
  for check in regression.CHECKS.values():
    cfg.check(regression.config_of(check, check.steps, 0, runs))


def test_every_default_key_has_a_rule_or_is_free():
  flat = cfg.defaults().flat
  for key, value in flat.items():
    assert checks.rules_of(key) or isinstance(value, bool) or key in checks.FREE, key
  for pattern in checks.RULES:   # and no rule is stale
    assert any(re.fullmatch(pattern, key) for key in flat), pattern


def test_choices_are_the_registries_that_use_them():
  from dreamer_tf import agent, behavior, envs, nets, rssm, world_model
  choices = lambda key: checks.rules_of(key)[0].choices
  assert choices('precision') == tuple(nets.POLICIES)
  assert choices('compile') == agent.COMPILE
  assert choices('update_order') == agent.UPDATE_ORDERS
  from dreamer_tf import distribute
  assert choices('run.strategy') == distribute.STRATEGIES
  assert choices('representation') == tuple(world_model.REPRESENTATIONS)
  assert choices('behavior') == tuple(behavior.BEHAVIORS) == tuple(checks.GRADS)
  for name, cls in behavior.BEHAVIORS.items():
    assert set(checks.GRADS[name]) == set(cls.GRADS)
  assert choices('rssm.latent') == rssm.RSSM.LATENTS and choices('rssm.gru') == rssm.RSSM.GRUS
  assert choices('rssm.std_act') == tuple(rssm.RSSM.STD_ACTS)
  assert choices('encoder.cnn') == choices('decoder.cnn') == nets.CNNS
  assert choices('critic.dist') == checks.DISTS == nets.Head.DISTS
  assert choices('actor_dist_cont') == nets.Head.STD_DISTS
  assert choices('clip_rewards') == tuple(world_model.CLIP_REWARDS)
  for act in checks.ACTS:
    nets.get_act(act)
  for impl in choices('rssm.norm'):
    nets.Norm(impl)
  for winit in choices('actor.winit'):
    for fan in choices('actor.fan'):
      nets.initializer(winit, fan)
  assert envs.split('gym:CartPole-v1') == ('gym', 'CartPole-v1')
