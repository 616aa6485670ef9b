"""Regenerates the table of recorded runs in results/README.md from results/runs/*/ (each holds
config.yaml, scores.json and summary.json). From the repository root:

    python scripts/results_table.py            # rewrite the table between the markers
    python scripts/results_table.py --check    # exit 1 if the README table is out of date

Steps, frames, updates, seeds, scores and wall time come from the run files; the verdict from
dreamer_tf.verdict for tasks with a published reference. What a run dir cannot say (how the
task reads, the preset's description, hardware) is in NOTES below.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dreamer_tf import verdict  # noqa: E402

BEGIN, END = '<!-- runs table: scripts/results_table.py -->', '<!-- end runs table -->'
HARDWARE = "the project's 2-core CPU machine, no GPU"
NOTES = {
    'dummy_disc_small': {
        'task': 'dummy_disc (random policy 25, max 100)',
        'preset': 'dreamerv3 + debug, small-task overrides (`tests/test_learning.py`: 64 units, '
                  '8x8 latents, 10x lrs)',
        'verdict': 'learns (no published reference)',
        'wall': '12.3 min',  # as first recorded; summary.json holds 734.8 s of training loop
    },
    'dummy_cont_dreamerv1': {
        'task': 'dummy_cont (random prefill policy ~60, max 100)',
        'preset': 'dreamerv1 + debug, small-task overrides (`tests/test_learning.py` SMALL_CONT: '
                  '64 units, 30 Gaussian latents, batch 8 x 32, 1 update per step, lrs 1e-3 / 3e-4)',
        'verdict': 'learns (no published reference)',
        'wall': '10.8 min (CPU shared with one other run)',
    },
    'dummy_cont_dreamerv2': {
        'task': 'dummy_cont (random prefill policy ~60, max 100)',
        'preset': 'dreamerv2 + dreamerv2_dmc_vision + debug, small-task overrides (SMALL_CONT, '
                  '8x8 latents)',
        'verdict': 'learns (no published reference)',
        'wall': '21.5 min (CPU shared with one or two other runs)',
    },
    'dummy_cont_dreamerv3': {
        'task': 'dummy_cont (random prefill policy ~60, max 100)',
        'preset': 'dreamerv3 + debug, small-task overrides (SMALL_CONT, 4x4 latents, 255 bins, '
                  'train ratio 256)',
        'verdict': 'learns (no published reference)',
        'wall': '16.1 min (CPU shared with test runs)',
    },
    'dummy_cont_dreamerpro': {
        'task': 'dummy_cont (random prefill policy ~60, max 100)',
        'preset': 'dreamerpro + dreamerpro_dmc + debug, small-task overrides (SMALL_CONT, '
                  '30 Gaussian latents, 1 update per step, 64 prototypes frozen for 250 updates)',
        'verdict': 'learns (no published reference)',
        'wall': '26.2 min (CPU shared with four or five other runs, 0.63 s/update)',
    },
    'cartpole_balance_proprio_dreamerv1': {
        'task': 'dmc_cartpole_balance, states (random policy ~250)',
        'preset': 'dreamerv1 + dreamerv1_proprio, reduced widths (128 units, 2 layers, batch '
                  '16 x 50, 100 updates every 100 steps; `reproduce/dmc.py --proprio`)',
        # Recorded before V1/V2 runs evaluated (their verdicts now read eval_scores.json);
        # V1 is published on pixels only, so a states run has no reference either way.
        'verdict': 'NO_REFERENCE vs dreamerv1',
        'wall': '45 min (CPU shared with one or two other runs)',
    },
    'pong_demo': {
        'task': 'atari_pong (Atari 100k protocol)',
        'preset': '`make pong`: dreamerv3 + atari100k + size1m, 1,200 steps, 2 eval episodes '
                  '(eval -20.0)',
        'hardware': "the project's 2-core CPU machine (an AVX2 AMD EPYC that day), no GPU",
        'wall': '2.7 min run; 4 min 21 s for `make pong` from a fresh clone, install included',
    },
    'gym_cartpole_dreamerv3': {
        'task': 'gym:CartPole-v1 (random policy ~22, max 500)',
        'preset': 'dreamerv3 + gym + gym_small (ours: size1m widths, 3 x 64 MLP encoder/decoder, '
                  'float32, xla, train ratio 64; `python -m dreamer_tf.train --task '
                  'gym:CartPole-v1 --preset gym_small`)',
        'verdict': 'max 20-episode mean 458.6; >= 400 from agent step 53,649 (~3,300 updates, '
                   '37 min) to ~80k, then fell to 141.2 (last 20)',
        'wall': '76 min (CPU shared with 1-3 other jobs, load 5-10; 0.7-0.8 s/update)',
    },
    'gym_pendulum_dreamerv3': {
        'task': 'gym:Pendulum-v1 (random policy ~-1270, best 0)',
        'preset': 'dreamerv3 + gym + gym_small (as CartPole; `python -m dreamer_tf.train --task '
                  'gym:Pendulum-v1 --preset gym_small`; run to 60k steps, resumed to 100k)',
        'verdict': 'max 20-episode mean -185.2 (at agent step 98,391), last 20 -196.8; still '
                   'rising at the budget',
        'wall': '142 min, of which ~75 min starved at nice 19 beside the CartPole run; the last '
                '40k steps (2,500 updates) took 26 min (0.62 s/update, CPU shared)',
    },
}
HEADER = ('| run | task | agent / preset | agent steps (frames) | updates | seeds | score | '
          'verdict | hardware | wall time |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')


def load(rundir):
  files = {n: rundir / n for n in ('config.yaml', 'scores.json', 'summary.json')}
  missing = [n for n, p in files.items() if not p.exists()]
  if missing:
    raise FileNotFoundError(f"{rundir} lacks {', '.join(missing)}: every run dir under "
                            'results/runs/ needs config.yaml, scores.json and summary.json.')
  return (yaml.safe_load(files['config.yaml'].read_text()),
          json.loads(files['scores.json'].read_text()), json.loads(files['summary.json'].read_text()))


def judged(rundir, config):
  if config['task'].split('_')[0] not in verdict.SUITES:
    return 'no published reference'
  result = verdict.judge_runs([rundir])[0]
  return f"{result['verdict']} vs {result['method']}"


def row(rundir):
  config, scores, summary = load(rundir)
  note = NOTES.get(rundir.name, {})
  ys = [y for run in scores for y in run['ys']]
  score = (f'last 5 episodes {np.mean(ys[-5:]):.1f} (first 5: {np.mean(ys[:5]):.1f})'
           if ys else 'no episodes')
  cells = [f'`runs/{rundir.name}/`', note.get('task', config['task']),
           note.get('preset', config['method']),
           f"{summary['step']:,} ({summary['frames']:,})", f"{summary['updates']:,}",
           str(len(scores)), score, note.get('verdict') or judged(rundir, config),
           note.get('hardware', HARDWARE), note.get('wall', f"{summary['wall_seconds'] / 60:.1f} min")]
  return '| ' + ' | '.join(cells) + ' |'


def table(runs_dir):
  return '\n'.join([HEADER] + [row(d) for d in sorted(runs_dir.iterdir()) if d.is_dir()])


def splice(text, new_table):
  if BEGIN not in text or END not in text:
    raise ValueError(f"results/README.md lacks the markers '{BEGIN}' / '{END}' around the table.")
  head, rest = text.split(BEGIN, 1)
  return f'{head}{BEGIN}\n{new_table}\n{END}{rest.split(END, 1)[1]}'


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--results', default=str(ROOT / 'results'))
  parser.add_argument('--check', action='store_true')
  args = parser.parse_args(argv)
  readme = pathlib.Path(args.results) / 'README.md'
  old = readme.read_text()
  new = splice(old, table(pathlib.Path(args.results) / 'runs'))
  if args.check:
    return 0 if new == old else 1
  tmp = readme.with_suffix('.md.tmp')  # write then rename: the README is never half-written
  tmp.write_text(new)
  tmp.replace(readme)
  return 0


if __name__ == '__main__':
  sys.exit(main())
