"""DeepMind Control suite with the DreamerV3 protocol (dreamerv3@8fa35f8 embodied/envs/dmc.py,
from_dm.py, core/wrappers.py and configs.yaml `env.dmc`).

Action repeat 2 with summed rewards, 64x64 RGB renders from camera 2 for quadruped and 0
otherwise, continuous actions in [-1, 1] clipped then mapped to the task's bounds (ClipAction and
NormalizeAction), `is_last` at dm_control's time limit (1000 steps, discount 1) and `is_terminal`
only when dm_control's discount is 0. Proprio mode flattens each observation array to float32.
`background`: a folder of videos shown behind the robot (envs/natural.py, DreamerPro's NAT).
"""
import ctypes
import ctypes.util
import glob
import os

import numpy as np

from . import natural

DEFAULT_CAMERAS = {'quadruped': 2}  # official DEFAULT_CAMERAS by domain (locom_rodent is not suite)
RENDER_HELP = (
    'MuJoCo rendering needs EGL or OSMesa. On Debian/Ubuntu: apt-get install libegl1 libgl1 '
    'libosmesa6, then MUJOCO_GL=egl (set here when unset) or MUJOCO_GL=osmesa. Proprio-only runs '
    '(env.dmc.proprio true) can use MUJOCO_GL=disable.')


def _render_error(exc):
  return RuntimeError(f"{RENDER_HELP} (MUJOCO_GL={os.environ.get('MUJOCO_GL')}: "
                      f'{type(exc).__name__}: {exc})')


def _isolate_mesa_llvm():
  """Mesa's software renderer (llvmpipe) and TensorFlow each carry LLVM, and TF exports its
  symbols globally: Mesa then calls TF's LLVM and segfaults (seen with TF 2.21, Mesa 22, LLVM 15),
  and Mesa's LLVM loaded first breaks TF's import. So TF is imported first, then Mesa's renderer
  library is loaded with RTLD_DEEPBIND to bind its own LLVM. No-op without Mesa (e.g. NVIDIA EGL)."""
  import tensorflow  # noqa: F401
  backend = os.environ['MUJOCO_GL']
  if backend == 'egl':
    paths = [os.path.join(d, 'swrast_dri.so')
             for d in os.environ.get('LIBGL_DRIVERS_PATH', '').split(':') if d]
    paths += glob.glob('/usr/lib*/dri/swrast_dri.so') + glob.glob('/usr/lib/*/dri/swrast_dri.so')
  else:
    paths = [ctypes.util.find_library('OSMesa')] if backend == 'osmesa' else []
  for path in filter(None, paths):
    try:
      ctypes.CDLL(path, os.RTLD_NOW | os.RTLD_LOCAL | os.RTLD_DEEPBIND)
      return
    except OSError:
      continue


def _load_suite():
  # The official DMC wrapper defaults MUJOCO_GL to egl; dm_control reads it on first import.
  os.environ.setdefault('MUJOCO_GL', 'egl')
  _isolate_mesa_llvm()
  try:
    import dm_control  # noqa: F401
    import mujoco  # noqa: F401
  except ModuleNotFoundError as exc:
    raise ImportError(f"DMC tasks need the 'dmc' extra: pip install -e '.[dmc]' "
                      f'(dm-control==1.0.50 mujoco==3.17.0). {exc}') from exc
  try:
    # A missing GL library fails here as ImportError, OSError or AttributeError (PyOpenGL).
    from dm_control import suite
  except (ImportError, OSError, AttributeError, RuntimeError) as exc:
    raise _render_error(exc) from exc
  return suite


def _split(suite, name):
  """'ball_in_cup_catch' -> ('ball_in_cup', 'catch'); official alias: domain `cup`."""
  tasks = {f'{domain}_{task}': (domain, task) for domain, task in suite.ALL_TASKS}
  full = 'ball_in_cup_' + name[len('cup_'):] if name.startswith('cup_') else name
  if full not in tasks:
    raise ValueError(f"Unknown DMC task '{name}'. Valid: {', '.join(sorted(tasks))}.")
  return tasks[full]


class DMC:

  def __init__(self, name, repeat=2, size=(64, 64), camera=-1, proprio=False, background='',
               seed=0):
    if background and proprio:
      raise ValueError(f"env.dmc.background '{background}' needs image observations; "
                       'env.dmc.proprio is true.')
    suite = _load_suite()
    domain, task = _split(suite, name)
    self._env = suite.load(domain, task, task_kwargs={'random': seed})
    self._repeat, self._size, self._proprio = repeat, tuple(size), proprio
    self._camera = DEFAULT_CAMERAS.get(domain, 0) if camera == -1 else camera
    spec = self._env.action_spec()
    self._low, self._high = spec.minimum, spec.maximum
    # The official FromDM asserts finite bounds before NormalizeAction uses them.
    assert np.isfinite(self._low).all() and np.isfinite(self._high).all(), spec
    self._background = natural.Background(background, size, seed) if background else None

  @property
  def obs_space(self):
    if self._proprio:
      obs = {key: (_vector_shape(spec.shape), np.float32)
             for key, spec in self._env.observation_spec().items()}
    else:
      obs = {'image': ((*self._size, 3), np.uint8)}
    return {**obs, 'reward': ((), np.float32), 'is_first': ((), bool), 'is_last': ((), bool),
            'is_terminal': ((), bool)}

  @property
  def act_space(self):
    return {'shape': self._low.shape, 'discrete': False}

  def reset(self):
    if self._background:
      self._background.reset()
    return self._obs(self._env.reset(), 0.0)

  def step(self, action):
    action = np.asarray(action, np.float64)
    assert np.isfinite(action).all(), action  # as the official DMC.step
    action = self._low + (np.clip(action, -1, 1) + 1) / 2 * (self._high - self._low)
    total = 0.0
    for _ in range(self._repeat):
      time_step = self._env.step(action)
      total += time_step.reward or 0.0  # None on a first time step (from_dm.py)
      if time_step.last():
        break
    return self._obs(time_step, total)

  def _obs(self, time_step, reward):
    if self._proprio:
      obs = {key: np.asarray(value, np.float32).reshape(_vector_shape(np.shape(value)))
             for key, value in time_step.observation.items()}
    else:
      obs = {'image': self._render()}
    # from_dm.py: is_last from step_type, is_terminal when discount is 0 (1 at the time limit).
    return {**obs, 'reward': np.float32(reward), 'is_first': time_step.first(),
            'is_last': time_step.last(), 'is_terminal': bool(time_step.discount == 0)}

  def _render(self):
    try:
      image = self._env.physics.render(*self._size, camera_id=self._camera)
    except (ImportError, OSError, AttributeError, RuntimeError) as exc:
      raise _render_error(exc) from exc
    return self._background(image) if self._background else image

  def close(self):
    self._env.close()


def _vector_shape(shape):
  """Scalars stay rank 0, which the official encoders leave out (dreamerv3@8fa35f8 MultiEncoder
  takes ranks 1-2, dreamerv2@07d906e Encoder rank 1: walker's `height` is not modelled);
  everything else is flattened to a vector."""
  return () if len(shape) == 0 else (int(np.prod(shape)),)
