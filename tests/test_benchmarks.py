"""The FLOP counter behind the benchmarks' achieved GFLOP/s (benchmarks/flops.py)."""
import pathlib
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'benchmarks'))
import flops  # noqa: E402


class Wrapped(keras.layers.Layer):

  def __init__(self):
    super().__init__()
    self.inner = keras.layers.Dense(2)

  def call(self, x):
    return self.inner(x)


class TinyAgent:
  """Stands in for an Agent: a taped Dense call, an untaped conv, a frozen slow critic."""

  def __init__(self):
    self.dense = keras.layers.Dense(5)
    self.conv = keras.layers.Conv2D(4, 3, 2, 'same')
    self.deconv = keras.layers.Conv2DTranspose(2, 4, 2, 'same')
    self.ac = types.SimpleNamespace(slow_critic=Wrapped())

  def _train_step(self, batch, seed):
    with tf.GradientTape():
      self.dense(batch['x'])                 # (3, 7) -> 5: 3 * 7 * 5 MACs, taped: x3
      self.ac.slow_critic(batch['x'])        # (3, 7) -> 2: never differentiated: x1
    self.conv(batch['img'])                  # (2, 8, 8, 1) -> (2, 4, 4, 4): 32 px * 9 * 1 * 4
    self.deconv(tf.zeros([1, 2, 2, 3]))      # 4 input px * 16 * 3 * 2 MACs


def test_flop_counter_matches_hand_counts():
  agent = TinyAgent()
  batch = {'x': np.zeros((3, 7), np.float32), 'img': np.zeros((2, 8, 8, 1), np.float32)}
  work = flops.count_update_flops(agent, batch)
  dense, slow, conv, deconv = 3 * 7 * 5, 3 * 7 * 2, 32 * 9 * 4, 4 * 16 * 3 * 2
  assert work['forward'] == 2 * (dense + slow + conv + deconv)
  assert work['with_backward'] == 2 * (3 * dense + slow + conv + deconv)
  # The layers are restored afterwards.
  assert 'count_update_flops' not in keras.layers.Dense.call.__qualname__


def test_peer_requirements_are_made_cpu_only():
  """benchmarks/peers.py installs the official JAX code's requirements without CUDA or ROM
  downloads: jax[cuda12]==V becomes jax==V plus jaxlib==V; nvidia-* and autorom are dropped."""
  import peers
  text = ('jax[cuda12]==0.4.33  # accelerators\nnvidia-cuda-nvcc-cu12\n\nAutoROM\n'
          'ninjax>=3.5.1\nale_py==0.9.0\n')
  assert peers.cpu_requirements(text) == (
      'jax==0.4.33\njaxlib==0.4.33\nninjax>=3.5.1\nale_py==0.9.0\n')


def test_gpu_check_says_when_there_is_no_gpu_and_projects_pong():
  """On a CPU machine the GPU check measures nothing and says why; its Pong projection is the
  prefill plus one update and one acting step per agent step up to 15,000 steps (60k frames)."""
  import subprocess
  root = pathlib.Path(__file__).resolve().parent.parent
  proc = subprocess.run([sys.executable, str(root / 'benchmarks' / 'gpu_check.py')],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2 and 'No GPU visible to TensorFlow' in proc.stdout
  import gpu_check
  lines = []
  gpu_check.print = lambda *args, **kwargs: lines.append(' '.join(map(str, args)))
  try:
    assert gpu_check.learn(1.0, 1.0, 10.0, '/nonexistent') is None  # 1 min < the prefill
  finally:
    del gpu_check.print
  assert 'Projected time to 60k frames (15,000 agent steps): 256.2 min' in lines[0]
  assert 'do not reach past the prefill' in lines[1]


def test_peer_ratios_are_the_goals_figures_among_the_programs_that_ran():
  """peers.ratios divides the named figures of two programs; a goal whose programs did not run
  (or gave no figure) is left out rather than shown as zero."""
  import peers
  results = {'ours-xs': {'sec_per_update_median': 2.0, 'peak_rss_gb': 2.5,
                         'start_to_first_update_s': 12.0},
             'sheeprl-xs': {'sec_per_update_median': 4.0, 'peak_rss_gb': 2.6},
             'ours-xs-bf16': {'sec_per_update_median': 1.5}}
  rows = {row['name']: row['value'] for row in peers.ratios(results)}
  assert rows == {'XS float32 s/update, ours / sheeprl': 0.5,
                  'XS bfloat16 / float32 s/update, ours': 0.75,
                  'XS peak RSS, ours / sheeprl': 2.5 / 2.6,
                  'XS start -> first update done, ours (s)': 12.0}


def test_peer_source_is_the_pinned_commit_of_a_local_git_dir(tmp_path, monkeypatch):
  """The official source is exported at DREAMERV3_COMMIT from a given clone, never from a path
  of a particular machine; a path that is not a git directory is refused with its name."""
  import subprocess
  import peers
  assert not pathlib.Path(peers.DREAMERV3_GIT).exists() and '://' in peers.DREAMERV3_GIT
  with pytest.raises(SystemExit, match='no git directory at'):
    peers.export_dreamerv3(tmp_path / 'root', str(tmp_path))
  repo = tmp_path / 'clone'
  git = lambda *args: subprocess.run(['git', '-C', str(repo), *args], check=True,
                                     capture_output=True, text=True).stdout.strip()
  repo.mkdir()
  git('init', '-q')
  for text in ('pinned', 'later'):
    (repo / 'dreamerv3').mkdir(exist_ok=True)
    (repo / 'dreamerv3' / 'main.py').write_text(text)
    git('add', '-A')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', text)
    if text == 'pinned':
      pinned = git('rev-parse', 'HEAD')
  monkeypatch.setattr(peers, 'DREAMERV3_COMMIT', pinned)
  src = peers.export_dreamerv3(tmp_path / 'root', str(repo))
  assert (src / 'dreamerv3' / 'main.py').read_text() == 'pinned'
  assert (src / 'PEERS_COMMIT').read_text().startswith(pinned)


def test_onednn_breakdown_sums_the_timed_updates_and_counts_their_flops():
  """benchmarks/onednn_ops.py: calls before train_step.py's first-update line (the build, the
  first update) are left out; the work of a strided conv (any direction), a gemm and an inner
  product matches hand counts; a timestamp field before `exec` does not shift the fields."""
  import onednn_ops
  conv = ('onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_strided:avx512_core,'
          'backward_data,src:f32::blocked:acdb::f0 wei:f32:ap:blocked:Acdb16a::f0,,'
          'alg:convolution_direct,mb8_ic3oc4_ih8oh4kh4sh2dh0ph1_iw8ow4kw4sw2dw0pw1,{}')
  gemm = ('onednn_verbose,123.5,v1,primitive,exec,cpu,gemm_api,,undef,src_bf16::blocked:ab:f0 '
          'wei_bf16::blocked:ab:f0 dst_f32::blocked:ab:f0,,,6x5:5x7,{}')
  inner = ('onednn_verbose,v1,primitive,exec,cpu,inner_product,x64:gemm:jit,forward_training,'
           'src:f32::blocked:ab::f0 wei:f32::blocked:ba::f0,attr-scratchpad:user,,mb2ic3oc4,{}')
  lines = ['onednn_verbose,v1,primitive,info,template:operation,engine,primitive', conv.format(50),
           'first update done: 9.0 s (tracing, graph optimisation, the update), 20.0 s after',
           conv.format(2), gemm.format(1), 'update 1/2: 4.000 s', conv.format(4), gemm.format(3),
           inner.format(0.5), 'update 2/2: 5.000 s']
  updates, wall, by_primitive, by_shape = onednn_ops.summarise(lines)
  assert (updates, wall) == (2, 4.5)
  primitive = ('convolution', 'brgconv_strided:avx512_core', 'backward_data', 'f32')
  assert by_primitive[primitive] == [2, 6.0]
  assert by_primitive['gemm_api', '', 'undef', 'bf16'] == [2, 4.0]
  conv_problem = 'mb8_ic3oc4_ih8oh4kh4sh2dh0ph1_iw8ow4kw4sw2dw0pw1'
  assert by_shape[primitive, conv_problem] == [2, 6.0, 2 * 8 * 4 * 4 * 4 * 3 * 4 * 4]
  assert by_shape[('gemm_api', '', 'undef', 'bf16'), '6x5:5x7'][2] == 2 * 6 * 5 * 7
  assert onednn_ops.flops('inner_product', 'mb2ic3oc4') == 2 * 2 * 3 * 4
  assert onednn_ops.flops('softmax', '1024x32x32') is None
  with pytest.raises(ValueError, match='first update done'):
    onednn_ops.summarise(lines[:2])
