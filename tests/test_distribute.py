"""Data parallelism (run.strategy): an update on two replicas equals the one-device update on the
same global batch (tests/distributed_update.py), with MirroredStrategy over two logical CPU
devices and with MultiWorkerMirroredStrategy over two local worker processes."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from dreamer_tf import config as cfg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tests', 'distributed_update.py')
ENV = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '3'}


def result(output):
  line = next(l for l in output.splitlines() if l.startswith('RESULT '))
  return json.loads(line[len('RESULT '):])


def check(out):
  """Two updates: every variable (weights, Adam moments, slow critic, normaliser, counters) of
  both replicas within 5e-5 of the one-device agent's (measured: 9.5e-6, an Adam moment); every
  metric within 1e-6 relative (measured: 2.2e-7); the replicas' copies identical."""
  assert out['replicas'] == 2 and out['step'] == 2 and out['initial'] == 0.0
  assert out['params'] < 5e-5, out['worst']
  assert max(out['metrics'].values()) < 1e-6, out['metrics']
  assert out['replica_spread'] == 0.0


def test_mirrored_two_devices_equal_one_device():
  proc = subprocess.run([sys.executable, SCRIPT, 'mirrored'], capture_output=True, text=True,
                        env=ENV, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  check(result(proc.stdout))


def free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [str(s.getsockname()[1]) for s in sockets]
  for s in sockets:
    s.close()
  return ','.join(ports)


def test_two_worker_processes_equal_one_device():
  ports = free_ports(2)
  procs = [subprocess.Popen([sys.executable, SCRIPT, 'worker', str(i), ports], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for proc, (stdout, stderr) in zip(procs, outputs):
    assert proc.returncode == 0, stderr[-3000:]
    check(result(stdout))


def test_mirrored_run_trains_checkpoints_and_resumes(tmp_path):
  proc = subprocess.run([sys.executable, SCRIPT, 'run', str(tmp_path)], capture_output=True,
                        text=True, env=ENV, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = [json.loads(l[len('RESULT '):]) for l in proc.stdout.splitlines()
             if l.startswith('RESULT ')]
  assert [r['step'] for r in results] == [70, 90]
  assert 0 < results[0]['updates'] < results[1]['updates']
  assert 'Resumed' in proc.stdout and (tmp_path / 'checkpoints' / 'checkpoint').exists()


def test_bad_strategy_and_uneven_batch_are_refused():
  with pytest.raises(cfg.ConfigError, match=r"run.strategy.*'pmap'.*'default', 'mirrored'"):
    cfg.load(['dreamerv3', 'debug'], ['--run.strategy', 'pmap'])
  from dreamer_tf import distribute

  class Two:
    num_replicas_in_sync = 2
  with pytest.raises(ValueError, match='batch_size 3 does not split evenly over the 2 replicas'):
    distribute.split(Two(), {'reward': np.zeros((3, 4))})
