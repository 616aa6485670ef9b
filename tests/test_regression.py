"""Band logic of reproduce/regression.py (no training)."""
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'reproduce'))
import regression  # noqa: E402


def recorded_run():
  run = json.loads((ROOT / 'results/runs/dummy_disc_small/scores.json').read_text())[0]
  return run['xs'], run['ys']


def test_dummy_disc_band_from_recorded_run():
  check = regression.CHECKS['dummy_disc']
  result = regression.evaluate(check, [recorded_run()], 3000)
  # Last 10% of 3,000 steps: episodes at 2727, 2828, 2929 scored 99; floor 25 + 0.5 (99 - 25).
  assert result['score'] == 99.0 and result['band'][0] == 62.0 and result['status'] == 'PASS'
  xs = list(range(101, 3000, 101))
  broken = regression.evaluate(check, [(xs, [30.0] * len(xs))], 3000)
  assert broken['status'] == 'FAIL' and broken['score'] == 30.0
  assert regression.evaluate(check, [([], [])], 3000)['status'] == 'FAIL'  # no episodes


def test_pong_band_from_published_curve():
  check = regression.CHECKS['pong']
  lo, hi, reasons = regression.band(check, 200000)
  # 2023 seeds at 200k frames: 6.8 +- 8.72 (n=5); half-gain floor -20.7 + 0.5 (6.8 + 20.7).
  assert lo == pytest.approx(-6.95, abs=1e-3) and hi == pytest.approx(33.3, abs=0.1)
  assert 'dreamerv3_2023' in reasons[0]
  xs = list(range(182000, 200001, 2000))
  assert regression.evaluate(check, [(xs, [-20.0] * len(xs))], 200000)['status'] == 'FAIL'
  assert regression.evaluate(check, [(xs, [5.0] * len(xs))], 200000)['status'] == 'PASS'
  lo, hi, _ = regression.band(check, 400000)     # --full: 18.2 +- 2.30 -> [11.2, 25.2]
  assert (lo, hi) == pytest.approx((11.18, 25.17), abs=0.02)


def test_config_of_recorded_run_keeps_its_settings():
  check = regression.CHECKS['dummy_disc']
  config = regression.config_of(check, 300, 2, ROOT / 'results/runs')
  assert config.rssm.deter == 64 and config.model_opt.lr == 1e-3
  assert config.run.steps == 300 and config.seed == 2 and config.task == 'dummy_disc'


def test_unknown_check_and_missing_record(tmp_path):
  proc = subprocess.run([sys.executable, str(ROOT / 'reproduce/regression.py'), '--check', 'pongg',
                         '--logdir', str(tmp_path / 'x')], capture_output=True, text=True)
  assert proc.returncode == 2 and "Unknown check 'pongg'. Valid: dummy_disc, pong" in proc.stderr
  assert not (tmp_path / 'x').exists()
  with pytest.raises(FileNotFoundError, match='dummy_disc_small'):
    regression.band(regression.CHECKS['dummy_disc'], 3000, runs_dir=tmp_path)


def test_results_table_is_current_and_needs_run_files(tmp_path):
  sys.path.insert(0, str(ROOT / 'scripts'))
  import results_table
  assert results_table.main(['--check']) == 0
  assert '| 3,000 (3,000) | 5,425 | 1 | last 5 episodes 99.0 (first 5: 24.0) |' in results_table.table(ROOT / 'results/runs')
  (tmp_path / 'runs' / 'x').mkdir(parents=True)
  (tmp_path / 'README.md').write_text('no markers')
  with pytest.raises(FileNotFoundError, match='lacks config.yaml, scores.json, summary.json'):
    results_table.main(['--results', str(tmp_path)])
  assert (tmp_path / 'README.md').read_text() == 'no markers'
