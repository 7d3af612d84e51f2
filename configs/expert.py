"""PPO experts (rtc/expert/train.py).

  bazel run //rtc/expert:train -- --config=configs/expert.py             # paper
  bazel run //rtc/expert:train -- --config=configs/expert.py:cpu         # CPU
  bazel run //rtc/expert:train -- --config=configs/expert.py:quickstart  # fast

Presets (the text after ':'):

* `paper` (default): the paper's settings for its 12 large levels, 8 seeds
  each, ~6e9 environment steps: GPU work. Four of the 12 levels are not
  shipped with kinetix-env: add --config.worlds_dir=../shared/worlds (or use
  --config.levels=paper_packaged for the 8 that are).
* `cpu`: sized for this 2-core CPU (~15 minutes); see the numbers below.
* `quickstart`: the quickstart's expert settings: one small level that PPO
  solves within ~3 minutes including compilation.
"""

from ml_collections import config_dict

PRESETS = ('paper', 'cpu', 'quickstart')


def get_config(preset: str = 'paper'):
  preset = preset or 'paper'
  if preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r}; use one of {PRESETS}.')
  c = config_dict.ConfigDict()
  # Comma-separated level ids or a named set (paper, paper_packaged); all
  # levels of one run must share static parameters (no s/ with m/ or l/).
  c.levels = 'paper'
  c.worlds_dir = ''  # '' = the levels kinetix-env ships.
  c.logdir = 'logs-expert'
  c.run_name = ''  # '' = the date and time.
  c.seed = 0
  c.num_seeds = 8  # Independent experts per level.
  # Levels trained at once (0 = all); groups run one after another.
  c.parallel_levels = 0
  # PPO (rtc/expert/ppo.py).
  c.num_envs = 256
  c.num_steps = 256
  c.num_updates = 1000
  c.num_minibatches = 8
  c.update_epochs = 4
  c.learning_rate = 3e-4
  c.max_grad_norm = 1.0
  c.gamma = 0.995
  c.gae_lambda = 0.9
  c.clip_eps = 0.2
  c.vf_coef = 0.5
  c.ent_coef = 0.0
  c.rpo_alpha = 0.3
  # Learning reward: 'distance', 'kinetix' or 'none' (rtc/expert/ppo.py).
  c.shaping = 'distance'
  # Agent: observation = last `obs_history` plain observations + the
  # previous action; 2 hidden layers of `hidden_dim` per MLP.
  c.obs_history = 4
  c.hidden_dim = 256
  # Statistics, TensorBoard and checkpoints every this many updates.
  c.save_every = 20
  if preset == 'cpu':
    c.levels = 's/h0_weak_thrust'
    c.num_seeds = 4
    c.num_envs = 64
    c.num_steps = 128
    c.num_updates = 100
    c.save_every = 5
  elif preset == 'quickstart':
    c.levels = 's/h0_weak_thrust'
    c.num_seeds = 2
    c.num_envs = 64
    c.num_steps = 128
    c.num_updates = 30
    c.save_every = 5
  return c
