"""Natural video backgrounds for DeepMind Control images (config `env.dmc.background`), as
DreamerPro's natural-background benchmark (dreamer-pro@809b417 DreamerPro/common/envs.py `NAT`
and common/natural_imgsource.py `RandomVideoSource`, after TPC and deep_bisim4control).

Background pixels are decided from the rendered colours, not from a segmentation: a pixel is
background where its blue channel exceeds both green and red (NAT.render), which holds for the
blue DMC skybox and floor and for none of the robots. There the frame of a video is pasted.
Videos: the files of a folder (mp4 or anything OpenCV reads), at most `max_videos` 100 of them
chosen at random once; at every episode start one video is picked at random (its first 1,000
frames, resized bilinearly to the image size) and a random start frame; every rendered
observation shows the next frame, wrapping at the end (`random_bg: False`).

The official videos are the Kinetics-400 "driving car" clips, train split for training and test
split for evaluation: run the official repository's `download_videos.py` (it reads
kinetics400/kinetics400/{train,test}.json and writes kinetics400/videos/{train,test}).
"""
import pathlib

import cv2
import numpy as np


def background_mask(image):
  """(H, W) bool: blue > green and blue > red (NAT.render)."""
  image = image.astype(np.int16)
  return (image[..., 2] > image[..., 1]) & (image[..., 2] > image[..., 0])


def composite(image, frame):
  """`image` (H, W, 3) uint8 with `frame` pasted where background_mask(image) holds."""
  out = image.copy()
  mask = background_mask(image)
  out[mask] = frame[mask]
  return out


def read_video(path, size, max_frames=1000):
  """The first `max_frames` RGB frames of a video, resized to `size` (H, W) with bilinear
  interpolation (cv2.resize's default, as load_video); (N, H, W, 3) uint8."""
  capture = cv2.VideoCapture(str(path))
  frames = []
  while len(frames) < max_frames:
    ok, frame = capture.read()
    if not ok:
      break
    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    frames.append(cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_LINEAR))
  capture.release()
  if not frames:
    raise ValueError(f'No frames could be read from {path}.')
  return np.stack(frames)


class Background:
  """Video frames for the background of each rendered observation (RandomVideoSource)."""

  def __init__(self, folder, size, seed=0, max_videos=100):
    folder = pathlib.Path(folder).expanduser()
    if not folder.is_dir():
      raise FileNotFoundError(
          f"env.dmc.background: '{folder}' is not a folder of videos. The official ones are "
          'Kinetics-400 "driving car" clips: run download_videos.py of fdeng18/dreamer-pro.')
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
      raise FileNotFoundError(f"env.dmc.background: '{folder}' holds no files.")
    self.rng = np.random.default_rng(seed)
    self.files = [files[i] for i in self.rng.permutation(len(files))[:max_videos]]
    self.size = tuple(size)
    self.video, self.index = None, 0

  def reset(self):
    """A random video (unreadable files are skipped, as the official retries) and start frame."""
    for i in self.rng.permutation(len(self.files)):
      try:
        self.video = read_video(self.files[i], self.size)
        break
      except ValueError:
        continue
    else:
      raise ValueError(f'None of the {len(self.files)} background videos could be read, e.g. '
                       f'{self.files[0]}.')
    self.index = int(self.rng.integers(len(self.video)))

  def frame(self):
    """The next frame (the first call after reset shows start + 1, as get_image)."""
    self.index += 1
    return self.video[self.index % len(self.video)]

  def __call__(self, image):
    return composite(image, self.frame())
