"""dreamer_tf.compare on small logs in the formats of the official and ported implementations."""
import json

import pytest

from dreamer_tf import compare


def write_jsonl(path, rows, tail=''):
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows) + tail)
  return path


def pong_rows(key, score, start=362000, stop=400000, step=4000):
  return [{'step': s, key: score, 'fps': 100.0} for s in range(start, stop + 1, step)]


def write_events(logdir, tag, points):
  import tensorflow as tf
  writer = tf.summary.create_file_writer(str(logdir))
  with writer.as_default():
    for step, value in points:
      tf.summary.scalar(tag, value, step=step)
  writer.close()


def test_formats_are_read_in_env_steps(tmp_path):
  v3 = write_jsonl(tmp_path / 'scores.jsonl', pong_rows('episode/score', 18.0))
  (tmp_path / 'v2').mkdir()
  write_jsonl(tmp_path / 'v2' / 'metrics.jsonl',
              [{'step': 1000, 'model_loss': 1.0}] + pong_rows('train_return', 17.0))
  write_events(tmp_path / 'sheeprl' / 'version_0', 'Rewards/rew_avg',
               [(390000, 19.0), (370000, 15.0), (100, -21.0)])
  run = compare.load(v3, task='pong')
  assert run['format'] == 'dreamerv3' and run['xs'][0] == 362000 and run['ys'][-1] == 18.0
  run = compare.load(tmp_path / 'v2', task='pong', label='dv2')
  assert run['format'] == 'dreamerv2' and run['method'] == 'dv2' and run['xs'][0] == 362000
  # sheeprl logs policy steps; without its config.yaml the repeat is given (test_report.py: with)
  run = compare.load(tmp_path / 'sheeprl', task='pong', unit='agent_steps', repeat=4)
  assert run['format'] == 'sheeprl' and run['xs'] == [400, 1480000, 1560000]
  assert run['ys'] == [-21.0, 15.0, 19.0]
  run = compare.load(v3, task='pong', unit='agent_steps', repeat=4)   # a log in agent steps
  assert run['xs'][0] == 4 * 362000


def test_cli_table_and_plot(tmp_path, capsys):
  for seed, score in ((0, 16.0), (1, 20.0)):
    write_jsonl(tmp_path / f'dv3_{seed}.jsonl', pong_rows('episode/score', score))
  write_jsonl(tmp_path / 'broken.jsonl', pong_rows('episode/score', -20.5))
  (tmp_path / 'scores.jsonl').write_text((tmp_path / 'broken.jsonl').read_text())
  code = compare.main(['--task', 'pong', '--frames', '400000', '--plot', str(tmp_path / 'c.png'),
                       f'official={tmp_path / "dv3_0.jsonl"}', f'official={tmp_path / "dv3_1.jsonl"}',
                       f'port={tmp_path}'])
  out = capsys.readouterr().out
  assert code == 1    # the port is BELOW
  assert 'official' in out and '18.00 ± 2.83' in out and '2 seed(s)' in out and 'MATCH' in out
  assert 'port' in out and '-20.50' in out and 'BELOW' in out and '18.18 ± 2.30' in out
  assert (tmp_path / 'c.png').stat().st_size > 10000


def test_bad_input_names_the_problem(tmp_path, capsys):
  good = write_jsonl(tmp_path / 'scores.jsonl', pong_rows('episode/score', 18.0))
  bad = write_jsonl(tmp_path / 'metrics.jsonl', pong_rows('episode/score', 18.0)[:3],
                    tail='{"step": 374000, "episode/sc')
  before = bad.read_text()
  cases = [
      ([str(bad), '--task', 'pong'], 'metrics.jsonl:4: truncated or invalid JSON line'),
      ([str(good), '--task', 'pongg'], "task 'pongg'"),
      ([str(good), '--task', 'pong', '--against', 'dreamerv9'], "method 'dreamerv9'"),
      ([str(tmp_path / 'nothing'), '--task', 'pong'], 'No such file'),
      ([str(good)], 'does not name its task'),
      ([str(good), '--task', 'pong', '--unit', 'agent_steps'], 'pass --repeat'),
  ]
  for argv, message in cases:
    assert compare.main(argv + ['--frames', '400000']) == 2, argv
    assert message in capsys.readouterr().err, argv
  assert bad.read_text() == before   # nothing written or lost
  (tmp_path / 'x').mkdir()
  with pytest.raises(ValueError, match="format of .*Formats: dreamerv3, dreamerv2, sheeprl"):
    compare.detect(tmp_path / 'x')
  with pytest.raises(ValueError, match="Unknown format 'dreamer4'. Valid: dreamerv3"):
    compare.load(good, fmt='dreamer4', task='pong')
  write_run = tmp_path / 'r.jsonl'
  write_run.write_text(json.dumps({'step': 1, 'loss': 2.0}) + '\n')
  with pytest.raises(ValueError, match='holds no scores: expected episode/score or score'):
    compare.load(write_run, fmt='dreamerv3', task='pong')
