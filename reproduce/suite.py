"""A whole benchmark in one command: one job per (task, seed), each the benchmark's reproduce
script with its own logdir ROOT/<benchmark>/<task>/seed<n>, then the report.

    python reproduce/suite.py atari100k --seeds 0-4                        # 26 games x 5 seeds
    python reproduce/suite.py atari100k --seeds 0-2 --games pong,breakout --budget 20000
    python reproduce/suite.py dmc_vision --seeds 0-2 --agent dreamerv1 --jobs 4
    python reproduce/suite.py dmc_proprio --seeds 0-4 --backend ray        # on a Ray cluster
    python -m dreamer_tf.report runs/suite/atari100k --out runs/suite/atari100k/report

Tasks: the Atari 100k / 200M aggregate game sets and the DMC tasks published for the agent
(results/published). Re-running the same command skips finished jobs and resumes the others.
`--backend local` runs --jobs at a time (default: one per GPU of nvidia-smi or
CUDA_VISIBLE_DEVICES, each job pinned to one, else 1); `--backend ray` submits every job as a
Ray task to a running cluster (minimal: `ray start --head` on this machine; more machines join
with `ray start --address HEAD:6379`, sharing the repository path and ROOT). Options not listed
are passed to every job (`--preset debug`, `--size xs`, `--run.train_ratio=512`). Ctrl-C (or
SIGTERM) stops the jobs after each saves a checkpoint.
"""
import argparse
import pathlib
import signal
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dreamer_tf import suite  # noqa: E402


def parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], allow_abbrev=False)
  parser.add_argument('benchmark', choices=tuple(suite.SCRIPTS))
  parser.add_argument('--seeds', default='0-4', help='a range 0-4 or a list 0,2,5 (default 0-4)')
  parser.add_argument('--games', '--tasks', dest='games', default='all',
                      help='all (default) or a comma-separated list, e.g. pong,breakout')
  parser.add_argument('--agent', default=None,
                      help='atari200m: dreamerv2 (default) or dreamerv3; dmc: dreamerv3 '
                      '(default), dreamerv2, dreamerv1, dreamerpro')
  parser.add_argument('--budget', type=int, default=None,
                      help="agent steps per job (default: each script's paper budget)")
  parser.add_argument('--root', default='runs/suite', help='default: runs/suite')
  parser.add_argument('--backend', default='local', choices=('local', 'ray'))
  parser.add_argument('--jobs', type=int, default=None,
                      help='local: jobs at a time (default: visible GPUs, or 1)')
  parser.add_argument('--address', default='auto', help="ray: cluster address (default 'auto')")
  parser.add_argument('--gpus-per-job', type=float, default=None,
                      help='ray: GPUs per job (default: 1 if the cluster has GPUs, else 0)')
  parser.add_argument('--cpus-per-job', type=float, default=1, help='ray: CPUs per job')
  parser.add_argument('--every', type=float, default=30, help='seconds between progress lines')
  args, extra = parser.parse_known_args(argv)
  if args.jobs is not None and args.jobs < 1:
    parser.error(f'--jobs {args.jobs}: expected 1 or more.')
  return args, extra


def interrupt(signum, frame):
  raise KeyboardInterrupt


def main(argv=None):
  args, extra = parse(sys.argv[1:] if argv is None else argv)
  try:
    jobs = suite.Suite(args.benchmark, suite.parse_seeds(args.seeds), args.games, args.agent,
                       args.budget, extra, args.root)
    signal.signal(signal.SIGTERM, interrupt)
    if args.backend == 'local':
      return jobs.run_local(args.jobs, args.every)
    return jobs.run_ray(args.address, args.gpus_per_job, args.cpus_per_job, args.every)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    return 130


if __name__ == '__main__':
  sys.exit(main())
