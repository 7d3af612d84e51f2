"""PPO experts (rtc/expert/train.py).

  bazel run //rtc/expert:train -- --config=configs/expert.py             # paper
  bazel run //rtc/expert:train -- --config=configs/expert.py:cpu         # CPU
  bazel run //rtc/expert:train -- --config=configs/expert.py:quickstart  # fast

Presets (the text after ':'):

* `paper` (default): the paper's settings for its 12 large levels, 8 seeds
  each, ~6e9 environment steps: GPU work. Four of the 12 levels are not
  shipped with kinetix-env: add --config.worlds_dir=<their folder> (docs/scaling.md,
  "Levels, data and outputs", says where they come from), or use
  --config.levels=paper_packaged for the 8 that are.
* `cpu`: m/h0_unicycle and m/h4_thrust_the_needle, 4 seeds each, the
  paper's agent, 64 envs x 32 steps per update, 100 updates (205k steps per
  seed). Measured on the 2-core CPU: 13.6 minutes wall, ~2.2k env steps/s;
  every seed ends at solve rate 0.99-1.00 on both levels (m/h0_unicycle
  passes 0.9 after 51k-72k steps per seed, m/h4_thrust_the_needle after
  10k-51k). The per-checkpoint solve rates are printed as the run goes and
  are in seed_<i>/<update>/stats/<level>.json.
* `quickstart`: the quickstart's expert settings: m/h0_unicycle, 2 seeds,
  a 64-unit agent, 50 updates of 64 envs x 32 steps (102k steps per seed).
  Measured: 1.5 minutes wall with a warm compilation cache (~2.2 cold),
  ~2.9k env steps/s; both seeds pass 0.9 at update 30 and end at 1.00.

Why these levels: most small `s/` levels are solved by open-loop experts
(their solve rate does not change when the expert acts on observations
d = 1..8 steps old, e.g. s/h0_weak_thrust stays at 1.00 with identical
episode lengths of 24 steps), so inference delay cannot matter there. An
expert acting on observations d steps old on m/h0_unicycle solves 1.00,
0.96, 0.29, 0.00 at d = 0, 1, 2, 4 (episodes ~36 steps, ~4.5 chunks of 8);
on m/h4_thrust_the_needle 1.00, 1.00, 0.99, 0.77, 0.03 at d = 0, 1, 2, 4, 8
(episodes 24 steps); s/h8_unicycle_balance is the most delay-sensitive
small level (1.00, 1.00, 0.95, 0.32 at d = 0, 2, 4, 8; 26 steps).
"""

from ml_collections import config_dict

from configs import common

PRESETS = ('paper', 'cpu', 'quickstart')


def get_config(preset: str = 'paper'):
  preset = preset or 'paper'
  if preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r}; use one of {PRESETS}.')
  c = config_dict.ConfigDict()
  # Comma-separated level ids or a named set (paper, paper_packaged); levels
  # of different sizes (s/ with m/) are padded to the largest entity counts.
  c.levels = 'paper'
  c.worlds_dir = ''  # '' = the levels kinetix-env ships.
  c.logdir = 'logs-expert'
  c.run_name = ''  # '' = the date and time; an existing run's name resumes it.
  c.seed = 0
  c.num_seeds = 8  # Independent experts per level.
  # Levels trained at once (0 = all); groups run one after another. A
  # rollout of the paper's sizes holds 256 x 256 expert observations of
  # 4 x 679 + 6 floats, ~0.7 GB per (seed, level): 4 levels x 8 seeds is
  # ~23 GB of accelerator memory, all 12 would be ~70 GB.
  c.parallel_levels = 4
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
  # Learning reward: 'kinetix' (kinetix 3's delta-distance shaping, which
  # learned faster here), 'distance' (the earlier implementation's distance
  # penalty) or 'none'; see rtc/expert/ppo.py.
  c.shaping = 'kinetix'
  # Agent: observation = last `obs_history` plain observations + the
  # previous action; 2 hidden layers of `hidden_dim` per MLP.
  c.obs_history = 4
  c.hidden_dim = 256
  # Statistics, TensorBoard and checkpoints every this many updates.
  c.save_every = 20
  # One job of several processes (configs/common.py); nothing set: one.
  c.distributed = common.distributed()
  if preset == 'cpu':
    # Two medium levels where acting late hurts (an expert acting on
    # observations d steps old: m/h0_unicycle solved 1.00/0.96/0.29/0.00 at
    # d = 0/1/2/4, m/h4_thrust_the_needle 1.00/1.00/0.99/0.77), 4 seeds,
    # the paper's agent; shorter rollouts (more updates per step) learn in
    # fewer steps. ~2.2k env steps/s here: about 14 minutes.
    c.levels = 'm/h0_unicycle,m/h4_thrust_the_needle'
    c.num_seeds = 4
    c.num_envs = 64
    c.num_steps = 32
    c.num_updates = 100
    c.save_every = 5
  elif preset == 'quickstart':
    # One delay-sensitive level, 2 seeds, a smaller agent: ~2 minutes here
    # including compilation; both seeds pass solve rate 0.9 after ~30
    # updates (61k steps each).
    c.levels = 'm/h0_unicycle'
    c.num_seeds = 2
    c.num_envs = 64
    c.num_steps = 32
    c.num_updates = 50
    c.save_every = 5
    c.hidden_dim = 64
  return c
