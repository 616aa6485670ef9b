"""Peer benchmark: the train step of two other DreamerV3 implementations and ours on this
machine, each run by its own training entry point on Atari Pong 64x64, batch 16 x 64, CPU only,
one program at a time, printed as the ratios of issue 15's goals from one run.

    .venv/bin/python benchmarks/peers.py --setup --seconds 200     # install, then measure all
    .venv/bin/python benchmarks/peers.py --peer sheeprl-xs --peer ours-xs --seconds 200
    .venv/bin/python benchmarks/peers.py --peer jax-size1m --seconds 120 --json jax.json

Programs (the peers each in its own virtualenv under --root, default /tmp/peers):
  sheeprl-xs       sheeprl 0.8.4 (PyTorch), `exp=dreamer_v3 algo=dreamer_v3_XS` (the paper's XS)
  sheeprl-s        sheeprl 0.8.4, `exp=dreamer_v3 algo=dreamer_v3_S` (S, 2023 atari100k's size)
  sheeprl-xs-bf16  sheeprl-xs with `fabric.precision=bf16-mixed` (autocast to bfloat16)
  sheeprl-1m       sheeprl 0.8.4, `exp=dreamer_v3_5 algo=dreamer_v3_5_1M` (the official `size1m`)
  jax-size1m       danijar/dreamerv3 (the 2024 JAX rewrite), `--configs atari100k size1m`
  ours-xs, ours-s, ours-xs-bf16, ours-size1m
                   dreamer_tf's benchmarks/loop.py (`--size`, bf16: `--precision=bfloat16`),
                   run by this interpreter from this checkout
  ours-2024-size1m dreamer_tf's `dreamerv3_2024` preset (the rewrite's algorithm) at size1m,
                   float32 as jax-size1m runs

Each peer runs as a subprocess for --seconds, in a new session, then gets SIGINT (SIGKILL if it
lingers). Neither peer prints a line per update, so the subprocess is started through a small
launcher (written by this script into --root) that wraps the peer's own update function with a
wall-clock timer and prints `PEERS_UPDATE <begin> <end>` after each update, then calls the
peer's normal entry point (sheeprl.cli.run / dreamerv3.main.main) with the overrides below.
The JAX update is dispatched asynchronously, so its wrapper also waits for the new parameters
(jax.block_until_ready) before stopping the clock. Figures, as in benchmarks/loop.py:
seconds per update (median, p10, p90, over the updates after the first), the first update's
seconds (compilation included), start -> first update (from the subprocess launch to the end of
the first update, and to its beginning), and the peak RSS of the subprocess tree (the sum of
VmRSS over the process and its descendants, polled from /proc every --poll seconds). Parameter
counts: sheeprl's world model, actor and critic counted by the launcher at the first update;
dreamerv3's from its own `Optimizer ... has N params` banner (also XLA's FLOPs of a train step).
Both peers act with their policy (dreamerv3, sheeprl's dreamer_v3_5) or at random (sheeprl's
dreamer_v3) until the replay holds one batch (16 x 64 steps), then train at train ratio 256.
The figures move a lot with other load on the machine: measure on an idle one. Each result
carries `probe_before`, the matmul speed of the machine just before the program ran (probe()).
Run it with the interpreter of this checkout's venv (ours and the probe import dreamer_tf / TF).

--setup creates what is missing (idempotent): the sheeprl venv (torch==2.13.0 first, then
sheeprl[atari]==0.8.4 with torch pinned by a constraint file), and the JAX venv with the
requirements of the dreamerv3 source, made CPU-only (jax[cuda12]==V -> jax==V jaxlib==V, no
nvidia-* and no autorom: ale_py ships the ROMs). The dreamerv3 source is commit
DREAMERV3_COMMIT, exported from --dreamerv3-git: a git URL (default: GitHub, cloned once into
--root) or the path of a local clone or bare git directory.
"""
import argparse
import ast
import importlib.metadata
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np

SHEEPRL_VERSION = '0.8.4'
TORCH_VERSION = '2.13.0'
DREAMERV3_GIT = 'https://github.com/danijar/dreamerv3'
DREAMERV3_COMMIT = 'e3f02248693a79dc8b0ebd62c93683888ddaccfe'  # the rewrite (2024)

# The train ratio (replayed steps per policy step) of dreamer_tf's atari100k runs and loop.py.
TRAIN_RATIO = 256.0
BATCH, LENGTH = 16, 64
OURS = {'ours-xs': ['--size', 'xs'], 'ours-s': ['--size', 's'],
        'ours-xs-bf16': ['--size', 'xs', '--precision=bfloat16'],
        'ours-size1m': ['--size', 'size1m'],
        'ours-2024-size1m': ['--agent', 'dreamerv3_2024', '--size', 'size1m',
                             '--precision=float32']}
SHEEPRL = {  # sheeprl's configs/exp/*.yaml and configs/algo/*.yaml
    'sheeprl-xs': ('dreamer_v3', ['exp=dreamer_v3', 'algo=dreamer_v3_XS']),
    'sheeprl-s': ('dreamer_v3', ['exp=dreamer_v3', 'algo=dreamer_v3_S']),
    'sheeprl-xs-bf16': ('dreamer_v3', ['exp=dreamer_v3', 'algo=dreamer_v3_XS']),
    'sheeprl-1m': ('dreamer_v3_5', ['exp=dreamer_v3_5', 'algo=dreamer_v3_5_1M'])}
PEERS = (*SHEEPRL, 'jax-size1m', *OURS)
# The goals of issue 15: (name, numerator, denominator, figure, goal as text).
RATIOS = (
    ('XS float32 s/update, ours / sheeprl', 'ours-xs', 'sheeprl-xs', 'sec_per_update_median',
     '<= 0.5'),
    ('S float32 s/update, ours / sheeprl', 'ours-s', 'sheeprl-s', 'sec_per_update_median',
     '<= 0.4'),
    ('XS bfloat16 / float32 s/update, ours', 'ours-xs-bf16', 'ours-xs', 'sec_per_update_median',
     '<= 0.6'),
    ('XS bf16-mixed / float32 s/update, sheeprl', 'sheeprl-xs-bf16', 'sheeprl-xs',
     'sec_per_update_median', 'beside'),
    ('XS peak RSS, ours / sheeprl', 'ours-xs', 'sheeprl-xs', 'peak_rss_gb', '< 1'),
    ('XS start -> first update done, ours (s)', 'ours-xs', None, 'start_to_first_update_s',
     '<= 8 s'),
    ('size1m s/update, ours / official JAX', 'ours-size1m', 'jax-size1m',
     'sec_per_update_median', '<= 0.5'),
    ('size1m s/update, the same algorithm: ours dreamerv3_2024 / official JAX',
     'ours-2024-size1m', 'jax-size1m', 'sec_per_update_median', 'beside'))

# Launchers: run in the peer's venv, wrap its update with a timer, then call its entry point.
SHEEPRL_LAUNCHER = r'''
import importlib, inspect, sys, time
module = importlib.import_module(sys.argv[1])   # the algorithm's module, whose main() calls train()
inner = module.train
counted = []

def timed_train(*args, **kwargs):
  if not counted:  # train(fabric, [cfg,] world_model, actor, critic, ...): by parameter name
    bound = inspect.signature(inner).bind(*args, **kwargs).arguments
    counts = {name: sum(p.numel() for p in bound[name].parameters())
              for name in ('world_model', 'actor', 'critic')}
    counts['total'] = sum(counts.values())
    counted.append(counts)
    print('PEERS_PARAMS', counts, flush=True)
  begin = time.time()
  out = inner(*args, **kwargs)
  print(f'PEERS_UPDATE {begin:.6f} {time.time():.6f}', flush=True)
  return out

module.train = timed_train
import torch
print('PEERS_VERSIONS', {'torch': torch.__version__,
                         'threads': torch.get_num_threads()}, flush=True)
from sheeprl.cli import run
sys.argv = ['sheeprl'] + sys.argv[2:]
run()
'''

JAX_LAUNCHER = r'''
import sys, time
sys.path.insert(0, sys.argv[1])  # the dreamerv3 source
import jax
import embodied.jax.agent as jax_agent
inner = jax_agent.Agent.train

def timed_train(self, carry, data):
  begin = time.time()
  out = inner(self, carry, data)
  jax.block_until_ready(self.params)  # the update is dispatched asynchronously
  print(f'PEERS_UPDATE {begin:.6f} {time.time():.6f}', flush=True)
  return out

jax_agent.Agent.train = timed_train
import jaxlib
print('PEERS_VERSIONS', {'jax': jax.__version__, 'jaxlib': jaxlib.__version__,
                         'devices': [str(d) for d in jax.devices()]}, flush=True)
from dreamerv3 import main
main.main(sys.argv[2:])
'''


def sh(cmd, **kwargs):
  print('+', ' '.join(map(str, cmd)), flush=True)
  subprocess.run(list(map(str, cmd)), check=True, **kwargs)


def venv_ok(venv, check):
  python = venv / 'bin' / 'python'
  return python.exists() and subprocess.run(
      [str(python), '-c', check], capture_output=True).returncode == 0


def setup_sheeprl(root):
  venv = root / 'sheeprl-venv'
  if venv_ok(venv, f'import importlib.metadata as m, torch; '
                   f'assert m.version("sheeprl") == "{SHEEPRL_VERSION}"; import ale_py'):
    print(f'{venv}: present', flush=True)
    return
  sh([sys.executable, '-m', 'venv', venv])
  pip = venv / 'bin' / 'pip'
  # torch first: this exact version is a CPU build on the machine's disk; anything that let pip
  # pick a newer one would download a CUDA build of several GB.
  sh([pip, 'install', f'torch=={TORCH_VERSION}'])
  constraint = root / 'torch-constraint.txt'
  constraint.write_text(f'torch=={TORCH_VERSION}\n')
  sh([pip, 'install', '-c', constraint, f'sheeprl[atari]=={SHEEPRL_VERSION}'])


def export_dreamerv3(root, source):
  """The dreamerv3 source at DREAMERV3_COMMIT under root, from a git URL or a local git dir."""
  src = root / 'dreamerv3-src'
  if (src / 'dreamerv3' / 'main.py').exists():
    return src
  git_dir = pathlib.Path(source).expanduser()
  if not git_dir.exists():  # a URL: one blobless clone, kept under root
    git_dir = root / 'dreamerv3-git'
    if not git_dir.exists():
      sh(['git', 'clone', '--bare', '--filter=blob:none', source, git_dir])
  elif (git_dir / '.git').exists():
    git_dir = git_dir / '.git'
  if not (git_dir / 'HEAD').exists():
    sys.exit(f'no git directory at {source}: pass --dreamerv3-git a URL or a clone of '
             'danijar/dreamerv3.')
  src.mkdir(parents=True, exist_ok=True)
  archive = subprocess.run(['git', f'--git-dir={git_dir}', 'archive', DREAMERV3_COMMIT],
                           check=True, capture_output=True).stdout
  subprocess.run(['tar', '-x', '-C', str(src)], input=archive, check=True)
  commit = subprocess.run(['git', f'--git-dir={git_dir}', 'log', '-1', '--format=%H %cs',
                           DREAMERV3_COMMIT], check=True, capture_output=True, text=True)
  (src / 'PEERS_COMMIT').write_text(commit.stdout.strip() + '\n')
  return src


def cpu_requirements(text):
  """The dreamerv3 requirements made CPU-only and offline-installable."""
  out = []
  for line in text.splitlines():
    req = line.split('#')[0].strip()
    if not req:
      continue
    name = re.split(r'[\[<>=!~ ]', req)[0].lower().replace('_', '-')
    if name.startswith('nvidia-') or name == 'autorom':
      continue  # CUDA compiler; autorom downloads ROMs at install (ale_py >= 0.9 ships them)
    if name == 'jax':
      version = re.search(r'==\s*([\w.]+)', req)
      pin = f'=={version.group(1)}' if version else ''
      out += [f'jax{pin}', f'jaxlib{pin}']
      continue
    out.append(req)
  return '\n'.join(out) + '\n'


def setup_jax(root, git_dir):
  src = export_dreamerv3(root, git_dir)
  venv = root / 'jax-venv'
  if venv_ok(venv, 'import jax, jaxlib, ninjax, elements, portal, ale_py, optax'):
    print(f'{venv}: present', flush=True)
    return
  sh([sys.executable, '-m', 'venv', venv])
  reqs = root / 'jax-requirements.txt'
  reqs.write_text(cpu_requirements((src / 'requirements.txt').read_text()))
  sh([venv / 'bin' / 'pip', 'install', '-r', reqs])


def peer_command(peer, root, logdir, threads, seconds):
  """The subprocess argv of one peer: its launcher and the overrides of its own config."""
  if peer in OURS:
    script = pathlib.Path(__file__).resolve().parent / 'loop.py'
    return [sys.executable, '-u', script, *OURS[peer], '--seconds', seconds, '--train-ratio',
            TRAIN_RATIO, '--print-updates', '--json', logdir / 'result.json']
  if peer in SHEEPRL:
    python = root / 'sheeprl-venv' / 'bin' / 'python'
    launcher = root / 'launch_sheeprl.py'
    launcher.write_text(SHEEPRL_LAUNCHER)
    algo, preset = SHEEPRL[peer]
    module = f'sheeprl.algos.{algo}.{algo}'
    precision = 'bf16-mixed' if peer.endswith('bf16') else '32-true'
    overrides = preset + [
        'env=atari', 'env.id=PongNoFrameskip-v4', 'env.num_envs=1', 'env.screen_size=64',
        'env.grayscale=False', 'env.capture_video=False',
        'fabric.accelerator=cpu', 'fabric.devices=1', f'fabric.precision={precision}',
        'float32_matmul_precision=highest', f'num_threads={threads}',
        f'algo.per_rank_batch_size={BATCH}', f'algo.per_rank_sequence_length={LENGTH}',
        # gradient steps per policy step: the train ratio over the steps of a batch
        f'algo.replay_ratio={TRAIN_RATIO / (BATCH * LENGTH)}',
        f'algo.learning_starts={BATCH * LENGTH}', 'algo.compile.enabled=False',
        'buffer.size=100000', 'checkpoint.every=1000000000', 'checkpoint.save_last=False',
        'metric.log_every=5000', f'log_root={logdir}', f'hydra.run.dir={logdir}/hydra']
    return [python, '-u', launcher, module, *overrides]
  python = root / 'jax-venv' / 'bin' / 'python'
  launcher = root / 'launch_jax.py'
  launcher.write_text(JAX_LAUNCHER)
  # dreamerv3/configs.yaml: `atari100k` (Pong, 64x64 RGB, 1 env) and `size1m`
  overrides = [
      '--configs', 'atari100k', 'size1m', '--task', 'atari100k_pong', '--logdir', logdir,
      '--jax.platform', 'cpu', '--jax.compute_dtype', 'float32', '--jax.prealloc', 'False',
      '--batch_size', BATCH, '--batch_length', LENGTH, '--run.envs', 1,
      '--run.train_ratio', TRAIN_RATIO, '--run.log_every', 60,
      '--run.report_every', 0, '--run.save_every', 0,   # 0 is off (embodied/core/clock.py)
      '--run.usage.nvsmi', 'False', '--logger.outputs', 'jsonl']
  return [python, '-u', launcher, root / 'dreamerv3-src', *map(str, overrides)]


def tree_rss(root_pid):
  """The summed VmRSS (bytes) of a process and all its descendants."""
  parents = {}
  for entry in os.listdir('/proc'):
    if entry.isdigit():
      try:
        stat = pathlib.Path(f'/proc/{entry}/stat').read_text()
        parents[int(entry)] = int(stat.rsplit(')', 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        pass
  tree, frontier = {root_pid}, [root_pid]
  while frontier:
    pid = frontier.pop()
    for child, parent in parents.items():
      if parent == pid and child not in tree:
        tree.add(child)
        frontier.append(child)
  total = 0
  for pid in tree:
    try:
      for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
          total += int(line.split()[1]) * 1024
    except OSError:
      pass
  return total, len(tree)


PROBE = """
import sys, time
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
a, b = tf.random.normal((2048, 2048)), tf.random.normal((2048, 2048))
(a @ b).numpy()
best = float('inf')
for _ in range(5):
  t = time.perf_counter()
  for _ in range(10):
    c = a @ b
  c.numpy()
  best = min(best, (time.perf_counter() - t) / 10)
print(2 * 2048 ** 3 / best / 1e9)
"""


def probe(threads):
  """The machine's state just before a program: 2048^2 float32 tf.matmul GFLOP/s on 1 thread and
  on `threads` threads. This 2-vCPU machine has phases (README, Performance): the same update
  takes 1.8 or 2.5 s as the 2-thread figure moves between ~500 and ~380 GFLOP/s."""
  out = {}
  for n in sorted({1, threads}):
    done = subprocess.run([sys.executable, '-c', PROBE, str(n)], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    out[f'matmul_gflops_{n}_threads'] = float(done.stdout) if done.returncode == 0 else None
  return out


def run_peer(peer, root, seconds, threads, poll):
  logdir = root / 'runs' / f'{peer}-{time.strftime("%Y%m%d-%H%M%S")}'
  logdir.mkdir(parents=True)
  cmd = peer_command(peer, root, logdir, threads, seconds)
  machine = probe(threads)
  env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1',
             SDL_VIDEODRIVER='dummy', TF_CPP_MIN_LOG_LEVEL='3')
  for key in ('PYTHONPATH', 'VIRTUAL_ENV'):
    env.pop(key, None)
  out_path = logdir / 'stdout.txt'
  print(f'[{peer}] {" ".join(map(str, cmd))}\n[{peer}] output: {out_path}', flush=True)
  with open(out_path, 'w') as out:
    launched = time.time()
    proc = subprocess.Popen(list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT,
                            cwd=logdir, env=env, start_new_session=True)
    peak, peak_procs = 0, 0
    while proc.poll() is None and time.time() - launched < seconds:
      rss, procs = tree_rss(proc.pid)
      if rss > peak:
        peak, peak_procs = rss, procs
      time.sleep(poll)
    ran = time.time() - launched
    exit_code = proc.poll()
    if exit_code is None:  # stop the whole session the peer started
      os.killpg(proc.pid, signal.SIGINT)
      try:
        proc.wait(20)
      except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
  text = out_path.read_text(errors='replace')
  updates = [tuple(map(float, m.groups())) for m in
             re.finditer(r'^PEERS_UPDATE ([\d.]+) ([\d.]+)$', text, re.M)]
  result = {'peer': peer, 'probe_before': machine, 'seconds': round(ran, 1),
            'batch': [BATCH, LENGTH],
            'train_ratio': TRAIN_RATIO, 'threads': threads,
            'peak_rss_gb': peak / 1e9, 'peak_rss_processes': peak_procs,
            'updates': len(updates), 'logdir': str(logdir)}
  if exit_code is not None:
    result['exited_early'] = exit_code
    result['tail'] = text.splitlines()[-15:]
  for tag in ('PEERS_VERSIONS', 'PEERS_PARAMS'):
    found = re.search(rf'^{tag} (.*)$', text, re.M)
    if found:
      result[tag.split('_')[1].lower()] = ast.literal_eval(found.group(1))
  # dreamerv3 prints its trainable parameters and XLA's cost analysis of the train step
  found = re.search(r'^Optimizer \w+ has ([\d,]+) params:\n((?: +[\d,]+ \w+\n)+)', text, re.M)
  if found:
    result['params'] = {name: int(n.replace(',', '')) for n, name in
                        re.findall(r'([\d,]+) (\w+)', found.group(2))}
    result['params']['total'] = int(found.group(1).replace(',', ''))
  found = re.search(r'^Train cost analysis:\n +FLOPS: +([\d.e+-]+)', text, re.M)
  if found:
    result['xla_train_flops'] = float(found.group(1))
  if updates:
    result['start_to_first_update_s'] = updates[0][1] - launched
    result['start_to_first_update_begin_s'] = updates[0][0] - launched
    result['first_update_s'] = updates[0][1] - updates[0][0]
  durations = np.array([end - begin for begin, end in updates[1:]])
  if len(durations):
    result.update({
        'sec_per_update_median': float(np.median(durations)),
        'sec_per_update_p10': float(np.percentile(durations, 10)),
        'sec_per_update_p90': float(np.percentile(durations, 90)),
        'updates_per_s_after_first': len(durations) / (updates[-1][1] - updates[0][1])})
  return result


def versions(root):
  found = {}
  for venv, names in (('sheeprl-venv', ('sheeprl', 'torch', 'ale-py', 'gymnasium')),
                      ('jax-venv', ('jax', 'jaxlib', 'ninjax', 'elements', 'ale-py', 'optax'))):
    python = root / venv / 'bin' / 'python'
    if python.exists():
      code = ('import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in '
              f'{list(names)!r}}}))')
      done = subprocess.run([str(python), '-c', code], capture_output=True, text=True)
      found[venv] = json.loads(done.stdout) if done.returncode == 0 else done.stderr[-300:]
      found[venv + '_gb'] = sum(f.stat().st_size for f in (root / venv).rglob('*')
                                if f.is_file() and not f.is_symlink()) / 1e9
  found['ours'] = {n: importlib.metadata.version(n) for n in ('tensorflow', 'tf-keras')}
  commit = root / 'dreamerv3-src' / 'PEERS_COMMIT'
  if commit.exists():
    found['dreamerv3_commit'] = commit.read_text().strip()
  return found


def ratios(results):
  """The goals' figures (RATIOS) among the programs that ran and gave them."""
  rows = []
  for name, num, den, key, goal in RATIOS:
    a = results.get(num, {}).get(key)
    b = results.get(den, {}).get(key) if den else 1.0
    if a is not None and b:
      rows.append({'name': name, 'value': a / b, 'goal': goal, 'of': [num, den, key]})
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--peer', action='append', choices=[*PEERS, 'all'],
                      help='a program to run (repeatable; default all, in the order listed)')
  parser.add_argument('--setup', action='store_true', help='create the missing venvs first')
  parser.add_argument('--seconds', type=float, default=300.0, help='run time of each peer')
  parser.add_argument('--threads', type=int, default=os.cpu_count(),
                      help='intra-op threads of sheeprl (OMP_NUM_THREADS for both)')
  parser.add_argument('--poll', type=float, default=0.5, help='RSS polling interval (s)')
  parser.add_argument('--root', default='/tmp/peers', help='venvs, sources and run logs')
  parser.add_argument('--dreamerv3-git', default=DREAMERV3_GIT)
  parser.add_argument('--json', default=None, help='also write the results to this file')
  args = parser.parse_args()
  root = pathlib.Path(args.root)
  root.mkdir(parents=True, exist_ok=True)
  peers = PEERS if args.peer in (None, ['all']) else args.peer
  if args.setup:
    if any(p.startswith('sheeprl') for p in peers):
      setup_sheeprl(root)
    if 'jax-size1m' in peers:
      setup_jax(root, args.dreamerv3_git)
  results = {'versions': versions(root), 'cpus': os.cpu_count()}
  if args.seconds <= 0:  # --setup --seconds 0: install only
    print(json.dumps(results, indent=1))
    return
  for peer in peers:  # one at a time: never two peers at once
    results[peer] = run_peer(peer, root, args.seconds, args.threads, args.poll)
    print(json.dumps(results[peer]), flush=True)
  results['ratios'] = ratios(results)
  print(json.dumps(results, indent=1))
  for row in results['ratios']:
    print(f"{row['name']:<45} {row['value']:8.3f}   goal {row['goal']}")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
  main()
