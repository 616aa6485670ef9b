"""Whole benchmarks, one command: one job per (task, seed), each the benchmark's reproduce script
(reproduce/atari100k.py, atari200m.py, dmc.py) in its own logdir ROOT/<benchmark>/<task>/seed<n>,
run locally N at a time or as Ray tasks on a running cluster. See reproduce/suite.py.

A job is finished when its summary.json reached the budget (--budget, else the run.steps its
config.yaml holds) and its verdict.json exists; re-running the command skips finished jobs and
resumes the others (the reproduce scripts resume a logdir). ROOT/<benchmark>/suite.json holds the
suite's state (written atomically by the one process driving the suite).

Safety: each job holds an flock on `<logdir>/.suite.lock` for its whole life (the fd is inherited
by the job), so two suite commands never run one job at once; on Linux a job gets SIGINT when
the process that launched it dies (prctl PR_SET_PDEATHSIG), and then saves a checkpoint and exits
(run.py saves on KeyboardInterrupt), so a killed suite leaves no orphan training and loses little.
"""
import fcntl
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

from . import published

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPTS = {  # benchmark -> (script, option naming the task, fixed options)
    'atari100k': ('reproduce/atari100k.py', '--game', ()),
    'atari200m': ('reproduce/atari200m.py', '--game', ()),
    'dmc_vision': ('reproduce/dmc.py', '--task', ()),
    'dmc_proprio': ('reproduce/dmc.py', '--task', ('--proprio',)),
}
AGENTS = {'atari100k': ('dreamerv3',), 'atari200m': ('dreamerv2', 'dreamerv3'),
          'dmc_vision': ('dreamerv3', 'dreamerv2', 'dreamerv1', 'dreamerpro'),
          'dmc_proprio': ('dreamerv3', 'dreamerv2', 'dreamerv1')}
RESERVED = ('--game', '--task', '--seed', '--logdir', '--steps', '--agent', '--proprio')
LOG = 'suite_job.log'  # each job's output, appended; one START line per launch
START = '# suite job start'
# Run in the job's process before the reproduce script: die with the launcher (SIGINT: the run
# saves), then exec the script. The pid check closes the race with a launcher already gone.
GUARD = ('import ctypes, os, signal, sys\n'
         "if sys.platform.startswith('linux'):\n"
         '  ctypes.CDLL(None).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG\n'
         '  if os.getppid() != int(sys.argv[1]): sys.exit(130)\n'
         'os.execv(sys.executable, [sys.executable, *sys.argv[2:]])')


def tasks(benchmark, agent):
  """The benchmark's tasks: the Atari aggregate's game set, the DMC tasks published for
  `agent`'s reference method."""
  if benchmark.startswith('atari'):
    return list(published.game_set(benchmark))
  method = published.METHODS.get(agent, agent)
  return sorted({c['task'] for c in published.curves(benchmark) if c['method'] == method})


def parse_seeds(text):
  """'0-4' -> [0..4], '0,2,5' -> [0, 2, 5]."""
  seeds = []
  try:
    for part in text.split(','):
      lo, sep, hi = part.partition('-')
      seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
  except ValueError:
    raise ValueError(f"Bad --seeds '{text}': expected a range 0-4 or a list 0,2,5.") from None
  if not seeds or len(set(seeds)) != len(seeds):
    raise ValueError(f"Bad --seeds '{text}': expected distinct seeds, e.g. 0-4 or 0,2,5.")
  return seeds


def select(benchmark, agent, names):
  valid = tasks(benchmark, agent)
  if names == 'all':
    return valid
  chosen = [{'james_bond': 'jamesbond'}.get(n, n) for n in names.split(',') if n]
  unknown = [n for n in chosen if n not in valid]
  if unknown or not chosen:
    raise ValueError(f"Unknown {benchmark} task(s) {', '.join(unknown) or repr(names)} for "
                     f"{agent}. Valid: all, {', '.join(valid)}.")
  return chosen


def check_extra(extra):
  bad = [a for a in extra if a.split('=')[0] in RESERVED]
  if bad:
    raise ValueError(f"{', '.join(bad)}: set by the suite for each job ({', '.join(RESERVED)}); "
                     'use --games, --seeds, --budget, --agent, --root.')


def gpu_ids():
  """GPUs this machine shows: CUDA_VISIBLE_DEVICES if set, else nvidia-smi -L, else none."""
  visible = os.environ.get('CUDA_VISIBLE_DEVICES')
  if visible is not None:
    return [g for g in visible.split(',') if g.strip() and g.strip() != '-1']
  if not shutil.which('nvidia-smi'):
    return []
  try:
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30).stdout
  except (OSError, subprocess.TimeoutExpired):
    return []
  return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith('GPU ')]


def job_budget(logdir, budget):
  """The agent steps a job must reach: `budget`, else the run.steps of its saved config."""
  if budget:
    return budget
  path = pathlib.Path(logdir) / 'config.yaml'
  if not path.exists():
    return None
  import yaml
  return (yaml.safe_load(path.read_text()).get('run') or {}).get('steps')


def finished(logdir, budget=None):
  """True when the run in `logdir` reached its budget and wrote its verdict."""
  logdir = pathlib.Path(logdir)
  summary, steps = logdir / 'summary.json', job_budget(logdir, budget)
  return bool(steps and summary.exists() and (logdir / 'verdict.json').exists()
              and json.loads(summary.read_text())['step'] >= steps)


def starts(logdir):
  """How many times jobs were launched in `logdir` (START lines of its job log)."""
  path = pathlib.Path(logdir) / LOG
  return path.read_text(errors='replace').count(START) if path.exists() else 0


def command(job, ppid):
  script, option, fixed = SCRIPTS[job['benchmark']]
  agent = ['--agent', job['agent']] if job['benchmark'] != 'atari100k' else []
  steps = ['--steps', str(job['budget'])] if job['budget'] else []
  return [sys.executable, '-c', GUARD, str(ppid), str(ROOT / script), option, job['task'],
          *fixed, *agent, '--seed', str(job['seed']), '--logdir', job['logdir'], *steps,
          *job['extra']]


def try_lock(logdir):
  """An open fd holding the job's flock, or None while another process holds it."""
  pathlib.Path(logdir).mkdir(parents=True, exist_ok=True)
  fd = os.open(pathlib.Path(logdir) / '.suite.lock', os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    return None
  return fd


def launch(job, fd, env=None):
  """Starts a job holding lock fd `fd` (the job inherits it); output appended to its LOG."""
  log = open(pathlib.Path(job['logdir']) / LOG, 'a')
  log.write(f"{START} {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}\n")
  log.flush()
  try:
    return subprocess.Popen(command(job, os.getpid()), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=ROOT, pass_fds=(fd,),
                            env={**os.environ, **(env or {})})
  finally:
    log.close()
    os.close(fd)


def execute(job):
  """Runs one job to its end in this process (a Ray task); returns (exit status, seconds)."""
  fd = try_lock(job['logdir'])
  while fd is None:  # a job of a killed suite still saving its checkpoint
    time.sleep(2)
    fd = try_lock(job['logdir'])
  started = time.time()
  proc = launch(job, fd)
  try:
    return proc.wait(), time.time() - started
  except BaseException:
    proc.send_signal(signal.SIGINT)
    proc.wait()
    raise


def tail(logdir, lines=15):
  path = pathlib.Path(logdir) / LOG
  text = path.read_text(errors='replace') if path.exists() else ''
  return ''.join(text.splitlines(True)[-lines:])


def fmt_time(seconds):
  if seconds is None:
    return '-'
  seconds = int(max(0, seconds))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class Suite:
  """The jobs of one benchmark under ROOT/<benchmark>, their state file and progress lines."""

  def __init__(self, benchmark, seeds, names='all', agent=None, budget=None, extra=(),
               root='runs/suite', log=print):
    if benchmark not in SCRIPTS:
      raise ValueError(f"Unknown benchmark '{benchmark}'. Valid: {', '.join(SCRIPTS)}.")
    agent = agent or AGENTS[benchmark][0]
    if agent not in AGENTS[benchmark]:
      raise ValueError(f"Unknown agent '{agent}' for {benchmark}. Valid: "
                       f"{', '.join(AGENTS[benchmark])}.")
    check_extra(extra)
    self.benchmark, self.log, self.budget = benchmark, log, budget
    self.dir = pathlib.Path(root).resolve() / benchmark
    self.path = self.dir / 'suite.json'
    self.setup = {'benchmark': benchmark, 'agent': agent, 'extra': list(extra)}
    self.state = {**self.setup, 'budget': budget, 'jobs': {}}
    if self.path.exists():
      old = json.loads(self.path.read_text())
      diff = [f'{k}: {old.get(k)!r} -> {v!r}' for k, v in self.setup.items() if old.get(k) != v]
      if diff:
        raise ValueError(f"{self.path} holds a suite with other settings ({'; '.join(diff)}). "
                         'Use another --root, or the same settings to resume it.')
      self.state['jobs'] = old['jobs']
    for task in select(benchmark, agent, names):
      for seed in seeds:
        logdir = self.dir / task / f'seed{seed}'
        job = self.state['jobs'].setdefault(f'{task}/seed{seed}', {'status': 'pending'})
        job.update(benchmark=benchmark, agent=agent, task=task, seed=seed, logdir=str(logdir),
                   budget=budget, extra=list(extra))
    self.ids = [f'{t}/seed{s}' for t in select(benchmark, agent, names) for s in seeds]
    self.started, self.walls = time.time(), []

  def save(self):
    self.dir.mkdir(parents=True, exist_ok=True)
    self.state['budget'], self.state['updated'] = self.budget, time.strftime('%Y-%m-%d %H:%M:%S')
    tmp = self.path.with_name(self.path.name + '.tmp')
    tmp.write_text(json.dumps(self.state, indent=1))
    os.replace(tmp, self.path)

  def jobs(self, status=None):
    jobs = [self.state['jobs'][i] for i in self.ids]
    return [j for j in jobs if status is None or j['status'] == status]

  def mark(self, job, status, **info):
    job.update(status=status, **info)
    self.save()

  def skip_finished(self):
    """Marks the finished jobs done (whatever an earlier command recorded); returns the rest."""
    todo = []
    for job in self.jobs():
      if finished(job['logdir'], self.budget):
        job['status'] = 'done'
      else:
        job['status'] = 'pending'
        todo.append(job)
    self.save()
    self.log(f'[suite] {self.benchmark}: {len(self.ids)} jobs under {self.dir}, '
             f'{len(self.ids) - len(todo)} finished, {len(todo)} to run.', flush=True)
    return todo

  def done(self, job, status, seconds):
    if status == 0 and finished(job['logdir'], self.budget):
      self.walls.append(seconds)
      self.mark(job, 'done', seconds=round(seconds, 1), verdict=json.loads(
          (pathlib.Path(job['logdir']) / 'verdict.json').read_text())['verdict'])
    else:
      why = f'exit status {status}' if status else 'exited before its budget'
      self.mark(job, 'failed', error=why)
      self.log(f"[suite] {job['task']}/seed{job['seed']} failed ({why}); last lines of "
               f"{pathlib.Path(job['logdir']) / LOG}:\n{tail(job['logdir'])}", flush=True)

  def progress(self, slots):
    count = {s: len(self.jobs(s)) for s in ('done', 'running', 'pending', 'failed')}
    eta = None
    if self.walls:  # remaining jobs x mean job time / parallel slots
      left = count['pending'] + count['running'] / 2
      eta = left * sum(self.walls) / len(self.walls) / max(1, slots)
    self.log(f"[suite] {self.benchmark}: {count['done']}/{len(self.ids)} done, "
             f"{count['running']} running, {count['pending']} pending, {count['failed']} failed"
             f' | elapsed {fmt_time(time.time() - self.started)} | ETA {fmt_time(eta)}',
             flush=True)

  def summary(self):
    failed = [f"{j['task']}/seed{j['seed']}" for j in self.jobs('failed')]
    verdicts = {}
    for job in self.jobs('done'):
      verdicts[job.get('verdict', '?')] = verdicts.get(job.get('verdict', '?'), 0) + 1
    self.log(f"[suite] {self.benchmark}: {len(self.jobs('done'))}/{len(self.ids)} jobs done "
             f"(per-seed verdicts: {', '.join(f'{k} {v}' for k, v in sorted(verdicts.items()))}"
             f"){'; failed: ' + ', '.join(failed) if failed else ''}. "
             f'Report: python -m dreamer_tf.report {self.dir} --out {self.dir / "report"}',
             flush=True)
    return 0 if not failed else 1

  def run_local(self, slots=None, every=30):
    """Runs the unfinished jobs `slots` at a time (default: one per visible GPU, else 1), each
    on the GPU with the fewest jobs."""
    gpus = gpu_ids()
    slots = slots or max(1, len(gpus))
    todo, running = self.skip_finished(), {}
    self.log(f'[suite] local: {slots} job(s) at a time'
             + (f" on GPU(s) {', '.join(gpus)}" if gpus else ' (no GPU visible)'), flush=True)
    last = 0
    try:
      while todo or running:
        for job in list(todo):
          if len(running) >= slots:
            break
          fd = try_lock(job['logdir'])
          if fd is None:  # still held by the job of an earlier, killed suite
            continue
          env = {}
          if gpus:
            load = {g: sum(r[1] == g for r in running.values()) for g in gpus}
            env['CUDA_VISIBLE_DEVICES'] = min(gpus, key=load.get)
          running[id(job)] = (launch(job, fd, env), env.get('CUDA_VISIBLE_DEVICES'), job,
                              time.time())
          todo.remove(job)
          self.mark(job, 'running', starts=starts(job['logdir']))
          last = 0
        for key, (proc, _, job, began) in list(running.items()):
          if proc.poll() is not None:
            del running[key]
            self.done(job, proc.returncode, time.time() - began)
            last = 0
        if time.time() - last >= every:
          self.progress(slots)
          last = time.time()
        time.sleep(0.5)
    except KeyboardInterrupt:
      self.stop([r[0] for r in running.values()], [r[2] for r in running.values()])
      raise
    self.progress(slots)
    return self.summary()

  def stop(self, procs, jobs):
    self.log(f'[suite] interrupted: stopping {len(procs)} job(s) (each saves a checkpoint; the '
             'same command resumes them).', flush=True)
    for proc in procs:
      proc.send_signal(signal.SIGINT)
    for proc in procs:
      proc.wait()
    for job in jobs:
      job['status'] = 'pending'
    self.save()

  def run_ray(self, address='auto', gpus=None, cpus=1, every=30):
    """Submits the unfinished jobs as Ray tasks of `gpus` GPUs (default: 1 if the cluster has
    GPUs) and `cpus` CPUs each to the cluster at `address`. The job's logdir must be on a
    filesystem every node shares, the repository at the same path."""
    try:
      import ray
    except ImportError:
      raise ValueError("--backend ray needs Ray: pip install -e '.[ray]'.") from None
    ray.init(address=address, log_to_driver=False, logging_level='ERROR')
    resources = ray.cluster_resources()
    if gpus is None:
      gpus = 1 if resources.get('GPU', 0) else 0
    slots = int(min(resources.get('CPU', 1) // max(cpus, 1e-9),
                    resources.get('GPU', 0) // gpus if gpus else float('inf')))
    self.log(f"[suite] ray at {address}: {resources.get('CPU', 0):g} CPUs, "
             f"{resources.get('GPU', 0):g} GPUs; {gpus} GPU(s) and {cpus} CPU(s) per job, up to "
             f'{slots} at a time', flush=True)
    task = ray.remote(num_gpus=gpus, num_cpus=cpus, max_retries=0)(execute)
    todo = self.skip_finished()
    refs = {}
    for job in todo:
      refs[task.remote(job)] = (job, starts(job['logdir']))
    last = 0
    try:
      while refs:
        ready, _ = ray.wait(list(refs), timeout=1)
        for ref in ready:
          job, _ = refs.pop(ref)
          try:
            status, seconds = ray.get(ref)
          except ray.exceptions.RayError as e:
            status, seconds = f'{type(e).__name__}: {e}', 0
          self.done(job, status, seconds)
          last = 0
        for job, before in refs.values():  # a job is running once its task wrote START
          if job['status'] == 'pending' and starts(job['logdir']) > before:
            self.mark(job, 'running')
        if time.time() - last >= every:
          self.progress(slots)
          last = time.time()
    except KeyboardInterrupt:
      for ref in refs:
        ray.cancel(ref)  # SIGINT to the worker; its job then gets SIGINT and saves
      self.stop([], [job for job, _ in refs.values()])
      raise
    self.progress(slots)
    return self.summary()
