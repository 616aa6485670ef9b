"""Natural video backgrounds for DMC (envs/natural.py; dreamer-pro@809b417 common/envs.py NAT and
natural_imgsource.py), on generated lossless videos."""
import cv2
import numpy as np
import pytest

from dreamer_tf.envs import natural


def write_video(path, frames):
  """RGB frames (N, H, W, 3) uint8 as a lossless FFV1 video."""
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'FFV1'), 10, (width, height))
  for frame in frames:
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()


def counting_video(path, count, value0, shape=(12, 16)):
  """Frame i is one colour: (value0 + i, 0, 255 - i), so a pixel tells the frame."""
  frames = np.zeros((count, *shape, 3), np.uint8)
  for i in range(count):
    frames[i] = (value0 + i, 0, 255 - i)
  write_video(path, frames)


def test_mask_is_blue_over_green_and_red_and_composite_pastes_only_there():
  image = np.array([[[50, 80, 200], [200, 100, 50]],      # sky: background; orange robot: not
                    [[100, 100, 100], [10, 20, 21]]],     # grey (not greater): not; dark blue: is
                   np.uint8)
  np.testing.assert_array_equal(natural.background_mask(image), [[True, False], [False, True]])
  frame = np.full((2, 2, 3), 7, np.uint8)
  out = natural.composite(image, frame)
  np.testing.assert_array_equal(out, [[[7, 7, 7], [200, 100, 50]], [[100, 100, 100], [7, 7, 7]]])
  assert image[0, 0, 0] == 50  # the input is left as it was


def test_video_frames_are_resized_and_shown_in_order_from_a_random_start(tmp_path):
  counting_video(tmp_path / 'a.avi', 5, 10)
  counting_video(tmp_path / 'b.avi', 5, 100)
  video = natural.read_video(tmp_path / 'a.avi', (8, 8))
  assert video.shape == (5, 8, 8, 3)
  np.testing.assert_array_equal(video[:, 0, 0], [(10 + i, 0, 255 - i) for i in range(5)])
  background = natural.Background(tmp_path, (8, 8), seed=3)
  starts = set()
  for _ in range(6):
    background.reset()
    start = background.index
    shown = [int(background.frame()[0, 0, 0]) for _ in range(7)]
    first = shown[0] - (10 if shown[0] < 100 else 100)
    assert first == (start + 1) % 5                           # start + 1 first (get_image)
    np.testing.assert_array_equal(np.diff(shown) % 5, [1, 1, 1, -4 % 5, 1, 1])  # wraps
    starts.add((shown[0] >= 100, start))
  assert len(starts) > 1
  assert len(natural.Background(tmp_path, (8, 8), max_videos=1).files) == 1


def test_missing_or_empty_folder_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='not a folder of videos.*download_videos.py'):
    natural.Background(tmp_path / 'nope', (8, 8))
  with pytest.raises(FileNotFoundError, match='holds no files'):
    natural.Background(tmp_path, (8, 8))
  (tmp_path / 'junk.avi').write_text('not a video')
  with pytest.raises(ValueError, match='None of the 1 background videos'):
    natural.Background(tmp_path, (8, 8)).reset()


def test_dmc_shows_the_video_where_the_render_is_background_and_nowhere_else(tmp_path):
  pytest.importorskip('dm_control', reason="pip install -e '.[dmc]'")
  from dreamer_tf.envs import dmc
  counting_video(tmp_path / 'v.avi', 8, 20, (64, 64))
  plain = dmc.DMC('cartpole_balance', seed=0)
  shown = dmc.DMC('cartpole_balance', background=str(tmp_path), seed=0)
  values = []
  for obs, ref in [(shown.reset(), plain.reset())] + [
      (shown.step(np.ones(1)), plain.step(np.ones(1))) for _ in range(3)]:
    image, rendered = obs['image'], ref['image']
    mask = natural.background_mask(rendered)
    assert 0.3 < mask.mean() < 0.99   # sky and floor, around the cart and pole
    np.testing.assert_array_equal(image[~mask], rendered[~mask])
    colours = np.unique(image[mask].reshape(-1, 3), axis=0)
    red, green, blue = colours[0].astype(int)
    assert len(colours) == 1 and green == 0 and red + blue == 275   # one whole video frame
    values.append(red - 20)
  assert np.array_equal(np.diff(values) % 8, [1, 1, 1])   # one frame per observation
  with pytest.raises(ValueError, match='needs image observations'):
    dmc.DMC('cartpole_balance', proprio=True, background=str(tmp_path))
