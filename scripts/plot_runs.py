"""Plots the training episodes of our run dirs together, one smoothed curve per run, labelled by
method (for tasks without published curves, e.g. the dummy learning runs):

    python scripts/plot_runs.py results/runs/dummy_cont.png results/runs/dummy_cont_dreamerv*
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from dreamer_tf import plots  # noqa: E402


def main(argv):
  if len(argv) < 2:
    sys.exit(__doc__)
  out, dirs = pathlib.Path(argv[0]), [pathlib.Path(d) for d in argv[1:]]
  runs = []
  for d in dirs:
    for run in json.loads((d / 'scores.json').read_text()):
      runs.append({**run, 'format': f"{d.name}, seed {run['seed']}"})
  tasks = sorted({r['task'] for r in runs})
  plots.compare(out, runs, [], f"{', '.join(tasks)}: dreamer_tf runs")
  print(out)


if __name__ == '__main__':
  main(sys.argv[1:])
