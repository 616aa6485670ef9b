"""reproduce/suite.py on the debug preset: three Atari 100k games x two seeds of 60 agent steps,
locally and on a local Ray instance, killed half-way and re-run to completion; then the report
built from that suite."""
import html.parser
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from dreamer_tf import report, suite

GAMES = ('pong', 'boxing', 'breakout')
# Each job takes seconds: no eval env, 20-step episodes, ~no updates, eager policy.
FAST = ['--preset', 'debug', '--run.script=train', '--env.atari.length=80',
        '--run.train_ratio=0.001', '--compile=eager']


def suite_cmd(root, *extra):
  return [sys.executable, 'reproduce/suite.py', 'atari100k', '--seeds', '0-1', '--games',
          ','.join(GAMES), '--budget', '60', '--root', str(root), '--every', '5', *extra, *FAST]


def logdirs(root):
  return [root / 'atari100k' / g / f'seed{s}' for g in GAMES for s in (0, 1)]


def count(logdir, text):
  path = logdir / suite.LOG
  return path.read_text().count(text) if path.exists() else 0


def run_killed_then_resumed(root, extra):
  """Kills the suite once two jobs are done, re-runs it; returns the second run's output."""
  proc = subprocess.Popen(suite_cmd(root, *extra), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 600
  while sum(suite.finished(d, 60) for d in logdirs(root)) < 2:
    assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
    time.sleep(1)
  os.kill(proc.pid, signal.SIGKILL)  # the jobs get SIGINT (PDEATHSIG), save and exit
  proc.wait()
  done_before = {d for d in logdirs(root) if suite.finished(d, 60)}
  assert 2 <= len(done_before) < 6
  again = subprocess.run(suite_cmd(root, *extra), capture_output=True, text=True, timeout=900)
  assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
  for d in logdirs(root):
    assert suite.finished(d, 60), d
    # The reproduce script prints `Presets:` at each start and `[done]` once at its budget; a
    # job killed while still importing wrote its START line but no `Presets:`.
    assert count(d, '[done] step 60/60') == 1, d
    starts, presets = count(d, suite.START), count(d, 'Presets:')
    if d in done_before:
      assert starts == presets == 1, d
    else:
      assert 1 <= starts <= 2 and starts - 1 <= presets <= starts, (d, starts, presets)
  state = json.loads((root / 'atari100k' / 'suite.json').read_text())
  assert {j['status'] for j in state['jobs'].values()} == {'done'} and len(state['jobs']) == 6
  assert f'{len(done_before)} finished, {6 - len(done_before)} to run' in again.stdout
  # A third run has nothing to do.
  third = subprocess.run(suite_cmd(root, *extra), capture_output=True, text=True, timeout=300)
  assert third.returncode == 0 and '6 finished, 0 to run' in third.stdout
  assert sum(count(d, suite.START) for d in logdirs(root)) <= 6 + 2
  return again.stdout


@pytest.fixture(scope='module')
def local_suite(tmp_path_factory):
  root = tmp_path_factory.mktemp('suite')
  out = run_killed_then_resumed(root, ['--jobs', '2'])
  return root, out


def test_local_suite_killed_and_resumed(local_suite):
  root, out = local_suite
  assert 'local: 2 job(s) at a time' in out and '6/6 done' in out and 'ETA' in out


@pytest.fixture
def ray_address():
  ray = pytest.importorskip('ray')
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  try:
    yield ray.get_runtime_context().gcs_address
  finally:
    ray.shutdown()


def test_ray_suite_killed_and_resumed(tmp_path, ray_address):
  out = run_killed_then_resumed(tmp_path, ['--backend', 'ray', '--address', ray_address])
  assert 'ray at' in out and '6/6 done' in out


def test_report_of_the_suite(local_suite, tmp_path):
  root, _ = local_suite
  result = report.build(root, tmp_path / 'report', log=lambda *a, **k: None)
  assert {t['task'] for t in result['tasks']} == set(GAMES)
  assert all(len(t['runs']) == 2 and t['result'] for t in result['tasks'])
  assert result['aggregates']['atari100k']['ours']['iqm'] is not None
  images = []

  class Parser(html.parser.HTMLParser):
    def handle_starttag(self, tag, attrs):
      if tag == 'img':
        images.append(dict(attrs)['src'])
  text = (tmp_path / 'report' / 'index.html').read_text()
  Parser().feed(text)
  assert len(images) == 1 + len(GAMES)
  for src in images:
    assert (tmp_path / 'report' / src).stat().st_size > 5000, src
  assert 'IQM' in text and 'Suite jobs' in text and 'Random' in text


def test_suite_rejects_bad_input(tmp_path):
  def run(*argv):
    return subprocess.run([sys.executable, 'reproduce/suite.py', *argv], capture_output=True,
                          text=True, timeout=120)
  cases = [(('atari100k', '--games', 'pongg'), "Unknown atari100k task(s) pongg"),
           (('atari100k', '--seeds', '0-x'), "Bad --seeds '0-x'"),
           (('atari100k', '--seed', '3'), '--seed: set by the suite'),
           (('dmc_vision', '--agent', 'dreamerv9'), "Unknown agent 'dreamerv9'"),
           (('atari999',), 'invalid choice')]
  for argv, message in cases:
    proc = run(*argv, '--root', str(tmp_path))
    assert proc.returncode == 2 and message in proc.stderr, (argv, proc.stderr)
  assert not (tmp_path / 'atari100k').exists()


def test_jobs_tasks_and_gpus(monkeypatch, tmp_path):
  assert len(suite.tasks('atari100k', 'dreamerv3')) == 26
  assert 'walker_walk' in suite.tasks('dmc_vision', 'dreamerv1')
  assert suite.parse_seeds('0-2,5') == [0, 1, 2, 5]
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0,3')
  assert suite.gpu_ids() == ['0', '3']
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
  assert suite.gpu_ids() == []
  jobs = suite.Suite('dmc_proprio', [0], 'walker_walk', budget=10, extra=['--size', 'xs'],
                     root=tmp_path)
  cmd = suite.command(jobs.jobs()[0], 1)
  assert cmd[cmd.index('--task') + 1] == 'walker_walk' and '--proprio' in cmd
  assert cmd[-4:] == ['--steps', '10', '--size', 'xs']
  jobs.save()
  with pytest.raises(ValueError, match="other settings .*'--size', 'xs'"):
    suite.Suite('dmc_proprio', [0], 'walker_walk', root=tmp_path)
  assert not suite.finished(pathlib.Path(jobs.jobs()[0]['logdir']), 10)
