"""Derives the published tables dreamer_tf ships (results/published/) from the authors' score
files collected in shared/reference/ (see its README for units and rules). From the repo root:

    python scripts/make_published.py --reference ../shared/reference

Writes per benchmark (atari100k, atari200m, dmc_vision, dmc_proprio)
  <benchmark>.csv            per task, method and budget: mean, std (ddof=1), n, min, max over
                             seeds and `repo@commit:path#rule`; random / human_gamer and the
                             other single-number baselines; human-normalised mean and median
  <benchmark>_curves.json.gz per-seed curves of CURVE_METHODS, xs cut at 1.01 x the largest
                             budget; per-episode files are averaged into 10k-step bins with the
                             episode count `ns` kept, so every rule still gives the exact value
The project reads only these files at run time (dreamer_tf/published.py holds the rules).
"""
import argparse
import csv
import gzip
import json
import pathlib
import re
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from dreamer_tf import published  # noqa: E402

V3 = 'danijar/dreamerv3@e3f0224'
V3_2023 = 'danijar/dreamerv3@8fa35f8'
V2 = 'danijar/dreamerv2@07d906e'
V1 = 'danijar/dreamer@56d4d44'
PRO = 'fdeng18/dreamer-pro@809b417'
EPISODE_BIN = 10000  # bin width for per-episode files (aligned with every window edge)
CURVE_METHODS = ('dreamerv3_2023', 'dreamerv3', 'dreamerv2', 'dreamerv1', 'dreamerpro')
OLD = {'dreamerv3': 'dreamerv3_2023'}
PRO_NAMES = {'dreamer_pro_v2_freeze_10k_norm_off': 'dreamerpro',
             'dreamer_pro_v2_freeze_10k': 'dreamerpro', 'dreamerv2': 'dreamerv2_dreamerpro_repo',
             'dreamerv2_32': 'dreamerv2_dreamerpro_repo', 'tpc_batch_150': 'tpc'}

# (local file, source repo@commit:path, benchmark, rule, per-episode?, method renames)
FILES = [
    ('danijar_dreamerv3/atari100k-dreamerv3.json.gz', f'{V3}:scores/atari100k-dreamerv3.json.gz', 'atari100k', 'window', True, {}),
    ('danijar_dreamerv3/atari100k-ppo_fixhp.json.gz', f'{V3}:scores/atari100k-ppo_fixhp.json.gz', 'atari100k', 'window', True, {}),
    ('danijar_dreamerv3_2023/atari100k_dreamerv3.json.gz', f'{V3_2023}:scores/data/atari100k_dreamerv3.json.gz', 'atari100k', 'window', False, OLD),
    ('danijar_dreamerv3/atari57-dreamerv3.json.gz', f'{V3}:scores/atari57-dreamerv3.json.gz', 'atari200m', 'last', False, {}),
    ('danijar_dreamerv3/atari57-muzero.json.gz', f'{V3}:scores/atari57-muzero.json.gz', 'atari200m', 'last', False, {}),
    ('danijar_dreamerv3/atari57-ppo_fixhp.json.gz', f'{V3}:scores/atari57-ppo_fixhp.json.gz', 'atari200m', 'last', False, {}),
    ('danijar_dreamerv3_2023/atari200m_dreamerv3.json.gz', f'{V3_2023}:scores/data/atari200m_dreamerv3.json.gz', 'atari200m', 'last', False, OLD),
    ('danijar_dreamerv3_2023/atari200m_dqn.json.gz', f'{V3_2023}:scores/data/atari200m_dqn.json.gz', 'atari200m', 'last', False, {}),
    ('danijar_dreamerv3_2023/atari200m_c51.json.gz', f'{V3_2023}:scores/data/atari200m_c51.json.gz', 'atari200m', 'last', False, {}),
    ('danijar_dreamerv3_2023/atari200m_iqn.json.gz', f'{V3_2023}:scores/data/atari200m_iqn.json.gz', 'atari200m', 'last', False, {}),
    ('danijar_dreamerv3_2023/atari200m_rainbow.json.gz', f'{V3_2023}:scores/data/atari200m_rainbow.json.gz', 'atari200m', 'last', False, {}),
    ('danijar_dreamerv2/atari-dreamerv2.json', f'{V2}:scores/atari-dreamerv2.json', 'atari200m', 'last', False, {'nosched': 'dreamerv2_nosched'}),
    ('danijar_dreamerv3/dmc_vision-dreamerv3.json.gz', f'{V3}:scores/dmc_vision-dreamerv3.json.gz', 'dmc_vision', 'window', True, {}),
    ('danijar_dreamerv3/dmc_vision-ppo_fixhp.json.gz', f'{V3}:scores/dmc_vision-ppo_fixhp.json.gz', 'dmc_vision', 'window', True, {}),
    ('danijar_dreamerv3/dmc_vision-curl.json.gz', f'{V3}:scores/dmc_vision-curl.json.gz', 'dmc_vision', 'last', False, {}),
    ('danijar_dreamerv3/dmc_vision-drqv2.json.gz', f'{V3}:scores/dmc_vision-drqv2.json.gz', 'dmc_vision', 'last', False, {}),
    ('danijar_dreamerv3/dmc_vision-sac.json.gz', f'{V3}:scores/dmc_vision-sac.json.gz', 'dmc_vision', 'last', False, {}),
    ('danijar_dreamerv3_2023/dmcvision_dreamerv3.json.gz', f'{V3_2023}:scores/data/dmcvision_dreamerv3.json.gz', 'dmc_vision', 'last', False, OLD),
    ('danijar_dreamerv2/dmc-vision-dreamerv2.json', f'{V2}:scores/dmc-vision-dreamerv2.json', 'dmc_vision', 'last', False, {}),
    ('danijar_dreamer/dreamer.json', f'{V1}:scores/dreamer.json', 'dmc_vision', 'last', False, {'dreamer': 'dreamerv1'}),
    ('fdeng18_dreamer-pro/standard_dmc/runs.json', f'{PRO}:plots/standard_dmc/runs.json', 'dmc_vision', 'last', False, PRO_NAMES),
    ('danijar_dreamerv3/dmc_proprio-dreamerv3.json.gz', f'{V3}:scores/dmc_proprio-dreamerv3.json.gz', 'dmc_proprio', 'last', False, {}),
    ('danijar_dreamerv3/dmc_proprio-ppo_fixhp.json.gz', f'{V3}:scores/dmc_proprio-ppo_fixhp.json.gz', 'dmc_proprio', 'window', True, {}),
    ('danijar_dreamerv3/dmc_proprio-d4pg.json.gz', f'{V3}:scores/dmc_proprio-d4pg.json.gz', 'dmc_proprio', 'window', True, {}),
    ('danijar_dreamerv3/dmc_proprio-ddpg.json.gz', f'{V3}:scores/dmc_proprio-ddpg.json.gz', 'dmc_proprio', 'window', True, {}),
    ('danijar_dreamerv3/dmc_proprio-dmpo.json.gz', f'{V3}:scores/dmc_proprio-dmpo.json.gz', 'dmc_proprio', 'window', True, {}),
    ('danijar_dreamerv3/dmc_proprio-mpo.json.gz', f'{V3}:scores/dmc_proprio-mpo.json.gz', 'dmc_proprio', 'window', True, {}),
    ('danijar_dreamerv3_2023/dmcproprio_dreamerv3.json.gz', f'{V3_2023}:scores/data/dmcproprio_dreamerv3.json.gz', 'dmc_proprio', 'last', False, OLD),
]
FIELDS = ['task', 'method', 'env_steps', 'unit', 'score_mean', 'score_std', 'n_seeds',
          'score_min', 'score_max', 'source']


def canonical_task(name):
  """atari_james_bond -> jamesbond, dmc_cup_catch -> ball_in_cup_catch (reference README)."""
  name = re.sub(r'^(atari|dmc)_', '', name)
  return {'james_bond': 'jamesbond', 'cup_catch': 'ball_in_cup_catch'}.get(name, name)


def load(path):
  with (gzip.open if path.suffix == '.gz' else open)(path, 'rt') as f:
    return [r for r in json.load(f) if not r['task'].startswith('stats_')]  # drop aggregates


def spacing(xs):
  return int(np.median(np.diff(xs))) if len(xs) > 1 else 0


def bin_episodes(xs, ys):
  """Per-episode returns -> mean per EPISODE_BIN bin (x - bin, x] with the episode count."""
  labels = np.ceil(np.asarray(xs, float) / EPISODE_BIN).astype(int) * EPISODE_BIN
  ys = np.array([np.nan if y is None else y for y in ys], float)
  out = {}
  for label, y in zip(labels, ys):
    if np.isfinite(y):
      out.setdefault(int(label), []).append(y)
  keys = sorted(out)
  return keys, [float(np.mean(out[k])) for k in keys], [len(out[k]) for k in keys]


def ship_curve(run, task, method, source, bench, rule, episodic):
  """The shipped form of one raw curve (binned if per-episode, cut after the last budget)."""
  if episodic:
    xs, ys, ns = bin_episodes(run['xs'], run['ys'])
    width, how = EPISODE_BIN, f'mean per {EPISODE_BIN} bin, ns = episodes'
  else:
    xs, ys, ns, width, how = list(run['xs']), list(run['ys']), None, spacing(run['xs']), 'as published'
  cut = 1.01 * max(published.BENCHMARKS[bench][1])
  keep = [i for i, x in enumerate(xs) if x <= cut]
  out = {'task': task, 'method': method, 'seed': run['seed'],
         'xs': [int(xs[i]) if float(xs[i]).is_integer() else xs[i] for i in keep],
         'ys': [None if ys[i] is None else round(float(ys[i]), 4) for i in keep],
         'unit': published.unit(bench), 'bin': width, 'rule': rule, 'source': f'{source}#{how}'}
  if ns is not None:
    out['ns'] = [ns[i] for i in keep]
  return out


def score_row(task, method, budget, bench, values, source):
  mean, std, n, lo, hi = published.stats(values)
  return {'task': task, 'method': method, 'env_steps': budget, 'unit': published.unit(bench),
          'score_mean': mean, 'score_std': std, 'n_seeds': n, 'score_min': lo, 'score_max': hi,
          'source': source}


def file_rows(ref, spec):
  """Table rows (raw data, the reference rules) and shipped curves of one score file."""
  relpath, source, bench, rule, episodic, renames = spec
  groups = {}
  for run in load(ref / relpath):
    key = (canonical_task(run['task']), renames.get(run['method'], run['method']))
    groups.setdefault(key, []).append(run)
  rows, curves = [], []
  for (task, method), runs in sorted(groups.items()):
    width = 0 if episodic else spacing(runs[0]['xs'])
    for budget in published.BENCHMARKS[bench][1]:
      rules = [rule] + (['v1table'] if method == 'dreamerv3_2023' and bench == 'atari100k'
                        and budget == 400000 else [])
      for r in rules:
        values = [v for v in (published.reduce_seed(run['xs'], run['ys'], budget, r, width)
                              for run in runs) if v is not None]
        name = method + ('_v1table' if r == 'v1table' else '')
        if values:
          rows.append(score_row(task, name, budget, bench, values,
                                f'{source}#{published.rule_text(r, budget, width)}'))
    if method in CURVE_METHODS:
      curves += [ship_curve(run, task, method, source, bench, rule, episodic) for run in runs]
  return bench, rows, curves


def gamer_yaml(path):
  """`atari57_gamer` section of dreamerv3 baselines.yaml: {game: (random, human)}."""
  out, inside = {}, False
  for line in path.read_text().splitlines():
    if line.strip() and not line.startswith(' '):
      inside = line.strip() == 'atari57_gamer:'
    match = re.match(r'\s+(\w+):\s*\[([^,\]]+),([^\]]+)\]', line)
    if inside and match:
      out[canonical_task(match.group(1))] = (float(match.group(2)), float(match.group(3)))
  return out


def single(bench, task, method, steps, value, source):
  return {'task': task, 'method': method, 'env_steps': steps, 'unit': published.unit(bench),
          'score_mean': float(value), 'score_std': None, 'n_seeds': None, 'score_min': None,
          'score_max': None, 'source': source}


def baseline_rows(ref):
  """Single published numbers: Atari random / human_gamer and older agents, DMC baselines."""
  out = {b: [] for b in published.BENCHMARKS}
  gamer = gamer_yaml(ref / 'danijar_dreamerv3/baselines.yaml')
  for task in published.ATARI100K_GAMES:
    for name, value in zip(published.BASELINES, gamer[task]):
      out['atari100k'].append(single('atari100k', task, name, '', value,
                                     f'{V3}:baselines.yaml#atari57_gamer'))
  for name, scores in sorted(json.loads((ref / 'danijar_dreamerv2/baselines.json').read_text()).items()):
    task = canonical_task(name)
    for key, value in sorted(scores.items()):
      if key.endswith('_4e5') and task in published.ATARI100K_GAMES:
        out['atari100k'].append(single('atari100k', task, key, 400000, value, f'{V2}:scores/baselines.json'))
      elif not key.endswith('_4e5'):
        steps = 200000000 if key.endswith('_2e8') else ''
        out['atari200m'].append(single('atari200m', task, key, steps, value, f'{V2}:scores/baselines.json'))
  budgets = {'100m': 100000000, '1e6': 1000000, '3e6': 3000000}
  for name, scores in sorted(json.loads((ref / 'danijar_dreamer/baselines.json').read_text()).items()):
    for key, value in sorted(scores.items()):
      bench = 'dmc_proprio' if key.endswith('_proprio') else 'dmc_vision'
      steps = budgets[key.replace('_proprio', '').split('_')[-1]]
      out[bench].append(single(bench, canonical_task(name), key, steps, value, f'{V1}:scores/baselines.json'))
  return out


def normalized_rows(bench, rows):
  """human_normalized_mean/median per method having every game of the set (reference rule)."""
  base = {(r['task'], r['method']): r['score_mean'] for r in rows if r['method'] in published.BASELINES}
  budget = max(published.BENCHMARKS[bench][1])
  games = (set(published.ATARI100K_GAMES) if bench == 'atari100k' else
           {r['task'] for r in rows if r['method'] == 'dreamerv2' and r['env_steps'] == budget})
  scores = {}
  for r in rows:
    if r['env_steps'] == budget and r['task'] in games:
      scores.setdefault(r['method'], {})[r['task']] = r['score_mean']
  out = []
  for method, per_game in sorted(scores.items()):
    if set(per_game) == games:
      hns = [(per_game[g] - base[g, 'random']) / (base[g, 'human_gamer'] - base[g, 'random'])
             for g in sorted(games)]
      note = f'human-normalised over {len(games)} games (random/human_gamer rows); 1.0 = human'
      out.append(single(bench, 'human_normalized_mean', method, budget, np.mean(hns), note))
      out.append(single(bench, 'human_normalized_median', method, budget, np.median(hns), note))
  return out


def baseline_curves(bench, rows):
  """random / human_gamer as constant curves over the benchmark's budget, for plots."""
  end = max(published.BENCHMARKS[bench][1])
  return [{'task': r['task'], 'method': r['method'], 'seed': 0, 'xs': [0, end],
           'ys': [r['score_mean']] * 2, 'unit': published.unit(bench), 'bin': end,
           'rule': 'last', 'source': r['source']}
          for r in rows if r['method'] in published.BASELINES]


def fmt(value):
  if value is None:
    return ''
  return f'{value:.7g}' if isinstance(value, float) else str(value)


def write(out, bench, rows, curves):
  rows.sort(key=lambda r: (r['task'], r['method'], r['env_steps'] if r['env_steps'] != '' else -1))
  with open(out / f'{bench}.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, FIELDS)
    writer.writeheader()
    writer.writerows({k: fmt(v) for k, v in r.items()} for r in rows)
  curves.sort(key=lambda c: (c['task'], c['method'], str(c['seed'])))
  with gzip.GzipFile(out / f'{bench}_curves.json.gz', 'wb', mtime=0) as f:
    f.write(json.dumps(curves, separators=(',', ':')).encode())


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--reference', default='../shared/reference')
  parser.add_argument('--out', default='results/published')
  args = parser.parse_args(argv)
  ref, out = pathlib.Path(args.reference), pathlib.Path(args.out)
  if not (ref / 'README.md').exists():
    parser.error(f"'{ref}' is not the shared/reference folder (no README.md); pass --reference.")
  rows, curves = baseline_rows(ref), {b: [] for b in published.BENCHMARKS}
  for spec in FILES:
    bench, new_rows, new_curves = file_rows(ref, spec)
    rows[bench] += new_rows
    curves[bench] += new_curves
  out.mkdir(parents=True, exist_ok=True)
  for bench in published.BENCHMARKS:
    if bench.startswith('atari'):
      rows[bench] += normalized_rows(bench, rows[bench])
    write(out, bench, rows[bench], curves[bench] + baseline_curves(bench, rows[bench]))
    print(f'{bench}: {len(rows[bench])} rows, {len(curves[bench])} curves')


if __name__ == '__main__':
  main()
