"""Compare runs of other Dreamer implementations with ours and the published seeds.

    python -m dreamer_tf.compare --task pong --frames 400000 \\
        official=~/logdir/dv3/scores.jsonl sheeprl=~/sheeprl/version_0 ours=runs/pong/seed0

Each SOURCE is `[label=]path`; sources with the same label are pooled as seeds. Formats (by the
file name, or what a directory holds) and their step units, all converted to env steps (Atari
frames, DMC control steps = agent steps x action repeat):
  dreamerv3   scores.jsonl / metrics.jsonl, rows {step, episode/score}; step counted in env
              steps (2023 code: frames, the logger multiplies by the action repeat)
  dreamerv2   metrics.jsonl rows {step, train_return}; danijar/dreamerv2 and danijar/dreamer
              log env frames (`Logger(multiplier=action_repeat)`)
  sheeprl     TensorBoard event files, tag Rewards/rew_avg, logged against policy steps (agent
              steps); the action repeat is read from the config.yaml sheeprl 0.8.4 saves
              beside them (`save_configs(cfg, log_dir)`; env.action_repeat, also algo.name
              and env.id, the task when --task is not given) and said in the output
  dreamer_tf  a run dir of ours (scores.json, xs in env steps)
If a log counts agent steps instead, pass `--unit agent_steps --repeat R` (xs x R).
Scores are reduced by the verdict's window rule at --frames; see dreamer_tf/verdict.py.
"""
import argparse
import json
import pathlib
import re
import sys

from . import published, verdict

FORMATS = {'dreamerv3': ('episode/score', 'score'), 'dreamerv2': ('train_return',),
           'sheeprl': ('Rewards/rew_avg',), 'dreamer_tf': ()}
UNITS = ('env_steps', 'agent_steps')


def detect(path):
  """The format of a path (see the module docstring); other .jsonl files by their keys."""
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"No such file or directory: '{path}'.")
  names = [p.name for p in path.iterdir()] if path.is_dir() else [path.name]
  if 'scores.json' in names:
    return 'dreamer_tf'
  if any(n.startswith('events.out.tfevents') for n in names) or path.is_dir() and any(
      path.rglob('events.out.tfevents*')):
    return 'sheeprl'
  if 'scores.jsonl' in names:
    return 'dreamerv3'
  jsonl = path / 'metrics.jsonl' if path.is_dir() else path
  if jsonl.name.endswith('.jsonl') and jsonl.exists():
    return 'dreamerv2' if '"train_return"' in jsonl.read_text() else 'dreamerv3'
  raise ValueError(f"Cannot tell the format of '{path}': expected scores.jsonl, metrics.jsonl, "
                   f"TensorBoard event files or scores.json. Formats: {', '.join(FORMATS)}.")


def read_jsonl(path, keys):
  """(xs, ys) of the rows of a JSONL file holding `step` and one of `keys`."""
  xs, ys = [], []
  for lineno, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}:{lineno}: truncated or invalid JSON line {line[:80]!r} ({e.msg}); '
                       'delete the line (a run killed mid-write) and retry.') from None
    key = next((k for k in keys if k in row), None)
    if key is not None:
      xs.append(float(row['step']))
      ys.append(float(row[key]))
  return xs, ys


def read_events(path, tag):
  """(xs, ys) of one scalar tag in every TensorBoard event file under `path`."""
  import tensorflow as tf
  files = [path] if path.is_file() else sorted(path.rglob('events.out.tfevents*'))
  points = []
  for file in files:
    for record in tf.data.TFRecordDataset(str(file)):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.tag == tag:
          y = value.simple_value if value.HasField('simple_value') else tf.make_ndarray(value.tensor)
          points.append((float(event.step), float(y)))
  points.sort()
  return [p[0] for p in points], [p[1] for p in points]


def task_of(env_id):
  """Our task name of a gym / DMC env id: PongNoFrameskip-v4, ALE/MsPacman-v5 -> pong,
  ms_pacman; walker_walk stays."""
  name = env_id.split('/')[-1].split('-')[0].replace('NoFrameskip', '')
  name = re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', name).lower()
  return {'james_bond': 'jamesbond'}.get(name, name)


def sheeprl_config(path):
  """{repeat, algo, env, path} of the config.yaml beside sheeprl's event files, or None."""
  import yaml
  files = [path] if path.is_file() else sorted(path.rglob('events.out.tfevents*'))
  found = sorted({f.parent / 'config.yaml' for f in files if (f.parent / 'config.yaml').exists()})
  configs = []
  for file in found:
    cfg = yaml.safe_load(file.read_text()) or {}
    repeat = (cfg.get('env') or {}).get('action_repeat')
    if not isinstance(repeat, int) or repeat < 1:
      raise ValueError(f'{file}: env.action_repeat is {repeat!r}; expected a positive integer.')
    configs.append({'repeat': repeat, 'algo': (cfg.get('algo') or {}).get('name'),
                    'env': str((cfg.get('env') or {}).get('id')), 'path': str(file)})
  if len({c['repeat'] for c in configs}) > 1:
    raise ValueError(f"'{path}' holds sheeprl runs of different action repeats: " + ', '.join(
        f"{c['path']}: {c['repeat']}" for c in configs) + '; compare them one at a time.')
  return configs[0] if configs else None


def load(path, fmt=None, task=None, label=None, unit='env_steps', repeat=1):
  """One run as {task, method, seed, xs, ys, unit, format, path}; xs in env steps."""
  path = pathlib.Path(path).expanduser()
  fmt = fmt or detect(path)
  if fmt not in FORMATS:
    raise ValueError(f"Unknown format '{fmt}'. Valid: {', '.join(FORMATS)}.")
  if unit not in UNITS:
    raise ValueError(f"Unknown unit '{unit}'. Valid: {', '.join(UNITS)}.")
  if unit == 'agent_steps' and repeat == 1:
    raise ValueError(f"'{path}' counts agent steps: pass --repeat (4 for Atari, 2 for DMC).")
  seed, note = 0, None
  if fmt == 'dreamer_tf':
    run = json.loads(((path / 'scores.json') if path.is_dir() else path).read_text())[0]
    xs, ys, task, seed = run['xs'], run['ys'], run['task'].split('_', 1)[1], run['seed']
  elif fmt == 'sheeprl':
    xs, ys = read_events(path, FORMATS[fmt][0])
    config = sheeprl_config(path)
    if config is None and unit != 'agent_steps':
      raise ValueError(f"'{path}' (sheeprl) logs policy steps and has no config.yaml beside its "
                       'events naming the action repeat: pass --unit agent_steps --repeat R '
                       '(4 for Atari, 2 for DMC).')
    if config:
      if unit == 'agent_steps' and repeat != config['repeat']:
        raise ValueError(f"--repeat {repeat} contradicts env.action_repeat {config['repeat']} "
                         f"of {config['path']}.")
      repeat, task = config['repeat'], task or task_of(config['env'])
      note = (f"{path}: sheeprl {config['algo']} on {config['env']}, Rewards/rew_avg against "
              f"policy steps x env.action_repeat {repeat} (from {config['path']}) = env steps")
  else:
    file = path
    if path.is_dir():
      file = next(p for p in (path / 'scores.jsonl', path / 'metrics.jsonl') if p.exists())
    xs, ys = read_jsonl(file, FORMATS[fmt])
  if not xs:
    raise ValueError(f"'{path}' ({fmt}) holds no scores: expected {' or '.join(FORMATS[fmt]) or 'episodes'}.")
  if not task:
    raise ValueError(f"'{path}' ({fmt}) does not name its task: pass --task.")
  return {'task': task, 'method': label or fmt, 'seed': seed, 'format': fmt, 'path': str(path),
          'xs': [x * repeat for x in xs], 'ys': list(ys), 'unit': 'env_steps', 'note': note}


def parse_source(text):
  label, sep, path = text.partition('=')
  return (label, path) if sep else (None, text)


def tabulate(runs, benchmark, frames, against):
  """One row per label: our window score over its seeds, published stats and verdict."""
  tasks = {r['task'] for r in runs}
  if len(tasks) > 1:
    raise ValueError(f"Runs of different tasks cannot be compared: {', '.join(sorted(tasks))}.")
  groups = {}
  for run in runs:
    groups.setdefault(run['method'], []).append(run)
  rows = []
  for label, members in groups.items():
    result = verdict.judge_seeds(benchmark, members[0]['task'], label,
                                 [(r['xs'], r['ys']) for r in members], frames, against)
    rows.append({'label': label, 'format': members[0]['format'], 'seeds': len(members),
                 **{k: result[k] for k in ('task', 'ours', 'ours_std', 'published_mean',
                                           'published_std', 'band', 'verdict', 'ours_hns',
                                           'method', 'source')}})
  return rows


def fmt_row(row, frames):
  score = 'n/a' if row['ours'] is None else f"{row['ours']:.2f}" + (
      f" ± {row['ours_std']:.2f}" if row['ours_std'] is not None else '')
  hns = '' if row['ours_hns'] is None else f" HNS {row['ours_hns']:.3f}"
  pub = 'n/a' if row['published_mean'] is None else f"{row['published_mean']:.2f} ± {row['published_std'] or 0:.2f}"
  return (f"{row['label']:<12} {row['format']:<10} {row['seeds']} seed(s) {row['task']} at "
          f"{frames:,}: {score}{hns} | {row['method']} {pub} | {row['verdict']}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('sources', nargs='+', help='[label=]path; same label = seeds of one method')
  parser.add_argument('--task', default=None, help='task of logs that do not name it, e.g. pong')
  parser.add_argument('--benchmark', default='atari100k', choices=list(published.BENCHMARKS))
  parser.add_argument('--frames', type=int, required=True, help='budget in env steps')
  parser.add_argument('--format', default=None, choices=list(FORMATS), help='default: detect')
  parser.add_argument('--unit', default='env_steps', choices=UNITS)
  parser.add_argument('--repeat', type=int, default=1, help='action repeat if --unit agent_steps')
  parser.add_argument('--against', default=None, help='published method (default dreamerv3_2023)')
  parser.add_argument('--plot', default=None, help='PNG path for the curves')
  args = parser.parse_args(argv)
  try:
    runs = [load(path, args.format, args.task, label, args.unit, args.repeat)
            for label, path in map(parse_source, args.sources)]
    rows = tabulate(runs, args.benchmark, args.frames, args.against or 'dreamerv3_2023')
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  for run in runs:
    if run['note']:
      print(run['note'])
  for row in rows:
    print(fmt_row(row, args.frames))
  if args.plot:
    from . import plots
    task = runs[0]['task']
    others = [c for c in published.curves(args.benchmark) if c['task'] == task]
    plots.compare(args.plot, runs, others, f'{args.benchmark} {task}: ports vs published',
                  budget=args.frames)
    print(f'Plot: {args.plot}')
  return 0 if all(r['verdict'] == 'MATCH' for r in rows) else 1


if __name__ == '__main__':
  sys.exit(main())
