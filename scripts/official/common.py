"""Shared by the generators in scripts/official/: fetch the official source at a commit, make a
virtualenv, write a fixture file byte-identically on every run.

Not imported by the package. The generators run in two processes: the outer one (stdlib + numpy
of any Python >= 3.10) prepares the source and the venv and re-executes the generator inside that
venv with `--inner`, which builds the official agent and records.

Fixture format (`tests/official/fixtures/<name>.npz`, read by dreamer_tf.official and
tests/official): a zip of .npy arrays, names sorted, fixed timestamps, plus `meta.json` (a JSON
string array) holding the official repo, commit, the resolved official config, spaces and the
library versions. Array names are '/'-joined paths, e.g. `init/params/<official name>`,
`step1/grads/<official name>`, `step1/draws/<site>`, `step1/metrics/<name>`, `policy/...`.
"""
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'official', 'fixtures')


def checkout(url, commit, dest, source=None, exclude=()):
  """Exports `commit` of `url` (or of the local git repository / mirror `source`) into `dest`.

  Returns dest. Uses `git archive` so only the tracked files of that commit arrive; `exclude`
  lists top-level paths to leave out (e.g. dreamerv3's `scores/`, whose blobs a mirror may lack).
  """
  if os.path.exists(os.path.join(dest, '.commit')):
    with open(os.path.join(dest, '.commit')) as f:
      if f.read().strip() == commit:
        return dest
  os.makedirs(dest, exist_ok=True)
  gitdir = source
  if gitdir is None:
    gitdir = os.path.join(dest, '.git-clone')
    if not os.path.exists(gitdir):
      subprocess.check_call(['git', 'clone', '--bare', '--quiet', url, gitdir])
  paths = ['.'] + [f':(exclude){p}' for p in exclude]
  archive = subprocess.run(['git', '--git-dir', _gitdir(gitdir), 'archive', commit, '--', *paths],
                           check=True, stdout=subprocess.PIPE).stdout
  subprocess.run(['tar', '-x', '-C', dest], input=archive, check=True)
  with open(os.path.join(dest, '.commit'), 'w') as f:
    f.write(commit)
  return dest


def _gitdir(path):
  """A bare repository, a mirror folder holding `repo`, or a work tree's `.git`."""
  for candidate in (path, os.path.join(path, 'repo'), os.path.join(path, '.git')):
    if os.path.exists(os.path.join(candidate, 'HEAD')) and os.path.isdir(
        os.path.join(candidate, 'objects')):
      return candidate
  raise SystemExit(f'{path} is not a git repository (bare, mirror or work tree).')


def venv(path, requirements, python=sys.executable):
  """Creates (once) a virtualenv at `path` with the pinned `requirements`; returns its python."""
  exe = os.path.join(path, 'bin', 'python')
  stamp = os.path.join(path, '.requirements')
  wanted = '\n'.join(requirements)
  if os.path.exists(stamp) and open(stamp).read() == wanted:
    return exe
  subprocess.check_call([python, '-m', 'venv', path])
  subprocess.check_call([exe, '-m', 'pip', 'install', '--quiet', '--upgrade', 'pip'])
  subprocess.check_call([exe, '-m', 'pip', 'install', '--quiet', *requirements])
  with open(stamp, 'w') as f:
    f.write(wanted)
  return exe


def workdir(given):
  """The directory the user named, or a fresh temporary one."""
  if given:
    os.makedirs(given, exist_ok=True)
    return os.path.abspath(given)
  return tempfile.mkdtemp(prefix='dreamer_official_')


def blocky(cells):
  """Images (..., 64, 64, 3) from random (..., 8, 8, 3) cells of 8x8 pixels each: the networks
  see varied inputs and the fixture compresses (uniform noise pixels would not)."""
  return np.repeat(np.repeat(cells, 8, -3), 8, -2)


def observations(rng, lead):
  """The V3 generators' observations of shape `lead` (batch (B, T) or policy (steps, B)) from a
  numpy Generator, drawn in this order: blocky `image`, `vector` (5,), `reward`; the flags
  is_first / is_last / is_terminal all False, for the caller to set."""
  return {
      'image': blocky(rng.integers(0, 256, (*lead, 8, 8, 3), dtype=np.uint8)),
      'vector': rng.standard_normal((*lead, 5)).astype(np.float32),
      'reward': rng.standard_normal(lead).astype(np.float32),
      'is_first': np.zeros(lead, bool),
      'is_last': np.zeros(lead, bool),
      'is_terminal': np.zeros(lead, bool)}


def save(path, arrays, meta):
  """Writes arrays (name -> array) and meta (JSON-able) so that equal inputs give equal bytes."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  entries = {name: np.asarray(value) for name, value in arrays.items()}
  entries['meta.json'] = np.array(json.dumps(meta, sort_keys=True, indent=1))
  tmp = path + '.tmp'
  with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as zf:
    for name in sorted(entries):
      buf = io.BytesIO()
      np.lib.format.write_array(buf, np.require(entries[name], requirements='C'),
                               allow_pickle=False)
      info = zipfile.ZipInfo(name + '.npy', date_time=(1980, 1, 1, 0, 0, 0))
      info.compress_type = zipfile.ZIP_DEFLATED
      info.external_attr = 0o644 << 16
      zf.writestr(info, buf.getvalue())
  os.replace(tmp, path)


def load(path):
  """(arrays, meta) of a fixture written by save()."""
  with np.load(path, allow_pickle=False) as f:
    arrays = {k: f[k] for k in f.files}
  meta = json.loads(arrays.pop('meta.json').item())
  return arrays, meta
