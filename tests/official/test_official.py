"""Differential equivalence with the official implementations (README, "Equivalence with the
official code"): their recorded updates, replayed through our production train step and policy
with their initial weights and random draws, must agree quantity by quantity.

Bounds (harness.BOUNDS) are relative to each tensor's largest magnitude: 1e-5 for losses,
metrics, the return normaliser and the policy; 5e-5 for weights and slow critics, 1e-4 for
gradients and Adam's slots (v holds squared gradients). Measured worst cases: 5.0e-5 (the
gradient of the first encoder norm's offset, V3; 4.1e-5 before the conv stacks' norm + SiLU got
their own backward pass, nets.NormAct), 3.1e-5 (weights), 6.9e-5 (v): float32 sums over 12,288
pixels and conv backprops in another order (XLA, Keras 2 / oneDNN). Each update starts from the official
state after the previous one (recorded.sync), and a weight whose two gradients differ by over
a tenth of the official one (a near-zero gradient: Adam's step of ~lr takes its sign from the
rounding) is held to 3 lr instead; the README table counts those (0-2 per fixture).
"""
import numpy as np
import pytest

from dreamer_tf import agent as agent_lib
from dreamer_tf import distributions as dists
from dreamer_tf import official

import harness
import recorded

FIXTURES = harness.fixtures()
_CACHE = {}


def replayed(name):
  if name not in _CACHE:
    _CACHE[name] = recorded.replay(name)
  return _CACHE[name]


def test_every_version_and_setting_has_a_fixture():
  expected = {'dreamerv3_2023_disc', 'dreamerv3_2023_cont', 'dreamerv3_2024_disc',
              'dreamerv3_2024_cont', 'dreamerv2_disc', 'dreamerv2_cont', 'dreamerv1_cont'}
  assert expected <= set(FIXTURES), sorted(expected - set(FIXTURES))


@pytest.mark.parametrize('name', FIXTURES)
def test_replayed_update_and_policy_match_the_official(name):
  pairs = replayed(name)
  quantities = set(pairs.by_quantity)
  for kind in ('metrics step', 'grads step', 'params step', 'adam step'):
    assert {f'{kind} 1', f'{kind} 2'} <= quantities, (kind, sorted(quantities))
  assert {'policy latents', 'policy action dist', 'policy actions'} <= quantities
  for quantity in sorted(quantities):
    pairs.check(quantity)


@pytest.mark.parametrize('name', FIXTURES)
def test_every_parameter_and_gradient_is_compared(name):
  """No official tensor is skipped: gradients and updated weights of all of them."""
  arrays, _ = harness.load(name)
  pairs = replayed(name)
  official_params = set(harness.sub(arrays, 'init/params'))
  for step in (1, 2):
    assert set(pairs.by_quantity[f'params step {step}']) >= official_params
    grads = {k.split('/', 1)[1] if k not in official_params else k
             for k in harness.sub(arrays, f'step{step}/grads')}
    assert grads == official_params


@pytest.mark.parametrize('name', ['dreamerv3_2023_disc', 'dreamerv3_2024_disc'])
def test_the_graph_compiled_step_replays_the_same_numbers(name):
  """Replay goes through the production tf.function: same metrics as the eager replay."""
  arrays, meta = harness.load(name)
  spec = recorded.spec_of(name)
  agent = recorded.build(spec, meta)
  agent = agent_lib.Agent(agent.obs_space, {'shape': agent.act_shape, 'discrete': agent.discrete},
                          agent.config.update({'compile': 'graph'}))
  official.load_official_params(agent, recorded.recorded_state(spec, arrays, 'init'), spec.version)
  agent.set_draws(dists.Replay(spec.draws(harness.sub(arrays, 'step1/draws'), 'step')))
  metrics = agent.train(spec.batch(harness.sub(arrays, 'step1/batch'), agent))
  eager = replayed(name).by_quantity['metrics step 1']
  for theirs, (ours_eager, _) in eager.items():
    np.testing.assert_allclose(metrics[spec.metrics[theirs]], ours_eager, rtol=1e-5, atol=1e-6)


def test_importer_names_every_missing_extra_and_misshaped_tensor(tmp_path):
  arrays, meta = harness.load('dreamerv1_cont')
  spec = recorded.VERSIONS['dreamerv1']
  agent = recorded.build(spec, meta)
  params = harness.sub(arrays, 'init/params')
  before = agent.wm.rssm.img_in.dense.kernel.numpy().copy()
  broken = dict(params)
  del broken['reward/hout/bias']
  broken['actor/h9/kernel'] = np.zeros((3, 3), np.float32)
  broken['encode/h1/kernel'] = np.zeros((4, 4, 3, 7), np.float32)
  with pytest.raises(ValueError) as error:
    official.load_official_params(agent, broken, 'dreamerv1')
  message = str(error.value)
  assert 'missing: reward/hout/bias' in message
  assert 'extra: actor/h9/kernel' in message
  assert 'encode/h1/kernel: official (4, 4, 3, 7), ours (4, 4, 3, 2)' in message
  # Nothing was assigned.
  np.testing.assert_array_equal(agent.wm.rssm.img_in.dense.kernel.numpy(), before)
  with pytest.raises(ValueError, match="Unknown official version 'dreamerv4'"):
    official.load_official_params(agent, params, 'dreamerv4')
  # An .npz loads; any other file is taken for a pickle and refused without the flag.
  path = tmp_path / 'weights.npz'
  np.savez(path, **params)
  assert len(official.load_official_params(agent, path, 'dreamerv1')) == len(params)
  np.testing.assert_array_equal(agent.wm.rssm.img_in.dense.kernel.numpy(),
                                params['dynamics/img1/kernel'])
  pickled = tmp_path / 'checkpoint.ckpt'
  pickled.write_bytes(b'not read')
  with pytest.raises(ValueError, match='unpickling runs code'):
    official.load_official_params(agent, pickled, 'dreamerv1')


@pytest.mark.parametrize('name', FIXTURES)
def test_initial_weights_follow_the_official_distributions(name):
  """The importer makes the replay blind to initialisers, so compare ours with the official
  initial weights in distribution: zero where the official is zero (zero-initialised outputs,
  biases), one where it is one (norm scales), and the same spread elsewhere."""
  arrays, meta = harness.load(name)
  spec = recorded.spec_of(name)
  agent = recorded.build(spec, meta)
  names = official.name_map(agent, spec.version, state=True)
  for theirs, raw in recorded.recorded_state(spec, arrays, 'init').items():
    if theirs in meta.get('perturbed', ()):  # zero-initialised officially, random in the fixture
      assert all(np.all(var.numpy() == 0) for var, _ in names[theirs]), theirs
      continue
    for var, transform in names[theirs]:
      value = transform(raw) if transform else raw
      ours = var.numpy()
      for constant in (0.0, 1.0):
        assert np.all(ours == constant) == np.all(value == constant), (theirs, constant)
      if value.size >= 64 and np.std(value) > 0:
        ratio = np.std(ours) / np.std(value)
        assert 0.8 < ratio < 1.25, (theirs, ratio)


def test_importer_takes_a_whole_official_checkpoint_tree():
  """An official V3 agent's saved variables, nested, with optimiser states and counters: the
  weights, slow critic and return normaliser load; the rest is left out by name."""
  arrays, meta = harness.load('dreamerv3_2023_disc')
  spec = recorded.spec_of('dreamerv3_2023_disc')
  agent = recorded.build(spec, meta)
  flat = {**harness.sub(arrays, 'step1/params'), **harness.sub(arrays, 'step1/slow'),
          **harness.sub(arrays, 'step1/retnorm'),
          'agent/wm/model_opt/step/value': np.int32(1),
          'agent/task_behavior/critic/updates/value': np.int32(1)}
  tree = {}
  for name, value in flat.items():
    *path, leaf = name.split('/')
    node = tree
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = value
  tree['agent']['wm']['model_opt']['state'] = {'mu': {'x': np.zeros(3)}, 'count': np.int32(1)}
  loaded = official.load_official_params(agent, tree, 'dreamerv3_2023')
  assert not any('_opt/' in name or name.endswith('updates/value') for name in loaded)
  slow = 'agent/task_behavior/critic/slow/h0/kernel'
  assert slow in loaded
  np.testing.assert_array_equal(agent.ac.slow_critic.hidden[0].dense.kernel.numpy(),
                                flat[slow])
  assert float(agent.ac.retnorm.high) == float(
      flat['agent/task_behavior/ac/retnorm_extr/high/value'])
