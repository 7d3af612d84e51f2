"""Pieces shared by the policy configs (imported by configs/*.py).

Model options and their defaults live in one place, the family's config
class; `options_of` turns one into `--config.model.*` options.
"""

import dataclasses
import typing

from ml_collections import config_dict

from rtc.common.core import backbone


def options_of(config_class, **overrides) -> config_dict.ConfigDict:
  """The fields of a model config dataclass, at their defaults, with
  `overrides`. A None default becomes a placeholder of the field's type, so
  that --config.model.<name>=<value> can set it."""
  c = config_dict.ConfigDict()
  defaults = config_class()
  hints = typing.get_type_hints(config_class)
  for field in dataclasses.fields(config_class):
    value = getattr(defaults, field.name)
    if value is None:
      kind = [t for t in typing.get_args(hints[field.name])
              if t is not type(None)][0]
      value = config_dict.placeholder(kind)
    setattr(c, field.name, value)
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


def model(**overrides) -> config_dict.ConfigDict:
  """The shared backbone's options, rtc.common.core.backbone.MixerConfig (DESIGN
  §3 defaults): channel_dim, channel_hidden_dim, token_hidden_dim,
  num_layers, action_chunk_size (H) and simulated_delay (training-time RTC:
  None disables; D draws delays d in {0..D-1})."""
  return options_of(backbone.MixerConfig, **overrides)


def distributed() -> config_dict.ConfigDict:
  """One job of several processes (rtc.common.bc.distributed;
  docs/scaling.md). Nothing set: one process. They change no result."""
  c = config_dict.ConfigDict()
  # True: jax.distributed.initialize() reads the cluster (SLURM, Open MPI).
  c.auto = False
  # Or explicitly: host:port of process 0, the process count, this process.
  c.coordinator_address = ''
  c.num_processes = config_dict.placeholder(int)
  c.process_id = config_dict.placeholder(int)
  # Seconds the processes wait for each other at start, and after which a
  # process that sends no heartbeat counts as dead.
  c.initialization_timeout_s = 300
  c.heartbeat_timeout_s = 100
  # Seconds a process waits for the others before a collective (they may
  # still be compiling).
  c.wait_timeout_s = 3600
  return c


def bc_train(logdir: str, model_config) -> config_dict.ConfigDict:
  """Behaviour cloning (DESIGN §8 hyper-parameters)."""
  c = config_dict.ConfigDict()
  # Expert run holding data/<level_name>.npz. Required.
  c.run_path = ''
  # Comma-separated level ids ('' = every dataset in run_path/data).
  c.levels = ''
  # Level directory ('' = the expert run's own, from its config.json, else
  # the levels kinetix-env ships).
  c.worlds_dir = ''
  c.logdir = logdir
  # '' = the date and time; an existing run's name resumes it.
  c.run_name = ''
  # An epoch directory of an earlier run to start from (fine-tuning).
  c.load_dir = ''
  c.seed = 0
  c.batch_size = 512
  c.num_epochs = 32
  c.learning_rate = 3e-4
  c.warmup_steps = 1000
  c.weight_decay = 1e-2
  c.grad_norm_clip = 10.0
  c.log_every = 100
  c.model = model_config
  # Per-epoch evaluation: comma-separated execution horizons ('' = off).
  c.eval = config_dict.ConfigDict()
  c.eval.execute_horizons = ''
  c.eval.num_evals = 128
  # Sampling steps per chunk (`num_steps` in the code), for flow and DD alike.
  c.eval.num_flow_steps = 5
  c.distributed = distributed()
  return c


def sweep(num_evals: int, max_guidance_weight: float,
          model_config) -> config_dict.ConfigDict:
  """The evaluation sweep (DESIGN §9)."""
  c = config_dict.ConfigDict()
  c.step = -1  # Epoch to evaluate; -1 = the latest.
  c.weak_step = config_dict.placeholder(int)  # Weak policy's epoch for BID.
  c.num_evals = num_evals
  # Sampling steps per chunk (`num_steps` in the code), for flow and DD alike.
  c.num_flow_steps = 5
  c.seed = 0
  c.delays = '0,1,2,3,4'
  # '' = every s in [max(1, d), H - d]; 'min' = s = max(1, d) only; or a
  # comma-separated subset.
  c.execute_horizons = ''
  c.methods = 'naive,realtime,bid,hard_masking'
  c.levels = ''  # '' = every level of the run.
  c.worlds_dir = ''  # '' = the run's own.
  c.realtime = config_dict.ConfigDict()
  c.realtime.schedule = 'exp'
  c.realtime.max_guidance_weight = max_guidance_weight
  c.bid = config_dict.ConfigDict()
  c.bid.n_samples = 16
  c.bid.bid_k = config_dict.placeholder(int)
  # True: score episode ends as the older Kinetix engine of the published
  # code did (max reward over the ending step's substeps, solved read from
  # the last substep, a NaN state does not end the episode;
  # docs/kinetix_engine.md). False: kinetix-env 3.0.2's scoring.
  c.legacy_episode_end = False
  # Cost-adjusted sweep (docs/cost_adjusted.md): `delays` are d0, flow
  # naive's delay; each method runs at d = round(d0 * its latency / flow
  # naive's latency), capped at H/2, with s = max(1, d).
  c.cost_adjusted = False
  # Latency CSV of the modelled hardware (`bazel run //rtc/bench:latency`,
  # e.g. docs/latency_cpu.csv); '' = measure on this device.
  c.latency_csv = ''
  # Without latency_csv: time this policy and a flow reference here first
  # (False and no latency_csv with cost_adjusted is an error).
  c.measure_latency = True
  # This policy's name in the latency CSV ('' = from the run directory:
  # logs-<name>/<run> -> <name>, else the directory's name).
  c.latency_policy = ''
  # The batch size whose latencies are used (1 = one robot).
  c.latency_batch = 1
  # Model options, used only for directories without config.json (written
  # by the earlier implementation).
  c.model = model_config
  c.distributed = distributed()
  return c
