"""The reproduction report on written run dirs (partial suite, single-run dirs), verdict --curve,
compare on a sheeprl 0.8.4 log in the right unit, single-point methods drawn."""
import html.parser
import json
import shutil
import subprocess

import numpy as np
import pytest

from dreamer_tf import compare, plots, published, report, verdict
from test_compare import write_events
from test_verdict import write_run


class Images(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.images = []

  def handle_starttag(self, tag, attrs):
    if tag == 'img':
      self.images.append(dict(attrs)['src'])


def pong_seed(path, score, seed=0, step=100000, done=True, task='atari_pong'):
  write_run(path, task, [score] * 40, step, seed=seed)
  (path / 'config.yaml').write_text('env:\n  atari: {repeat: 4, sticky: false}\n'
                                    f'run: {{steps: {step}}}\n')
  (path / 'verdict.json').write_text('{}')
  if not done:
    (path / 'summary.json').unlink()


def test_report_of_a_partial_suite(tmp_path):
  root = tmp_path / 'suite' / 'atari100k'
  root.mkdir(parents=True)
  pong_seed(root.parent / 'atari100k_pong_s0', 17.0)  # any layout: found by config.yaml
  pong_seed(root / 'pong_s1', 19.0, seed=1)
  pong_seed(root / 'pong_s2', -21.0, seed=2, step=50000, done=False)   # still running
  pong_seed(root / 'boxing_s0', 0.0, task='atari_boxing')
  (root / 'suite.json').write_text(json.dumps({'budget': None, 'jobs': {'krull/seed0': {
      'benchmark': 'atari100k', 'task': 'krull', 'seed': 0, 'status': 'pending',
      'logdir': str(root / 'krull' / 'seed0')}}}))
  result = report.build(tmp_path / 'suite', tmp_path / 'out', log=lambda *a, **k: None)
  tasks = {t['task']: t for t in result['tasks']}
  pong = tasks['pong']
  assert pong['result']['verdict'] == 'MATCH' and pong['result']['ours_seeds'] == [17.0, 19.0]
  assert [r['status'] for r in pong['runs']] == ['done', 'done', 'running']
  running = pong['curves'][str(root / 'pong_s2')]
  assert running[-1]['frames'] == 200000 and running[-1]['verdict'] == 'BELOW'
  assert len(pong['curves'][str(root / 'pong_s1')]) == 40   # every 10k frames to 400k
  assert tasks['boxing']['result']['verdict'] == 'BELOW'
  agg = result['aggregates']['atari100k']
  assert agg['tasks'] == ['boxing', 'pong'] and agg['of'] == 26
  hns = [published.normalize('atari100k', 'pong', v) for v in (17.0, 19.0)]
  mean = (np.mean(hns) + published.normalize('atari100k', 'boxing', 0.0)) / 2
  assert agg['ours']['mean'][0] == pytest.approx(mean)
  assert agg['ours']['mean'][1] <= mean <= agg['ours']['mean'][2]
  text = (tmp_path / 'out' / 'index.html').read_text()
  parser = Images()
  parser.feed(text)
  assert len(parser.images) == 3
  for src in parser.images:
    assert (tmp_path / 'out' / src).stat().st_size > 5000
  assert 'seed 2 (running)' in text and 'krull' in text and 'pending' in text
  assert 'window(360000,400000]' in text and 'danijar/dreamerv3@8fa35f8' in text


def test_report_cli_on_a_single_run_dir(tmp_path, capsys):
  pong_seed(tmp_path / 'seed0', 18.0)
  assert report.main([str(tmp_path / 'seed0'), '--out', str(tmp_path / 'r')]) == 0
  assert (tmp_path / 'r' / 'index.html').exists()
  assert report.main([str(tmp_path / 'nothing'), '--out', str(tmp_path / 'r')]) == 2
  assert 'No such directory' in capsys.readouterr().err


def test_stratified_bootstrap():
  rng = np.random.default_rng(0)
  scores = rng.normal(1, 0.5, (5, 26))
  agg = report.aggregates({i: scores[:, i] for i in range(26)})
  assert agg['mean'][0] == pytest.approx(scores.mean())
  assert agg['median'][0] == pytest.approx(np.median(scores.mean(0)))
  flat = np.sort(scores.ravel())
  assert agg['iqm'][0] == pytest.approx(flat[32:130 - 32].mean())   # scipy trim_mean cuts
  for point, lo, hi in agg.values():
    assert lo < point < hi and hi - lo < 0.25
  ragged = report.aggregates({'a': [1.0], 'b': [2.0, 4.0]})   # seeds per task may differ
  assert ragged['mean'][0] == 2.0 and ragged['iqm'][0] == pytest.approx(7 / 3)  # 3 runs: no cut


def test_verdict_curve_cli(tmp_path, capsys):
  pong_seed(tmp_path / 's0', 18.0)
  pong_seed(tmp_path / 's1', -21.0, seed=1, step=25000, done=False)
  assert verdict.main(['--curve', str(tmp_path / 's0')]) == 0
  out = capsys.readouterr().out
  assert 'Along the curve: pong' in out and '400,000' in out and '(360,000, 400,000]' in out
  curve = verdict.judge_runs([tmp_path / 's0'], curve=True)[0]['curve']
  assert len(curve) == 40 and curve[0]['verdict'] == 'ABOVE' and curve[-1]['verdict'] == 'MATCH'
  results = verdict.judge_runs([tmp_path / 's1'], curve=True)   # running: to its last episode
  assert [r['frames'] for r in results[0]['curve']] == list(range(10000, 100001, 10000))


def sheeprl_log(root, repeat=4, env_id='PongNoFrameskip-v4'):
  logdir = root / 'logs' / 'runs' / 'dreamer_v3' / env_id / 'run_42' / 'version_0'
  # Policy steps 90,500 .. 100,000 (x4 = frames 362k .. 400k) at score 18.
  write_events(logdir, 'Rewards/rew_avg', [(s // 4, 18.0) for s in range(362000, 400001, 4000)])
  (logdir / 'config.yaml').write_text(
      f'algo:\n  name: dreamer_v3\n  total_steps: 100000\nenv:\n  id: {env_id}\n'
      f'  action_repeat: {repeat}\n  num_envs: 1\nseed: 42\n')
  return root / 'logs'


def test_compare_reads_sheeprl_steps_with_its_action_repeat(tmp_path, capsys):
  logs = sheeprl_log(tmp_path)
  run = compare.load(logs)   # task from env.id, repeat from config.yaml
  assert run['task'] == 'pong' and run['xs'][0] == 362000 and run['xs'][-1] == 398000
  assert 'env.action_repeat 4' in run['note']
  assert compare.main([f'sheeprl={logs}', '--frames', '400000']) == 0
  out = capsys.readouterr().out
  assert 'policy steps x env.action_repeat 4' in out and 'MATCH' in out
  assert compare.main([f'sheeprl={logs}', '--frames', '400000', '--unit', 'agent_steps',
                       '--repeat', '2']) == 2
  assert 'contradicts env.action_repeat 4' in capsys.readouterr().err
  for config in logs.rglob('config.yaml'):
    config.unlink()
  assert compare.main([f'sheeprl={logs}', '--task', 'pong', '--frames', '400000']) == 2
  assert 'pass --unit agent_steps --repeat' in capsys.readouterr().err
  run = compare.load(logs, task='pong', unit='agent_steps', repeat=4)
  assert run['xs'][-1] == 398000


def test_single_point_methods_are_drawn(tmp_path, monkeypatch):
  import matplotlib.axes
  drawn = []
  real = matplotlib.axes.Axes.plot

  def spy(self, *args, **kwargs):
    drawn.append((kwargs.get('label'), len(args[0]), kwargs.get('marker')))
    return real(self, *args, **kwargs)
  monkeypatch.setattr(matplotlib.axes.Axes, 'plot', spy)
  one = {'method': 'one', 'format': 'dreamerv3', 'xs': [400000], 'ys': [18.0]}
  many = {'method': 'many', 'format': 'dreamerv3', 'xs': list(range(0, 400001, 40000)),
          'ys': [1.0] * 11}
  plots.compare(tmp_path / 'c.png', [one, many], [], 'title', budget=400000)
  assert ('one (dreamerv3)', 1, 'o') in drawn and ('many (dreamerv3)', 11, None) in drawn
  drawn.clear()
  plots.learning(tmp_path / 'l.png', [{'xs': [240], 'ys': [0.0], 'seed': 0}], 'atari100k',
                 'pong', 'dreamerv3_2023', budget=240)
  assert ('ours seed 0', 1, 'o') in drawn


@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_console_errors(tmp_path):
  browser = shutil.which('chromium') or shutil.which('chromium-browser')
  if not browser:
    pytest.skip('chromium not installed (Debian: apt-get install chromium)')
  pong_seed(tmp_path / 'run', 18.0)
  report.build(tmp_path / 'run', tmp_path / 'out', log=lambda *a, **k: None)
  proc = subprocess.run(
      [browser, '--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr',
       '--v=0', '--dump-dom', (tmp_path / 'out' / 'index.html').as_uri()],
      capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0 and 'Reproduction report' in proc.stdout
  console = [line for line in proc.stderr.splitlines() if 'CONSOLE' in line]
  assert not console, console
  assert 'Failed to load resource' not in proc.stderr
