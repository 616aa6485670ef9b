"""Replays a fixture recorded from the official code through our agent and collects every pair
(ours, official) by quantity. Fixtures: tests/official/fixtures/*.npz, written by
scripts/official/*.py (format: scripts/official/common.py).

`python tests/official/harness.py` prints the README's equivalence table (worst errors per
version and quantity; `--detail` per update, `--set key=value` replays a mutated config).
"""
import json
import os
import sys

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
# Bounds relative to each tensor's largest magnitude, by quantity (test_official.py says why).
BOUNDS = {'metrics': 1e-5, 'grads': 1e-4, 'params': 5e-5, 'adam': 1e-4, 'slow critic': 5e-5,
          'retnorm': 1e-5, 'policy': 1e-5}


def load(name):
  with np.load(os.path.join(FIXTURES, f'{name}.npz'), allow_pickle=False) as f:
    arrays = {k: f[k] for k in f.files}
  return arrays, json.loads(arrays.pop('meta.json').item())


def sub(arrays, prefix):
  """Entries under `prefix/`, with the prefix removed."""
  prefix = prefix.rstrip('/') + '/'
  return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


class Pairs:
  """(ours, official) arrays by quantity, e.g. 'grads step 1' -> {name: (ours, theirs)}."""

  def __init__(self):
    self.by_quantity = {}
    self.loose = {}  # (quantity, name) -> (element mask, absolute bound for those elements)

  def add(self, quantity, name, ours, theirs, loose=None):
    """`loose` (mask, atol): elements held to |ours - theirs| <= atol instead (see recorded.py:
    weights whose Adam step direction the rounding of a near-zero gradient decides)."""
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (quantity, name, ours.shape, theirs.shape)
    self.by_quantity.setdefault(quantity, {})[name] = (ours, theirs)
    if loose is not None and np.any(loose[0]):
      self.loose[quantity, name] = loose

  def errors(self, quantity):
    """{name: (max abs error, error relative to the tensor's largest magnitude)}; an element
    held to an absolute bound counts only if it breaks it (then as an infinite error)."""
    out = {}
    for name, (ours, theirs) in self.by_quantity[quantity].items():
      diff = np.abs(ours - theirs)
      if (quantity, name) in self.loose:
        mask, atol = self.loose[quantity, name]
        broken = bool(np.any(diff[mask] > np.broadcast_to(atol, diff.shape)[mask]))
        diff = np.where(mask, 0.0, diff)
      else:
        broken = False
      err = float(np.max(diff)) if ours.size else 0.0
      scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
      out[name] = (err, np.inf if broken else (err / scale if scale else err))
    return out

  def loosened(self, quantity):
    """Elements held to the absolute bound, over all tensors of the quantity."""
    return sum(int(np.sum(m)) for (q, _), (m, _) in self.loose.items() if q == quantity)

  def worst(self, quantity):
    errs = self.errors(quantity)
    name = max(errs, key=lambda k: errs[k][1])
    return name, errs[name]

  def bound(self, quantity):
    return BOUNDS[next(k for k in BOUNDS if quantity.startswith(k))]

  def beyond(self, quantity):
    """{name: (abs, rel)} of the tensors beyond the quantity's bound."""
    rtol = self.bound(quantity)
    return {k: v for k, v in self.errors(quantity).items() if v[1] > rtol}

  def check(self, quantity):
    """Every tensor within its bound of its largest magnitude (an all-zero tensor: exactly)."""
    bad = self.beyond(quantity)
    assert not bad, f'{quantity}: beyond rtol {self.bound(quantity)}: ' + ', '.join(
        f'{k} (abs {a:.3g}, rel {r:.3g})' for k, (a, r) in sorted(bad.items()))


def table(results):
  """Markdown rows: version | quantity | tensors | worst abs | worst rel (tensor)."""
  rows = ['| fixture | quantity | tensors | worst abs. error | worst rel. error (where) |',
          '| --- | --- | --- | --- | --- |']
  for fixture, pairs in results.items():
    for quantity in pairs.by_quantity:
      errs = pairs.errors(quantity)
      abs_worst = max(v[0] for v in errs.values())
      name, (_, rel) = pairs.worst(quantity)
      loose = pairs.loosened(quantity)
      note = f'; {loose} near-zero-gradient elements within 3 lr' if loose else ''
      rows.append(f'| {fixture} | {quantity} | {len(errs)} | {abs_worst:.2g} | {rel:.2g} '
                  f'(`{name}`{note}) |')
  return '\n'.join(rows)


def summary(results):
  """The README table: quantity x fixture -> worst relative / absolute error over both updates
  (and the five policy steps)."""
  kinds = ('metrics', 'grads', 'params', 'adam', 'slow critic', 'retnorm', 'policy')
  labels = {'metrics': 'losses and metrics', 'grads': 'gradients',
            'params': 'weights after the update', 'adam': 'Adam m, v',
            'slow critic': 'slow critic / target', 'retnorm': 'return normaliser',
            'policy': 'policy: latents, action distribution, actions'}
  rows = ['| quantity (worst over updates 1, 2) | ' + ' | '.join(results) + ' |',
          '| --- |' + ' --- |' * len(results)]
  for kind in kinds:
    cells = []
    for pairs in results.values():
      errs = [e for q in pairs.by_quantity if q.startswith(kind) for e in pairs.errors(q).values()]
      cells.append(f'{max(r for _, r in errs):.1e} / {max(a for a, _ in errs):.1e}'
                   if errs else '-')
    rows.append(f'| {labels[kind]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(rows)


def fixtures():
  return sorted(f[:-4] for f in os.listdir(FIXTURES) if f.endswith('.npz'))


def main(argv):
  """Prints the table for the fixtures named (default: all); `--set key=value` replays with a
  config override (a mutation) and lists every quantity it moves beyond its bound."""
  import argparse  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
  import recorded  # pylint: disable=import-outside-toplevel
  from dreamer_tf import config  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser()
  parser.add_argument('fixtures', nargs='*')
  parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
  parser.add_argument('--detail', action='store_true', help='one row per quantity and update')
  args = parser.parse_args(argv)
  extra = config.parse_overrides([f'--{item}' for item in args.set])
  results = {name: recorded.replay(name, extra) for name in (args.fixtures or fixtures())}
  print(table(results) if args.detail else summary(results))
  for name, pairs in results.items():
    moved = {q: pairs.beyond(q) for q in pairs.by_quantity}
    moved = {q: v for q, v in moved.items() if v}
    print(f'{name}: ' + ('within every bound' if not moved else 'beyond the bound in ' + '; '.join(
        f'{q} ({len(v)} tensors, worst {max(r for _, r in v.values()):.2g})'
        for q, v in moved.items())))


if __name__ == '__main__':
  main(sys.argv[1:])
