"""Keeps TensorFlow's (and ALE's) start-up chatter off the terminal of an entry point's user.

TensorFlow's C++ logs at import, before it reads `TF_CPP_MIN_LOG_LEVEL` (TF 2.21: "WARNING: All
log messages before absl::InitializeLog() is called are written to STDERR", the oneDNN and
`cudart_stub` notices, once per shared library), and later on a CPU machine (the `cuInit` error,
oneDNN's int64 note). `quiet_tensorflow()` sets the level (default 3, which hides C++ errors too;
a level the user set is kept), imports TensorFlow with the process's stderr captured and writes
back only the captured lines the level lets through (all of them if the import fails). At level
2 or more absl's Python logging shows errors only. It also sets ALE's logger to warnings,
hiding its "A.L.E: Arcade Learning Environment" banner.

Call it before anything imports TensorFlow; with `verbose` (the entry points' `--verbose`) it
does nothing.
"""
import os
import re
import sys
import tempfile

LEVEL = 'TF_CPP_MIN_LOG_LEVEL'
SEVERITIES = 'IWEF'  # absl line prefixes, hidden below TF_CPP_MIN_LOG_LEVEL 0..3 (F: never)
ABSL_LINE = re.compile(r'([IWEF])\d{4} ')
PREINIT = 'WARNING: All log messages before absl::InitializeLog() is called'


def shown(text, level):
  """The lines of captured stderr `text` that TF_CPP_MIN_LOG_LEVEL `level` shows: absl log lines
  of a severity >= level (fatal always) with the lines that continue them (up to the next log
  line), other lines as they are, and not the pre-init notice."""
  keep, hide = [], False
  for line in text.splitlines(keepends=True):
    match = ABSL_LINE.match(line)
    if match:
      hide = SEVERITIES.index(match.group(1)) < min(level, 3)
    elif line.startswith(PREINIT):
      hide = False
      continue
    if not hide:
      keep.append(line)
  return ''.join(keep)


def quiet_tensorflow(verbose=None):
  """Imports TensorFlow without its start-up log lines; see the module doc. `verbose`: None
  reads `--verbose` from sys.argv (for a module that must call this before its imports)."""
  if verbose is None:
    verbose = '--verbose' in sys.argv[1:]
  if verbose or 'tensorflow' in sys.modules:
    return
  os.environ.setdefault(LEVEL, '3')
  level = int(os.environ[LEVEL]) if os.environ[LEVEL].isdigit() else 0
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # noqa: F401  (the import is the point: its C++ logs go to `captured`)
    except BaseException:
      level = 0
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      sys.stderr.write(shown(captured.read().decode(errors='replace'), level))
      sys.stderr.flush()
  if level >= 2:
    from absl import logging
    logging.set_verbosity(logging.ERROR)
  import ale_py
  ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Warning)
