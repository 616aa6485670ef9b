"""What importing dreamer_tf sets for TensorFlow (dreamer_tf/__init__.py), checked in a fresh
process each: oneDNN on every x86 CPU (TF_ENABLE_ONEDNN_OPTS), whose allocator reuses freed
memory instead of faulting every large tensor's pages in again; tf.keras as Keras 2
(TF_USE_LEGACY_KERAS), so that TensorFlow's import skips Keras 3 and matplotlib; a user's own
setting wins. And the tests' own setting (conftest.py), in whichever process runs them."""
import os
import subprocess
import sys

PAGE_FAULTS = '''
import resource
import dreamer_tf
import tensorflow as tf
x = tf.ones([4096, 4096])  # 64 MB: malloc maps it fresh from the kernel each time
for _ in range(3):
  (x * 2.0).numpy()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
  y = x * 2.0
  del y
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''
DEFAULTS = '''
import sys
import dreamer_tf.agent
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
print(_pywrap_util_port.IsMklEnabled(), tf.keras.__name__.split('.')[0], 'keras' in sys.modules,
      'matplotlib' in sys.modules)
'''


def run(code, **env_vars):
  """The last line `code` prints in a fresh process, split into words."""
  env = {k: v for k, v in os.environ.items()
         if k not in ('TF_ENABLE_ONEDNN_OPTS', 'TF_USE_LEGACY_KERAS')}
  done = subprocess.run([sys.executable, '-c', code], env={**env, **env_vars},
                        capture_output=True, text=True, check=True)
  return done.stdout.splitlines()[-1].split()


def test_onednn_and_keras_2_by_default_and_the_users_settings_win():
  # oneDNN on; tf.keras is tf_keras, and neither Keras 3 nor (through it) matplotlib is loaded.
  assert run(DEFAULTS) == ['True', 'tf_keras', 'False', 'False']
  assert run(DEFAULTS, TF_ENABLE_ONEDNN_OPTS='0', TF_USE_LEGACY_KERAS='0') == [
      'False', 'keras', 'True', 'True']


def test_large_tensors_reuse_memory_by_default():
  pages = 20 * 4096 * 4096 * 4 // 4096  # 20 fresh 64 MB tensors, in 4 KiB pages
  assert int(run(PAGE_FAULTS)[0]) < pages // 100


def test_ops_are_deterministic_in_the_process_running_the_tests():
  """conftest.py sets it in pytest_configure: in each pytest-xdist worker (`make test`) or the
  one process of a plain `pytest`, never in xdist's controller, which runs no test."""
  from tensorflow.python.framework import config
  assert config.is_op_determinism_enabled()
