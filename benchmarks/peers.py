"""Peer benchmark: the train step of two other DreamerV3 implementations on this machine, run by
their own training entry points on Atari Pong 64x64, batch 16 x 64, float32, CPU only, so that
benchmarks/loop.py's figures can be compared with theirs from one run on the same machine.

    python benchmarks/peers.py --setup --peer all --seconds 300    # install, then measure all
    python benchmarks/peers.py --peer sheeprl-xs --seconds 300      # venvs already there
    python benchmarks/peers.py --peer jax-size1m --seconds 120 --json jax.json

Peers (each in its own virtualenv under --root, default /tmp/peers):
  sheeprl-xs   sheeprl 0.8.4 (PyTorch), `exp=dreamer_v3 algo=dreamer_v3_XS` (the 2023 paper's XS)
  sheeprl-1m   sheeprl 0.8.4, `exp=dreamer_v3_5 algo=dreamer_v3_5_1M` (the official `size1m`)
  jax-size1m   danijar/dreamerv3 (the 2024 JAX rewrite), `--configs atari100k size1m`

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
The figures move a lot with other load on the machine: measure on an idle one.

--setup creates what is missing (idempotent): the sheeprl venv (torch==2.13.0 first, then
sheeprl[atari]==0.8.4 with torch pinned by a constraint file), and the JAX venv with the
requirements of the dreamerv3 source, made CPU-only (jax[cuda12]==V -> jax==V jaxlib==V, no
nvidia-* and no autorom: ale_py ships the ROMs). The dreamerv3 source is exported from a bare
git directory (--dreamerv3-git, e.g. one brought by the search tool's fetch) to --root.
"""
import argparse
import ast
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
DREAMERV3_GIT = '/work/.mirror/danijar+dreamerv3/repo'

# The train ratio (replayed steps per policy step) of dreamer_tf's atari100k runs and loop.py.
TRAIN_RATIO = 256.0
BATCH, LENGTH = 16, 64
PEERS = ('sheeprl-xs', 'sheeprl-1m', 'jax-size1m')

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


def export_dreamerv3(root, git_dir):
  src = root / 'dreamerv3-src'
  if (src / 'dreamerv3' / 'main.py').exists():
    return src
  if not pathlib.Path(git_dir, 'HEAD').exists():
    sys.exit(f'no dreamerv3 git directory at {git_dir}: bring github:danijar/dreamerv3 there '
             '(a bare clone) or pass --dreamerv3-git.')
  src.mkdir(parents=True, exist_ok=True)
  archive = subprocess.run(['git', f'--git-dir={git_dir}', 'archive', 'HEAD'],
                           check=True, capture_output=True).stdout
  subprocess.run(['tar', '-x', '-C', str(src)], input=archive, check=True)
  commit = subprocess.run(['git', f'--git-dir={git_dir}', 'log', '-1', '--format=%H %cs'],
                          check=True, capture_output=True, text=True).stdout.strip()
  (src / 'PEERS_COMMIT').write_text(commit + '\n')
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


def peer_command(peer, root, logdir, threads):
  """The subprocess argv of one peer: its launcher and the overrides of its own config."""
  if peer.startswith('sheeprl'):
    python = root / 'sheeprl-venv' / 'bin' / 'python'
    launcher = root / 'launch_sheeprl.py'
    launcher.write_text(SHEEPRL_LAUNCHER)
    if peer == 'sheeprl-xs':  # configs/exp/dreamer_v3.yaml, configs/algo/dreamer_v3_XS.yaml
      module, preset = 'sheeprl.algos.dreamer_v3.dreamer_v3', ['exp=dreamer_v3',
                                                              'algo=dreamer_v3_XS']
    else:  # configs/exp/dreamer_v3_5.yaml, configs/algo/dreamer_v3_5_1M.yaml
      module, preset = 'sheeprl.algos.dreamer_v3_5.dreamer_v3_5', ['exp=dreamer_v3_5',
                                                                  'algo=dreamer_v3_5_1M']
    overrides = preset + [
        'env=atari', 'env.id=PongNoFrameskip-v4', 'env.num_envs=1', 'env.screen_size=64',
        'env.grayscale=False', 'env.capture_video=False',
        'fabric.accelerator=cpu', 'fabric.devices=1', 'fabric.precision=32-true',
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


def run_peer(peer, root, seconds, threads, poll):
  logdir = root / 'runs' / f'{peer}-{time.strftime("%Y%m%d-%H%M%S")}'
  logdir.mkdir(parents=True)
  cmd = peer_command(peer, root, logdir, threads)
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
  result = {'peer': peer, 'seconds': round(ran, 1), 'batch': [BATCH, LENGTH],
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
  commit = root / 'dreamerv3-src' / 'PEERS_COMMIT'
  if commit.exists():
    found['dreamerv3_commit'] = commit.read_text().strip()
  return found


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--peer', default='all', choices=[*PEERS, 'all'])
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
  peers = PEERS if args.peer == 'all' else (args.peer,)
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
  print(json.dumps(results, indent=1))
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
  main()
