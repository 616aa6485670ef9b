"""Learning runs (slow; `make test-slow` or `pytest -m slow`), recorded in results/README.md."""
import numpy as np
import pytest

from dreamer_tf import config as cfg
from dreamer_tf import run

# dummy_disc: reward 1 when the action names the grey level shown. Random policy: 25 / 100.
# A small model and 10x the paper's learning rates, so that it learns in minutes on 2 cores;
# with the paper's rates the reward head first spends ~1.5k updates on the marginal.
SMALL_TASK = ['--task', 'dummy_disc', '--env.dummy.size', '16,16', '--run.log_every', '60',
              '--rssm.deter', '64', '--rssm.units', '64', '--rssm.stoch', '8',
              '--rssm.classes', '8', '--.*\\.units$', '64', '--.*\\.cnn_depth', '16',
              '--batch_size', '8', '--batch_length', '32', '--.*\\.bins', '255',
              '--run.train_ratio', '512', '--model_opt.lr', '1e-3', '--actor_opt.lr', '3e-4',
              '--critic_opt.lr', '3e-4']


@pytest.mark.slow
@pytest.mark.parametrize('precision', ['float32', 'bfloat16'])
def test_dreamerv3_learns_dummy_disc(tmp_path, precision):
  """Also in bfloat16, the reduced precision this CPU runs natively (`--precision=bfloat16`); a
  non-finite loss or gradient norm would stop run.run with an error (run.py)."""
  config = cfg.load(['dreamerv3', 'debug'],
                    SMALL_TASK + ['--run.steps', '1500', '--precision', precision])
  out = run.run(config, tmp_path)
  scores = [e['score'] for e in out['episodes']]
  print(precision, 'returns', scores)
  assert np.mean(scores[:2]) < 35            # random-policy level at the start
  assert np.mean(scores[-4:]) > 40           # well above random (25) after ~2.5k updates


# dummy_cont: the grey level encodes a target t in [-1, 1], reward 1 - |a - t| / 2 per step, 100
# steps per episode; the random prefill policy earns ~60 (measured), a perfect one 100. The same
# small-task overrides for every version (recorded in results/runs/dummy_cont_*): 64 units, 30
# Gaussian (V1) or 8x8 categorical (V2) latents, batch 8 x 32, one update per agent step after
# 500 random steps, learning rates 1e-3 (model) and 3e-4 (actor, critic).
SMALL_CONT = ['--task', 'dummy_cont', '--run.log_every', '60', '--precision', 'float32',
              '--rssm.deter', '64', '--rssm.units', '64', '--.*\\.units$', '64',
              '--.*\\.mlp_units', '64', '--.*\\.cnn_depth', '16', '--batch_size', '8',
              '--batch_length', '32', '--run.train_fill', '500', '--model_opt.lr', '1e-3',
              '--actor_opt.lr', '3e-4', '--critic_opt.lr', '3e-4']
SCHEDULES = {
    'dreamerv1': (['dreamerv1', 'debug'], ['--rssm.stoch', '30', '--run.train_every', '1',
                                           '--run.train_steps', '1', '--run.pretrain', '1']),
    'dreamerv2': (['dreamerv2', 'dreamerv2_dmc_vision', 'debug'],
                  ['--rssm.stoch', '8', '--rssm.classes', '8', '--run.train_every', '1',
                   '--run.train_steps', '1', '--run.pretrain', '1']),
    'dreamerv3': (['dreamerv3', 'debug'], ['--run.train_ratio', '256', '--.*\\.bins', '255']),
}


@pytest.mark.slow
@pytest.mark.parametrize('version', sorted(SCHEDULES))
def test_version_learns_dummy_cont(tmp_path, version):
  presets, schedule = SCHEDULES[version]
  config = cfg.load(presets, SMALL_CONT + schedule + ['--run.steps', '3000'])
  out = run.run(config, tmp_path)
  scores = [e['score'] for e in out['episodes']]
  print(version, 'returns', [round(s, 1) for s in scores])
  assert np.mean(scores[:5]) < 66               # the random prefill policy
  assert np.mean(scores[-5:]) > 75              # clearly above random (~60) after ~2.5k updates
