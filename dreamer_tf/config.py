"""Configs: `configs/defaults.yaml`, then named presets in order, then overrides.

Keys are dotted paths (`run.train_ratio`). A key containing characters other than letters,
digits, `_`, `.` and `-` is a regular expression matched from the start of every dotted key
(`.*\\.units$`), as the official `embodied.Config.update` does. Values keep the type of the
default; an unknown key or preset raises `ConfigError` naming the closest valid ones, and a value
outside its range or choices (checks.py) one naming the key, the value and what is valid.
"""
import difflib
import pathlib
import re

import yaml

from . import checks

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / 'configs'
# libyaml's parser where PyYAML has it: the same documents, 8x faster than the pure-Python one
# (presets.yaml 0.13 -> 0.016 s, parsed on every load).
LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
IS_PATTERN = re.compile(r'.*[^A-Za-z0-9_.\-].*')


class ConfigError(ValueError):
  pass


def _suggest(name, choices):
  close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
  return f' Did you mean: {", ".join(close)}?' if close else ''


def _flatten(mapping, prefix=''):
  flat = {}
  for key, value in mapping.items():
    if prefix:
      sep = '\\.' if IS_PATTERN.match(prefix) or IS_PATTERN.match(key) else '.'
      key = prefix + sep + key
    if isinstance(value, dict):
      flat.update(_flatten(value, key))
    else:
      flat[key] = value
  return flat


def _nest(flat):
  nested = {}
  for key, value in flat.items():
    node = nested
    *parents, leaf = key.split('.')
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return nested


def _convert(old, new, key):
  """Casts `new` to the type of the default `old`, or raises ConfigError."""
  if isinstance(old, bool):
    if isinstance(new, str) and new in ('True', 'true', 'False', 'false'):
      return new in ('True', 'true')
    if isinstance(new, bool):
      return new
  elif isinstance(old, int):
    try:
      value = float(new)
    except (TypeError, ValueError):
      value = None
    if value is not None and not isinstance(new, bool) and value == int(value):
      return int(value)
  elif isinstance(old, float):
    try:
      if not isinstance(new, bool):
        return float(new)
    except (TypeError, ValueError):
      pass
  elif isinstance(old, str):
    if isinstance(new, str):
      return new
  elif isinstance(old, (list, tuple)):
    if isinstance(new, str):
      new = [x for x in new.strip('[]()').split(',') if x.strip()] if new.strip('[]()') else []
      new = [yaml.safe_load(x.strip()) for x in new]
    if isinstance(new, (list, tuple)):
      return [_convert(old[0], x, key) if old else x for x in new]
  raise ConfigError(
      f"Config key '{key}' expects a {type(old).__name__} (default {old!r}), "
      f'got {new!r}.')


class Config:
  """Read-only nested config with attribute and item access."""

  def __init__(self, flat):
    self._flat = dict(flat)
    self._nested = _nest(self._flat)

  @property
  def flat(self):
    return dict(self._flat)

  def __getattr__(self, name):
    if name.startswith('_'):
      raise AttributeError(name)
    return self[name]

  def __getitem__(self, name):
    if name in self._flat:
      return self._flat[name]
    prefix = name + '.'
    sub = {k[len(prefix):]: v for k, v in self._flat.items() if k.startswith(prefix)}
    if not sub:
      raise ConfigError(f"Unknown config key '{name}'." + _suggest(name, self._keys()))
    return Config(sub)

  def __contains__(self, name):
    return name in self._flat or any(k.startswith(name + '.') for k in self._flat)

  def _keys(self):
    keys = set(self._flat)
    for key in self._flat:
      parts = key.split('.')
      keys.update('.'.join(parts[:i]) for i in range(1, len(parts)))
    return keys

  def get(self, name, default=None):
    return self[name] if name in self else default

  def to_dict(self):
    return _nest(self._flat)

  def update(self, mapping):
    """Returns a new Config with `mapping` (nested or flat, patterns allowed) applied."""
    result = dict(self._flat)
    for key, new in _flatten(mapping).items():
      if IS_PATTERN.match(key):
        pattern = re.compile(key)
        keys = [k for k in result if pattern.match(k)]
        if not keys:
          raise ConfigError(f"Config pattern '{key}' matches no key.")
      elif key in result:
        keys = [key]
      else:
        sub = [k for k in result if k.startswith(key + '.')]
        if sub and isinstance(new, dict):
          keys = []
        elif sub:
          raise ConfigError(
              f"Config key '{key}' is a group; set one of its keys: {', '.join(sorted(sub))}.")
        else:
          raise ConfigError(f"Unknown config key '{key}'." + _suggest(key, self._keys()))
      for k in keys:
        result[k] = _convert(result[k], new, k)
    return Config(result)

  def save(self, path):
    path = pathlib.Path(path)
    tmp = path.with_suffix(path.suffix + '.tmp')
    tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=True))
    tmp.replace(path)

  def __eq__(self, other):
    return isinstance(other, Config) and self._flat == other._flat

  def __repr__(self):
    width = max(len(k) for k in self._flat)
    return '\n'.join(f'{k:<{width}}  {v!r}' for k, v in sorted(self._flat.items()))


def _yaml(path):
  return yaml.load(pathlib.Path(path).read_text(), Loader=LOADER)


def presets():
  return _yaml(CONFIG_DIR / 'presets.yaml')


def defaults():
  return Config(_flatten(_yaml(CONFIG_DIR / 'defaults.yaml')))


def read(path):
  """A config a run saved (Config.save), over the current defaults."""
  return defaults().update(_yaml(path))


def parse_overrides(argv):
  """`['--a.b=1', '--c', '2']` -> {'a.b': '1', 'c': '2'}; anything else is an error."""
  overrides, key = {}, None
  for arg in argv:
    if arg.startswith('--'):
      if key is not None:
        raise ConfigError(f"Flag '--{key}' was not followed by a value.")
      key, eq, value = arg[2:].partition('=')
      if eq:
        overrides[key], key = value, None
    elif key is not None:
      overrides[key], key = arg, None
    else:
      raise ConfigError(f"Value '{arg}' is not preceded by a --flag.")
  if key is not None:
    raise ConfigError(f"Flag '--{key}' was not followed by a value.")
  return overrides


def check(config):
  """Raises ConfigError listing every value of `config` outside its range or choices."""
  problems = checks.problems(config)
  if problems:
    raise ConfigError('\n'.join(problems))
  return config


def load(names=(), overrides=None):
  """defaults, then each preset in `names`, then `overrides` (dict or argv list); checked."""
  config = defaults()
  table = presets()
  for name in names:
    if name not in table:
      raise ConfigError(
          f"Unknown preset '{name}'. Valid presets: {', '.join(table)}." + _suggest(name, table))
    config = config.update(table[name] or {})
  if isinstance(overrides, (list, tuple)):
    overrides = parse_overrides(overrides)
  return check(config.update(overrides or {}))
