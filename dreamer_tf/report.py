"""The reproduction report: one static HTML page (no server) of a suite or of any run dirs.

    python -m dreamer_tf.report runs/suite/atari100k --out runs/suite/atari100k/report
    python -m dreamer_tf.report runs/atari100k/pong --out report/     # single-run scripts' dirs

Finds every run dir under SUITE_DIR (config.yaml + scores.json) and the jobs of its suite.json
files, pools the seeds of a task (verdict.py), and writes REPORT_DIR/index.html, img/*.png and
report.json: the benchmark aggregate of ours beside the published seeds' (human-normalised for
Atari, raw scores for DMC: mean and median of the per-task means, IQM of all runs, stratified
bootstrap 95% intervals), a table laid out as the papers' (ours beside published), and per task
the learning curves over the published band (plots.py), the verdict (rule, source) and the
verdict along the curve of every seed (verdict.judge_curve). A partial suite works: seeds still
running are drawn and judged up to their last episode, marked RUNNING, and left out of the
task verdict and the aggregate until they reach their budget.

Aggregates follow Agarwal et al. 2021 (rliable): runs are resampled with replacement within each
task (stratified bootstrap), intervals are the 2.5/97.5 percentiles, IQM is the 25% trimmed mean
of all runs. Implemented here, not through rliable 1.2.0: it pins arch < 8, whose 7.2 fails to
import under pandas 3 (`deprecate_kwarg()` TypeError) and would pull pandas, statsmodels and
seaborn for 30 lines; ours also takes tasks with different numbers of seeds (a partial suite).
Checked against rliable 1.2.0 (with pandas 2.3) on a 5 x 26 matrix: equal point estimates.
"""
import argparse
import html
import json
import pathlib
import sys
import time

import numpy as np

from . import published, suite, verdict

REPS = 2000
COLORS = {'MATCH': '#cdeccd', 'BELOW': '#f6c8c8', 'ABOVE': '#cfe0f7', 'RUNNING': '#eeeeee'}


def iqm(values, axis=-1):
  """Interquartile mean: mean of the middle half (scipy.stats.trim_mean(x, 0.25) cuts)."""
  values = np.sort(values, axis=axis)
  cut = int(0.25 * values.shape[axis])
  return np.take(values, range(cut, values.shape[axis] - cut), axis=axis).mean(axis)


def aggregates(per_task, reps=REPS, seed=0):
  """{mean, median, iqm: (point, lo, hi)} of {task: per-seed scores}: mean and median over tasks
  of the per-task means, IQM over all runs, stratified bootstrap 95% percentile intervals."""
  tasks = [np.asarray(v, float) for v in per_task.values() if len(v)]
  if not tasks:
    return None

  def stats(samples):  # each (reps, seeds of the task)
    means = np.stack([s.mean(-1) for s in samples], -1)
    return np.stack([means.mean(-1), np.median(means, -1),
                     iqm(np.concatenate(samples, -1))], -1)
  rng = np.random.default_rng(seed)
  point = stats([t[None] for t in tasks])[0]
  boot = stats([t[rng.integers(0, len(t), (reps, len(t)))] for t in tasks])
  lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
  return {k: (float(point[i]), float(lo[i]), float(hi[i]))
          for i, k in enumerate(('mean', 'median', 'iqm'))}


def discover(root):
  """Run dirs under root (a run dir is not searched further) and the jobs of suite.json files."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise FileNotFoundError(f"No such directory: '{root}'.")
  runs, jobs, stack = [], [], [root]
  while stack:
    path = stack.pop()
    if (path / 'config.yaml').exists():
      runs.append(path)
      continue
    if (path / 'suite.json').exists():
      state = json.loads((path / 'suite.json').read_text())
      jobs += [{**j, 'budget': state.get('budget')} for j in state['jobs'].values()]
    stack += sorted((p for p in path.iterdir() if p.is_dir()), reverse=True)
  return sorted(runs), jobs


def load(logdir, budget=None):
  """A run dir as a dict (verdict.load_run), status done / running; None without episodes."""
  try:
    kind, task, method, seed, xs, ys, reached, env = verdict.load_run(logdir)
  except FileNotFoundError:
    return None
  done = suite.finished(logdir, budget)
  frames = reached if done else (max(xs) if xs else None)
  if frames is None:
    return None
  return {'logdir': str(logdir), 'benchmark': verdict.benchmark_of(kind, frames, None, env),
          'task': task, 'method': method, 'seed': seed, 'xs': xs, 'ys': ys, 'frames': frames,
          'status': 'done' if done else 'running'}


def judge_task(benchmark, task, method, runs):
  """Pooled verdict of the finished seeds at their (smallest) budget and each run's curve."""
  done = [r for r in runs if r['status'] == 'done']
  result = None
  if done:
    result = verdict.judge_seeds(benchmark, task, method, [(r['xs'], r['ys']) for r in done],
                                 min(r['frames'] for r in done))
  curves = {r['logdir']: verdict.judge_curve(benchmark, task, method, [(r['xs'], r['ys'])],
                                             r['frames']) for r in runs}
  return result, curves


def build(root, out, log=print):
  """Writes out/index.html, out/img/*.png, out/report.json; returns the report dict."""
  from . import plots
  started = time.time()
  out = pathlib.Path(out)
  (out / 'img').mkdir(parents=True, exist_ok=True)
  logdirs, jobs = discover(root)
  budgets = {j['logdir']: j.get('budget') for j in jobs}
  runs = [r for r in (load(d, budgets.get(str(d.resolve()))) for d in logdirs) if r]
  if not runs and not jobs:
    raise FileNotFoundError(f"No run dirs (config.yaml + scores.json) or suite.json under "
                            f"'{root}'.")
  groups = {}
  for run in runs:
    groups.setdefault((run['benchmark'], run['task'], run['method']), []).append(run)
  report = {'root': str(root), 'generated': time.strftime('%Y-%m-%d %H:%M:%S'), 'tasks': [],
            'jobs': jobs, 'aggregates': {}}
  for i, ((bench, task, method), members) in enumerate(sorted(groups.items())):
    members.sort(key=lambda r: r['seed'])
    result, curves = judge_task(bench, task, method, members)
    image = f'img/{bench}_{task}_{method}.png'
    against = result['method'] if result else published.METHODS.get(method, method)
    plots.learning(out / image, members, bench, task, against,
                   budget=max(r['frames'] for r in members))
    report['tasks'].append({'benchmark': bench, 'task': task, 'method': method, 'image': image,
                            'runs': [{k: r[k] for k in ('logdir', 'seed', 'status', 'frames')}
                                     for r in members], 'result': result, 'curves': curves})
    log(f'[report] {i + 1}/{len(groups)} tasks: {bench} {task} '
        f"{result['verdict'] if result else 'RUNNING'}", flush=True)
  for bench in sorted({t['benchmark'] for t in report['tasks']}):
    tasks = [t for t in report['tasks'] if t['benchmark'] == bench]
    curves = {t: runs_ for (b, t, _), runs_ in groups.items() if b == bench}
    report['aggregates'][bench] = aggregate(bench, tasks, curves, out)
  (out / 'report.json').write_text(json.dumps(report, indent=1))
  (out / 'index.html').write_text(page(report))
  log(f'[report] {out / "index.html"} ({len(report["tasks"])} tasks, {len(runs)} runs, '
      f'{time.time() - started:.1f} s)', flush=True)
  return report


def aggregate(bench, tasks, curves, out):
  """Ours and the published seeds' aggregates over the judged tasks (same tasks, same budgets);
  for Atari also the human-normalised curves of `curves` {task: our runs} (plots.aggregate)."""
  from . import plots
  norm = bench.startswith('atari')
  ours, theirs = {}, {}
  for t in tasks:
    r = t['result']
    if not r or r['verdict'] == 'NO_REFERENCE':
      continue
    score = (lambda v, task=t['task']: published.normalize(bench, task, v)) if norm else float
    ours[t['task']] = [score(v) for v in r['ours_seeds']]
    theirs[t['task']] = [score(v) for v in r['published']]
  every = published.game_set(bench) if norm else suite.tasks(bench, tasks[0]['method'])
  result = {'unit': 'human-normalised score' if norm else 'score', 'tasks': sorted(ours),
            'of': len(every), 'ours': aggregates(ours), 'published': aggregates(theirs),
            'image': None}
  if norm:
    result['image'] = f'img/{bench}_aggregate.png'
    plots.aggregate(out / result['image'], bench, curves,
                    budget=max(r['frames'] for runs in curves.values() for r in runs))
  return result


def _e(text):
  return html.escape(str(text))


def _num(value, digits=2):
  return '–' if value is None else f'{value:,.{digits}f}'


def _pm(values):
  if not values:
    return '–'
  std = f' ± {np.std(values, ddof=1):,.2f}' if len(values) > 1 else ''
  return f'{np.mean(values):,.2f}{std} <small>({len(values)})</small>'


def _verdict(v):
  return f'<td class="v" style="background:{COLORS.get(v, "#fff3c4")}">{_e(v)}</td>'


def _aggregate_table(agg):
  rows = ''.join(
      f'<tr><th>{k.upper() if k == "iqm" else k}</th>' + ''.join(
          f'<td>{_num(a[k][0], 3)} <small>[{_num(a[k][1], 3)}, {_num(a[k][2], 3)}]</small></td>'
          if a else '<td>–</td>' for a in (agg['ours'], agg['published'])) + '</tr>'
      for k in ('mean', 'median', 'iqm'))
  return (f"<p>{_e(agg['unit'])} over the {len(agg['tasks'])} judged of {agg['of']} tasks "
          '(95% stratified bootstrap intervals):</p><table><tr><th></th><th>ours</th>'
          f'<th>published seeds (same tasks, same budgets)</th></tr>{rows}</table>')


def _paper_table(bench, tasks):
  atari = bench.startswith('atari')
  head = ('<tr><th>Task</th>' + ('<th>Random</th><th>Human</th>' if atari else '')
          + '<th>Budget</th><th>Published</th><th>Ours</th><th>Verdict</th><th>Seeds</th></tr>')
  rows = []
  for t in tasks:
    r = t['result']
    base = ''
    if atari:
      base = ''.join(f'<td>{_num(published.baseline(bench, t["task"], b), 1)}</td>'
                     if published.has_baselines(bench, t['task']) else '<td>–</td>'
                     for b in ('random', 'human_gamer'))
    done = sum(x['status'] == 'done' for x in t['runs'])
    rows.append(f'<tr><th><a href="#{_e(t["task"])}-{_e(t["method"])}">{_e(t["task"])}</a></th>'
                f'{base}<td>{_num(r["frames"], 0) if r else "–"}</td>'
                f'<td>{_pm(r["published"]) if r else "–"}</td>'
                f'<td>{_pm(r["ours_seeds"]) if r else "–"}</td>'
                f'{_verdict(r["verdict"] if r else "RUNNING")}'
                f'<td>{done}/{len(t["runs"])} done</td></tr>')
  return f'<table>{head}{"".join(rows)}</table>'


def _curve_table(task):
  points = sorted({x['frames'] for c in task['curves'].values() for x in c})
  if not points:
    return '<p>No published reference curve.</p>'
  head = ''.join(f'<th title="{p:,}">{p / 1000:g}k</th>' for p in points)
  rows = []
  for run in task['runs']:
    by = {x['frames']: x for x in task['curves'][run['logdir']]}
    cells = ''.join(
        f'<td class="c" style="background:{COLORS.get(by[p]["verdict"], "#fff3c4")}" '
        f'title="{_e(verdict.line(by[p]))}">{by[p]["verdict"][0]}</td>' if p in by
        else '<td></td>' for p in points)
    rows.append(f'<tr><th>seed {run["seed"]}{" (running)" if run["status"] != "done" else ""}'
                f'</th>{cells}</tr>')
  return (f'<details><summary>Verdict along the curve (M/B/A at each published point; hover '
          f'for the line)</summary><div class="scroll"><table class="curve"><tr><th>'
          f'{_e(task["curves"] and next(iter(task["curves"].values()))[0]["unit"] or "")}'
          f'</th>{head}</tr>{"".join(rows)}</table></div></details>')


RULE = verdict.__doc__.split('Verdict rule: ')[1].split('\n\n')[0].replace('\n', ' ')


def page(report):
  parts = [f'<h1>Reproduction report</h1><p>{_e(report["root"])}, generated '
           f'{_e(report["generated"])}. Verdict rule: {_e(RULE)}</p>']
  for bench, agg in report['aggregates'].items():
    tasks = [t for t in report['tasks'] if t['benchmark'] == bench]
    parts.append(f'<h2>{_e(bench)}</h2><h3>Aggregate</h3>{_aggregate_table(agg)}')
    if agg['image']:
      parts.append(f'<img src="{_e(agg["image"])}" alt="{_e(bench)} aggregate">')
    parts.append(f'<h3>Per task</h3>{_paper_table(bench, tasks)}')
    for t in tasks:
      r = t['result']
      line = verdict.line(r) if r else 'RUNNING: no seed has reached its budget yet.'
      parts.append(f'<h3 id="{_e(t["task"])}-{_e(t["method"])}">{_e(t["task"])} '
                   f'<small>({_e(t["method"])})</small></h3>'
                   f'<img src="{_e(t["image"])}" alt="{_e(t["task"])} curves">'
                   f'<p class="line">{_e(line)}</p>{_curve_table(t)}')
  if report['jobs']:
    rows = ''.join(f'<tr><td>{_e(j["benchmark"])}</td><td>{_e(j["task"])}</td><td>{j["seed"]}'
                   f'</td><td>{_e(j["status"])}</td><td>{_e(j.get("verdict", ""))}</td></tr>'
                   for j in report['jobs'])
    parts.append('<h2>Suite jobs</h2><table><tr><th>benchmark</th><th>task</th><th>seed</th>'
                 f'<th>status</th><th>seed verdict</th></tr>{rows}</table>')
  style = ('body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}'
           'table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;'
           'padding:2px 6px;text-align:right}img{max-width:100%}.line{font-family:monospace;'
           'font-size:85%}.scroll{overflow-x:auto}.curve td.c{font-size:70%;padding:1px 3px}')
  return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Reproduction '
          f'report</title><style>{style}</style></head><body>{"".join(parts)}</body></html>\n')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('root', help='a suite dir (reproduce/suite.py) or any dir of run dirs')
  parser.add_argument('--out', required=True, help='report dir (index.html, img/, report.json)')
  args = parser.parse_args(argv)
  try:
    build(args.root, args.out)
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
