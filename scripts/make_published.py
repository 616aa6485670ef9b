"""Derives the published tables dreamer_tf ships (results/published/) from the authors' score
files collected in shared/reference/ (see its README). Run from the repository root:

    python scripts/make_published.py --reference ../shared/reference

Writes
  atari100k_curves.json   per-seed curves {task, method, seed, xs, ys} as published (xs in
                          frames, ys mean training return of the episodes ending in each bin)
  atari100k.csv           per game and method: score at 100k / 200k / 400k frames (mean, std,
                          n, min, max over seeds) with source and reduction rule, plus the
                          random and human_gamer baselines
The project reads only these files at run time.
"""
import argparse
import csv
import gzip
import json
import pathlib

import numpy as np

SRC_2023 = 'danijar/dreamerv3@8fa35f8:scores/data/atari100k_dreamerv3.json.gz'
SRC_BASE = 'danijar/dreamerv3@e3f0224:baselines.yaml#atari57_gamer'
BIN = 10000  # frames per bin of the 2023 file


def window_mean(xs, ys, lo, hi):
  """Mean of the finite bins whose interval (x - BIN, x] overlaps (lo, hi]."""
  vals = [y for x, y in zip(xs, ys)
          if y is not None and np.isfinite(y) and x > lo and x - BIN < hi]
  return float(np.mean(vals)) if vals else None


def baselines(path):
  rows, section = {}, None
  for line in path.read_text().splitlines():
    if line and not line.startswith(' '):
      section = line.rstrip(':')
    elif section == 'atari57_gamer' and ':' in line:
      key, value = line.strip().split(':', 1)
      rows[key.replace('atari_', '')] = json.loads(value)
  return rows


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--reference', default='../shared/reference')
  parser.add_argument('--out', default='results/published')
  args = parser.parse_args()
  ref, out = pathlib.Path(args.reference), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  runs = json.load(gzip.open(ref / 'danijar_dreamerv3_2023/atari100k_dreamerv3.json.gz'))
  curves = [{'task': r['task'].replace('atari_', ''), 'method': 'dreamerv3_2023',
             'seed': int(r['seed']), 'xs': [int(x) for x in r['xs']], 'ys': r['ys'],
             'unit': 'frames', 'bin': BIN, 'source': SRC_2023} for r in runs]
  curves.sort(key=lambda r: (r['task'], r['seed']))
  (out / 'atari100k_curves.json').write_text(json.dumps(curves))
  base = baselines(ref / 'danijar_dreamerv3/baselines.yaml')
  rows = []
  for task in sorted({c['task'] for c in curves}):
    seeds = [c for c in curves if c['task'] == task]
    for frames in (100000, 200000, 400000):
      lo = frames - max(0.1 * frames, BIN)
      vals = [v for v in (window_mean(c['xs'], c['ys'], lo, frames) for c in seeds)
              if v is not None]
      if vals:
        rows.append([task, 'dreamerv3_2023', frames, np.mean(vals),
                     np.std(vals, ddof=1) if len(vals) > 1 else '', len(vals), min(vals),
                     max(vals), f'{SRC_2023}#window({int(lo)},{frames}]'])
    vals = [[y for x, y in zip(c['xs'], c['ys'])
             if 370000 < x <= 390000 and y is not None and np.isfinite(y)] for c in seeds]
    vals = [float(np.mean(v)) for v in vals if v]
    if vals:  # the paper-table rule: bins labelled 380k and 390k
      rows.append([task, 'dreamerv3_2023_v1table', 400000, np.mean(vals),
                   np.std(vals, ddof=1), len(vals), min(vals), max(vals),
                   f'{SRC_2023}#v1table(370000,390000]'])
    random, human = base[task]
    rows.append([task, 'random', '', random, '', '', '', '', SRC_BASE])
    rows.append([task, 'human_gamer', '', human, '', '', '', '', SRC_BASE])
  with open(out / 'atari100k.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['task', 'method', 'frames', 'score_mean', 'score_std', 'n_seeds',
                     'score_min', 'score_max', 'source'])
    for row in rows:
      writer.writerow([round(v, 4) if isinstance(v, float) else v for v in row])
  print(f'Wrote {len(curves)} curves and {len(rows)} rows to {out}.')


if __name__ == '__main__':
  main()
