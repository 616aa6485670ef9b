"""Where oneDNN spends the train step's time, primitive by primitive: runs benchmarks/train_step.py
with ONEDNN_VERBOSE=1 and sums the execution times oneDNN reports over the timed updates (not the
first), by primitive (kind, implementation, direction, data type) and, for the convolutions and
matrix products, by problem shape with the GFLOP/s each achieves.

    python benchmarks/onednn_ops.py --size xs
    python benchmarks/onednn_ops.py --size xs --precision=bfloat16 --top 30

Arguments it does not know go to train_step.py. oneDNN times only its own primitives (the
matmuls, convolutions, layer norms, softmax and some activations); Eigen's element-wise ops and
reductions are not among them: benchmarks/profile_step.py sees every op.
"""
import argparse
import collections
import math
import os
import pathlib
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
UPDATE = re.compile(r'^update \d+/\d+: ([\d.]+) s$')  # train_step.py's line after each update
FIRST = 'first update done'  # ... and after the first (untimed) one


def parse_exec(line):
  """(kind, implementation, direction, dtype, problem, ms) of an ONEDNN_VERBOSE `exec` line, or
  None. Fields are located from `exec` on, so a leading timestamp field does not matter."""
  fields = line.rstrip('\n').split(',')
  if fields[0] != 'onednn_verbose' or 'exec' not in fields[:6]:
    return None
  i = fields.index('exec')
  kind, impl, direction, mds = fields[i + 2:i + 6]
  dtype = re.search(r'(?:src|data)[_:](\w+?):', mds)
  return kind, impl, direction, dtype.group(1) if dtype else '', fields[-2], float(fields[-1])


def flops(kind, problem):
  """Floating-point operations of one call (a multiply-add counts two), or None where the
  primitive does no products: convolutions in all three directions do the forward's work."""
  if kind in ('gemm_api', 'matmul'):  # src (..., M, K) : weights (..., K, N) [: dst]
    src, wei = [[int(d) for d in part.split('x')] for part in problem.split(':')[:2]]
    return 2 * math.prod(src) * wei[-1]
  dims = {k: int(v) for k, v in re.findall(r'([a-z]+)(\d+)', problem.replace('_', ''))}
  if kind == 'convolution':
    out = dims['oh'] * dims.get('ow', dims['oh']) * dims.get('od', 1)
    taps = dims['kh'] * dims.get('kw', dims['kh']) * dims.get('kd', 1)
    return 2 * dims['mb'] * out * dims['oc'] * dims['ic'] // dims.get('g', 1) * taps
  if kind == 'inner_product':
    return 2 * dims['mb'] * dims['ic'] * dims['oc']
  return None


def summarise(lines):
  """The oneDNN calls of the timed updates in train_step.py's output (after its FIRST line), as
  (updates, wall seconds per update, {primitive: [calls, ms]}, {(primitive, problem): [calls, ms,
  flops of one call]})."""
  started, walls = False, []
  by_shape = collections.defaultdict(lambda: [0, 0.0])
  for line in lines:
    if line.startswith(FIRST):
      started = True
    match = UPDATE.match(line.strip())
    if match:
      walls.append(float(match.group(1)))
    entry = parse_exec(line) if started else None
    if entry is not None:
      *primitive, problem, ms = entry
      shape = by_shape[tuple(primitive), problem]
      shape[0] += 1
      shape[1] += ms
  if not walls:
    raise ValueError(f'no "update i/N: t s" line after "{FIRST}": did train_step.py run?')
  by_primitive = collections.defaultdict(lambda: [0, 0.0])
  for (primitive, problem), (calls, ms) in by_shape.items():
    by_primitive[primitive][0] += calls
    by_primitive[primitive][1] += ms
  shapes = {key: [calls, ms, flops(key[0][0], key[1])] for key, (calls, ms) in by_shape.items()}
  return len(walls), statistics.median(walls), dict(by_primitive), shapes


def named(primitive):
  return ' '.join(part for part in primitive if part not in ('', 'undef'))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--size', default='xs')
  parser.add_argument('--updates', type=int, default=3, help='timed updates after the first')
  parser.add_argument('--top', type=int, default=15, help='problem shapes listed')
  args, rest = parser.parse_known_args()
  cmd = [sys.executable, str(ROOT / 'benchmarks' / 'train_step.py'), '--size', args.size,
         '--updates', str(args.updates), *rest]
  print('$ ONEDNN_VERBOSE=1', ' '.join(cmd[1:]), flush=True)
  proc = subprocess.run(cmd, capture_output=True, text=True,
                        env={**os.environ, 'ONEDNN_VERBOSE': '1'})
  if proc.returncode:
    sys.exit(f'train_step.py failed (exit {proc.returncode}):\n' + proc.stderr[-3000:])
  updates, wall, by_primitive, by_shape = summarise(proc.stdout.splitlines())
  if not by_primitive:
    sys.exit('oneDNN reported no calls in the timed updates: did the step run on a GPU?')
  total = sum(ms for _, ms in by_primitive.values()) / updates
  print(f'{updates} timed updates, {wall:.2f} s median wall; oneDNN\'s primitives '
        f'{total / 1e3:.2f} s per update (calls that TensorFlow runs side by side both count)\n')
  print(f'{"ms/update":>10} {"calls/update":>12}  primitive: kind, implementation, direction, '
        'dtype')
  for primitive, (calls, ms) in sorted(by_primitive.items(), key=lambda kv: -kv[1][1]):
    print(f'{ms / updates:10.1f} {calls / updates:12.1f}  {named(primitive)}')
  print(f'\n{"ms/update":>10} {"calls":>6} {"GFLOP/call":>10} {"GFLOP/s":>8}  primitive: problem')
  shapes = sorted(by_shape.items(), key=lambda kv: -kv[1][1])[:args.top]
  for (primitive, problem), (calls, ms, work) in shapes:
    rate = f'{work * calls / ms / 1e6:8.0f}' if work else f'{"":8}'
    gflop = f'{work / 1e9:10.3f}' if work else f'{"":10}'
    print(f'{ms / updates:10.1f} {calls / updates:6.1f} {gflop} {rate}  '
          f'{named(primitive[:1] + primitive[2:])}: {problem}')


if __name__ == '__main__':
  main()
