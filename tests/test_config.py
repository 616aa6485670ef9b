import pytest

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
