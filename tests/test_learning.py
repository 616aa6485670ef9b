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
def test_dreamerv3_learns_dummy_disc(tmp_path):
  config = cfg.load(['dreamerv3', 'debug'], SMALL_TASK + ['--run.steps', '1500'])
  out = run.run(config, tmp_path)
  scores = [e['score'] for e in out['episodes']]
  print('returns', scores)
  assert np.mean(scores[:2]) < 35            # random-policy level at the start
  assert np.mean(scores[-4:]) > 40           # well above random (25) after ~2.5k updates
