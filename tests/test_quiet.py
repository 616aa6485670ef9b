"""The entry points keep TensorFlow's start-up chatter off stderr (dreamer_tf/quiet.py)."""
import os
import pathlib
import subprocess
import sys

from dreamer_tf import quiet

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHATTER = ('All log messages before absl::InitializeLog()', 'oneDNN', 'cudart_stub', 'cuInit',
           'cpu_feature_guard', 'A.L.E: Arcade Learning Environment')
CAPTURED = (  # TF 2.21's import on a CPU machine (a two-line message), then other severities
    'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n'
    'I0000 00:00:1796168885.331258   17231 port.cc:153] oneDNN custom operations are on.\n'
    'I0000 00:00:1796168885.425642   17231 cpu_feature_guard.cc:227] This TensorFlow binary\n'
    'To enable the following instructions: AVX2 AVX512F, rebuild TensorFlow.\n'
    'W0000 00:00:1796168885.4 1 x.cc:1] a warning\n'
    'E0000 00:00:1796168889.344259   17231 cuda_platform.cc:52] failed call to cuInit\n'
    'F0000 00:00:1796168889.4 1 y.cc:2] fatal\n'
    'continued\n')


def entry_point(*args):
  """Runs reproduce/atari100k.py as a user would: no TF_CPP_MIN_LOG_LEVEL (conftest sets one)."""
  env = {k: v for k, v in os.environ.items() if k != quiet.LEVEL}
  return subprocess.run([sys.executable, 'reproduce/atari100k.py', '--game', 'pong', *args],
                        cwd=ROOT, env=env, capture_output=True, text=True)


def test_shown_lines_follow_the_level():
  captured = CAPTURED.splitlines()
  lines = lambda level: quiet.shown(CAPTURED, level).splitlines()
  assert lines(3) == captured[6:] == ['F0000 00:00:1796168889.4 1 y.cc:2] fatal', 'continued']
  assert lines(2) == captured[5:]
  assert lines(1) == captured[4:]
  assert lines(0) == captured[1:]
  assert quiet.shown(captured[0] + '\nPython warning\n', 3) == 'Python warning\n'


def test_bad_value_prints_only_its_error(tmp_path):
  proc = entry_point('--steps', '-5', '--logdir', str(tmp_path / 'x'))
  assert proc.returncode == 1 and not (tmp_path / 'x').exists()
  assert proc.stderr == 'error: Invalid config value run.steps=-5: expected an integer >= 1.\n'


def test_config_errors_come_before_tensorflow_is_imported(tmp_path):
  """A typo is refused in a fraction of a second, not after TensorFlow's start-up."""
  code = ('import runpy, sys\n'
          'sys.argv = sys.argv[1:]\n'
          'try:\n'
          '  if sys.argv[0] == "-m":\n'
          '    sys.argv = sys.argv[1:]\n'
          '    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)\n'
          '  else:\n'
          '    runpy.run_path(sys.argv[0], run_name="__main__")\n'
          'finally:\n'
          '  print("tensorflow imported:", "tensorflow" in sys.modules)\n')
  for entry in (['reproduce/atari100k.py', '--game', 'pong'],
                ['reproduce/atari200m.py', '--game', 'pong'],
                ['reproduce/dmc.py', '--task', 'walker_walk'],
                ['-m', 'dreamer_tf.train', '--task', 'dummy_disc']):
    proc = subprocess.run([sys.executable, '-c', code, *entry, '--logdir', str(tmp_path / 'x'),
                           '--batch_sise=3'], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "Unknown config key 'batch_sise'" in proc.stderr, entry
    assert proc.stdout.splitlines()[-1] == 'tensorflow imported: False', entry
  assert not (tmp_path / 'x').exists()


def test_tiny_run_has_no_startup_chatter(tmp_path):
  """Trains a few updates and judges them: TF is imported and runs ops (cuInit on a CPU
  machine), ALE starts; none of their start-up lines reach stderr (empty here)."""
  proc = entry_point('--steps', '52', '--preset', 'debug', '--run.script=train',
                     '--logdir', str(tmp_path / 'x'))
  assert proc.returncode == 0, proc.stderr
  assert 'VERDICT' in proc.stdout
  assert [line for line in proc.stderr.splitlines() if any(c in line for c in CHATTER)] == []


def test_verbose_and_a_set_level_are_respected():
  code = ('import os, sys; from dreamer_tf import quiet; quiet.quiet_tensorflow({}); '
          'print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"), "tensorflow" in sys.modules)')
  run = lambda arg, env: subprocess.run(
      [sys.executable, '-c', code.format(arg)], cwd=ROOT, capture_output=True, text=True,
      env={k: v for k, v in os.environ.items() if k != quiet.LEVEL} | env)
  assert run('True', {}).stdout == 'None False\n'        # --verbose: TensorFlow untouched
  proc = run('', {quiet.LEVEL: '1'})                     # a user's level is kept
  assert proc.stdout == '1 True\n'
  assert not [line for line in proc.stderr.splitlines() if line.startswith(('I0', 'WARNING: All'))]
