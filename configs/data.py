"""Expert-data generation (rtc/expert/generate_data.py).

  bazel run //rtc/expert:generate_data -- --config=configs/data.py \
      --config.run_path=logs-expert/<run>

Presets (the text after ':'): `paper` (default; 1M steps per level), `cpu`
(200k per level) and `quickstart` (100k per level). Measured on the 2-core
CPU: `quickstart` on the quickstart experts (m/h0_unicycle, 2 experts of 64
units) 1.7 minutes wall including ~45 s of compilation, ~3.8k env steps/s,
2300 episodes, mean length 42.3, solve rate 0.997; `cpu` on the cpu experts
(2 levels x 4 experts of 256 units) 3.4 minutes, ~2.8k env steps/s,
m/h0_unicycle 5422 episodes (length 36.4, solve rate 0.995) and
m/h4_thrust_the_needle 8154 episodes (length 24.4, solve rate 0.923, its
mixture including checkpoints from 0.77 up).
"""

from ml_collections import config_dict

from configs import common

PRESETS = ('paper', 'cpu', 'quickstart')


def get_config(preset: str = 'paper'):
  preset = preset or 'paper'
  if preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r}; use one of {PRESETS}.')
  c = config_dict.ConfigDict()
  # Expert run (logs-expert/<run>, or one written by the earlier
  # implementation). Required. Data goes to <run_path>/data/.
  c.run_path = ''
  c.levels = ''  # '' = every level with checkpoints in the run.
  c.worlds_dir = ''  # '' = the run's own (config.json), else kinetix-env's.
  c.num_envs = 128
  c.num_steps = 1_000_000  # Environment steps per level.
  # Per seed: a random checkpoint with at least this solve rate, else the
  # best one (left out of the mixture).
  c.solve_threshold = 0.65
  c.deterministic = False  # True: squashed mean instead of a sample.
  c.seed = 0
  c.chunk_steps = 256  # Steps per device call (bounds memory).
  # One job of several processes (configs/common.py); nothing set: one.
  c.distributed = common.distributed()
  if preset == 'cpu':
    c.num_steps = 200_000
  elif preset == 'quickstart':
    c.num_steps = 100_000
  return c
