"""Behaviour cloning for every policy kind: one loop, parameterised by policy.

`train_and_evaluate(config, make_policy, kind)` trains one independent policy
per level, all levels at once (vmapped over a level axis that is sharded over
local devices, rtc.common.bc.sharding), on the expert data in
`<config.run_path>/data/` (DESIGN §8):

* AdamW (learning rate with linear warm-up, weight decay), global-norm
  clipping, shuffled epochs (rtc.common.env.data).
* TensorBoard scalars under `<logdir>/<run_name>/tb`: loss, gradient norm,
  learning rate, epoch time, the policy's own metrics (e.g. bin accuracy), and,
  when `config.eval.execute_horizons` is set, the solve rate of each level at
  each of those horizons after every epoch (naive sampling, no delay).
* A checkpoint per epoch: `<logdir>/<run_name>/<epoch>/policies/<level>.pkl`
  plus `train_state.pkl` (optimiser state, step, random state), written after
  the policies, so a run interrupted at any point resumes from its last
  complete epoch when started again with the same `--config.run_name`.
* `config.load_dir` starts from the policies of an earlier epoch directory
  (fine-tuning).
* A non-finite loss stops the run with an error naming the level and step;
  the last checkpoint written stays as it was.

Steps: `_load`, `_init_or_resume`, then per epoch `_Loop.epoch`, `.save`,
`.evaluate` (tests: rtc/common/bc/train_test.py).

In a job of several processes (`--config.distributed.*`,
rtc.common.bc.distributed) the level axis spans every process's devices: each
process loads the data (and, resuming, the policies) of its own levels only
and writes its own levels' checkpoints; after a barrier, process 0 writes
`train_state.pkl` (gathered), `config.json` and TensorBoard scalars, and
prints the progress lines.
"""

import dataclasses
import os
import pickle
import time
from typing import Any, Callable

import jax
import numpy as np
import optax

from rtc.common.base import options
from rtc.common.base import paths
from rtc.common.base import progress
from rtc.common.bc import checkpoints
from rtc.common.bc import distributed
from rtc.common.bc import sharding
from rtc.common.bc import summary
from rtc.common.env import data as data_lib

# envs, rollout, runs and sweep import Kinetix, which starts JAX's backend:
# they are imported inside the functions, after distributed.initialize.

TRAIN_STATE = 'train_state.pkl'
_NEW_RUN = 'start a new --config.run_name'


def make_schedule(config) -> optax.Schedule:
  """The learning rate at each step: linear warm-up, then constant."""
  warmup = max(int(config.warmup_steps), 1)
  return optax.join_schedules(
      [optax.linear_schedule(0.0, config.learning_rate, warmup),
       optax.constant_schedule(config.learning_rate)], [warmup])


def make_optimizer(config) -> optax.GradientTransformation:
  return optax.chain(
      optax.clip_by_global_norm(config.grad_norm_clip),
      optax.adamw(make_schedule(config), weight_decay=config.weight_decay))


def make_train_step(policy, optimizer):
  """(params, opt_state, key_data, obs, actions) -> new state and metrics."""

  def step(params, opt_state, key_data, obs, actions):
    key = jax.random.wrap_key_data(key_data)
    (loss, metrics), grads = jax.value_and_grad(
        policy.loss_and_metrics, has_aux=True)(params, key, obs, actions)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = dict(metrics)
    metrics['loss'] = loss
    metrics['grad_norm'] = optax.global_norm(grads)
    return params, opt_state, metrics

  return step


def _latest_complete_epoch(run_dir: str):
  if not os.path.isdir(run_dir):
    return None
  done = [e for e in checkpoints.epoch_dirs(run_dir)
          if os.path.exists(os.path.join(run_dir, str(e), TRAIN_STATE))]
  return max(done) if done else None


def train_and_evaluate(config, make_policy: Callable, kind: str,
                       log: Callable[[str], None] = print) -> str:
  """Trains `kind` policies per config; returns the run directory."""
  distributed.initialize(config.get('distributed'))
  with distributed.guard():
    return _train(config, make_policy, kind, distributed.main_only(log))


def _train(config, make_policy: Callable, kind: str,
           log: Callable[[str], None]) -> str:
  """The loop's steps: load, init or resume, then epoch, save, evaluate."""
  # pylint: disable=g-import-not-at-top
  from rtc.common.bc import runs
  # pylint: enable=g-import-not-at-top
  inputs = _load(config)
  policy = make_policy(config.model, inputs.obs_dim, inputs.action_dim)
  run_name = config.run_name or distributed.shared_value(
      runs.default_run_name)  # Process 0's clock: one name for the job.
  run_dir = os.path.join(paths.resolve(config.logdir), run_name)
  loop = _Loop(config, policy, inputs, run_dir, kind, log)
  state = _init_or_resume(config, policy, inputs, loop, log)
  if distributed.is_main():
    runs.write_run_config(run_dir, {
      'kind': kind, 'levels': list(inputs.level_ids),
      'worlds_dir': inputs.worlds_dir, 'level_names': list(inputs.names),
      'obs_dim': inputs.obs_dim, 'action_dim': inputs.action_dim,
      'data_run_path': inputs.run_path, 'model': config.model.to_dict(),
      'train': config.to_dict()})
  loop.start(state)
  for epoch in range(state.start_epoch, loop.num_epochs):
    scalars = loop.epoch(state, epoch)
    loop.save(state, epoch)
    scalars.update(loop.evaluate(state, epoch))
    loop.writer.write(state.step, scalars)
    log(f'[{kind} train] epoch {epoch} done in '
        f'{scalars["train/epoch_time"]:.1f}s; saved '
        f'{os.path.join(run_dir, str(epoch))}')
  loop.writer.close()
  return run_dir


# -- load ----------------------------------------------------------------------


@dataclasses.dataclass
class _Inputs:
  """The levels and their data, read before any training."""
  run_path: str
  worlds_dir: str
  level_ids: tuple[str, ...]
  levels: Any  # rtc.common.env.envs.Levels
  shard: sharding.LevelSharding
  datasets: list  # LevelDataset (this process's levels) or LevelInfo.
  obs_dim: int
  action_dim: int

  @property
  def names(self):
    return self.levels.names


def _load(config) -> _Inputs:
  """Checks the options, loads the levels and this process's datasets."""
  # pylint: disable=g-import-not-at-top
  from rtc.common.env import envs
  from rtc.common.bc import runs
  from rtc.common.bc import sweep
  # pylint: enable=g-import-not-at-top
  if not config.run_path:
    raise ValueError(
        '--config.run_path is required: the expert run directory that holds '
        'data/<level_name>.npz (e.g. logs-expert/<run>).')
  run_path = paths.resolve(config.run_path)
  paths.check_not_file(run_path, '--config.run_path', 'logs-expert/<run>')
  if not os.path.isdir(run_path):
    raise FileNotFoundError(
        f'Run directory {run_path} does not exist: check --config.run_path.')
  if config.eval.execute_horizons:  # Checked before any training.
    sweep.check_counts(int(config.eval.num_evals),
                       int(config.eval.num_flow_steps), 'eval.')
  # '' = the expert run's own worlds directory (its config.json), as data
  # generation and evaluation read it, else kinetix-env's levels.
  worlds_dir = paths.resolve(config.worlds_dir) or (
      (runs.read_run_config(run_path) or {}).get('worlds_dir') or None)
  level_ids = (envs.parse_levels(config.levels) if config.levels else
               runs.data_level_ids(run_path, worlds_dir))
  levels = envs.load_levels(level_ids, worlds_dir)
  chunk_size = int(config.model.action_chunk_size)
  shard = sharding.LevelSharding(len(levels))
  datasets = [data_lib.load_level_dataset(data_lib.data_path(run_path, n),
                                          chunk_size)
              if i in shard.local_levels else
              data_lib.peek_level(data_lib.data_path(run_path, n))
              for i, n in enumerate(levels.names)]
  distributed.barrier('rtc train: data loaded')
  env = envs.BatchedEnv.for_levels(levels, 1)
  obs_dim = env.plain_obs_dim(levels.level(0))
  for ds in datasets:
    if ds.obs_dim != obs_dim or ds.action_dim != env.action_dim:
      raise ValueError(
          f'Dataset {ds.path} has O={ds.obs_dim}, A={ds.action_dim}, but its '
          f'level gives O={obs_dim}, A={env.action_dim}: the data was made '
          'for other levels; check --config.levels / --config.worlds_dir.')
  return _Inputs(run_path, worlds_dir, level_ids, levels, shard, datasets,
                 obs_dim, env.action_dim)


# -- init or resume ------------------------------------------------------------


@dataclasses.dataclass
class _State:
  """What an epoch changes: padded, sharded parameters and optimiser state
  [P, ...], the step count, and the first epoch still to run."""
  params: Any
  opt_state: Any
  step: int
  start_epoch: int


def _init_or_resume(config, policy, inputs: _Inputs, loop: '_Loop',
                    log) -> _State:
  """Parameters: resume > config.load_dir > fresh initialisation."""
  # pylint: disable=g-import-not-at-top
  from rtc.common.bc import runs
  # pylint: enable=g-import-not-at-top
  shard, shapes = inputs.shard, policy.param_shapes()
  local_names = [inputs.names[i] for i in shard.local_slot_levels]
  resume_epoch = _latest_complete_epoch(loop.run_dir)
  saved = None
  if resume_epoch is not None:
    params = runs.load_level_params(loop.run_dir, resume_epoch, local_names,
                                    shapes)
    state_path = os.path.join(loop.run_dir, str(resume_epoch), TRAIN_STATE)
    saved = _read_train_state(state_path)
    log(f'[{loop.kind} train] resuming {loop.run_dir} after epoch '
        f'{resume_epoch} (step {int(saved["step"])})')
  elif config.load_dir:
    load_dir = paths.resolve(config.load_dir)
    params = jax.tree.map(
        lambda *x: np.stack(x),
        *[checkpoints.load_checked(
            os.path.join(load_dir, 'policies', f'{n}.pkl'), shapes)
          for n in local_names])
    log(f'[{loop.kind} train] starting from {load_dir}')
  else:
    keys = jax.random.split(jax.random.key(int(config.seed)),
                            len(inputs.levels))
    params = jax.tree.map(
        lambda x: np.asarray(x)[np.asarray(shard.local_slot_levels)],
        jax.jit(jax.vmap(policy.init))(keys))
  params_p = shard.put_local(params)
  opt_state_p = jax.jit(jax.vmap(loop.optimizer.init))(params_p)
  if saved is None:
    return _State(params_p, opt_state_p, 0, 0)
  leaves, tree = jax.tree.flatten(opt_state_p)
  like = [jax.ShapeDtypeStruct((shard.num_levels,) + l.shape[1:], l.dtype)
          for l in leaves]
  # Older runs saved the padded leaves [P, ...]; their pads copy the last
  # level, so the first L rows are the levels'.
  fitted = checkpoints.check_leaves(
      saved['opt_state'], like, state_path, 'this optimiser', _NEW_RUN,
      fit=lambda x, want: x[:shard.num_levels])
  loop.batcher.restore(saved['numpy_rng'])
  return _State(params_p, jax.tree.unflatten(tree, [shard.pad(x)
                                                     for x in fitted]),
                int(saved['step']), resume_epoch + 1)


def _read_train_state(path: str) -> dict:
  """A train_state.pkl: {'step', 'epoch', 'opt_state': [leaves [L, ...]],
  'numpy_rng': the batcher's state()}."""
  (saved,) = checkpoints.read_pickles(path, 1, _NEW_RUN)
  keys = ('step', 'opt_state', 'numpy_rng')
  if not isinstance(saved, dict) or not set(keys) <= set(saved):
    raise ValueError(f'{path} is not a training state (it needs '
                     f'{", ".join(keys)}); {_NEW_RUN}.')
  return saved


# -- epoch, save, evaluate -----------------------------------------------------


class _Loop:
  """The fixed parts of a run and its per-epoch steps."""

  def __init__(self, config, policy, inputs: _Inputs, run_dir: str,
               kind: str, log):
    self.config, self.inputs, self.run_dir = config, inputs, run_dir
    self.kind, self.log, self.shard = kind, log, inputs.shard
    self.names = inputs.names
    self.optimizer = make_optimizer(config)
    self.schedule = make_schedule(config)
    self.batcher = data_lib.MultiLevelBatcher(
        inputs.datasets, int(config.batch_size), int(config.seed),
        self.shard.local_slot_levels)
    self.num_epochs = int(config.num_epochs)
    self.train_step = self.shard.map(
        make_train_step(policy, self.optimizer), in_axes=(0, 0, 0, 0, 0),
        donate_argnums=(0, 1))
    self.step_key = jax.random.key(int(config.seed) + 1)
    self.horizons = options.int_list(config.eval.execute_horizons,
                                     'eval.execute_horizons')
    self.evaluator = None
    if self.horizons:
      # pylint: disable=g-import-not-at-top
      from rtc.common.bc import sweep
      # pylint: enable=g-import-not-at-top
      self.evaluator = sweep.EpochEvaluator(
          policy, inputs.levels, self.shard, self.horizons,
          int(config.eval.num_evals), int(config.eval.num_flow_steps),
          int(config.seed))
    self.writer = None
    self.progress = None

  def start(self, state: _State) -> None:
    """Opens the TensorBoard writer and the progress line."""
    steps = self.batcher.steps_per_epoch
    self.writer = (summary.SummaryWriter(os.path.join(self.run_dir, 'tb'))
                   if distributed.is_main() else summary.NullWriter())
    self.progress = progress.Progress(self.num_epochs * steps, 'steps',
                                 f'{self.kind} train', initial=state.step)
    self.log(f'[{self.kind} train] {len(self.names)} level(s): '
             f'{", ".join(self.names)}; {steps} steps/epoch x '
             f'{self.num_epochs} epochs, batch {self.config.batch_size}; '
             f'run dir {self.run_dir}')

  def epoch(self, state: _State, epoch: int) -> dict:
    """One shuffled pass; logs every config.log_every steps; returns the
    epoch's scalars."""
    t_epoch = time.time()
    log_every = max(int(self.config.log_every), 1)
    sums, count = {}, 0
    last = self.batcher.steps_per_epoch - 1
    for i, (obs, act) in enumerate(
        data_lib.prefetch(self.batcher, self.batcher.epoch_indices())):
      keys = jax.random.split(jax.random.fold_in(self.step_key, state.step),
                              len(self.names))
      state.params, state.opt_state, metrics = self.train_step(
          state.params, state.opt_state,
          self.shard.pad(np.asarray(jax.random.key_data(keys))),
          self.shard.put_local(obs), self.shard.put_local(act))
      state.step += 1
      metrics = self.shard.unpad(metrics)
      self._check_finite(metrics['loss'], epoch, state.step)
      for k, v in metrics.items():
        sums[k] = sums.get(k, 0.0) + np.asarray(v, np.float64)
      count += 1
      if state.step % log_every == 0 or i == last:
        self._write_means(sums, count, state.step, epoch)
        sums, count = {}, 0
    return {'train/epoch_time': time.time() - t_epoch, 'train/epoch': epoch}

  def _check_finite(self, losses, epoch: int, step: int) -> None:
    bad = [n for n, l in zip(self.names, losses) if not np.isfinite(l)]
    if bad:
      last = _latest_complete_epoch(self.run_dir)
      raise FloatingPointError(
          f'Non-finite loss at epoch {epoch}, step {step} for level(s) '
          f'{", ".join(bad)}; stopped without saving. Last good checkpoint: '
          f'{os.path.join(self.run_dir, str(last)) if last is not None else "none"}'
          '. Lower --config.learning_rate or check the data.')

  def _write_means(self, sums: dict, count: int, step: int, epoch: int):
    means = {k: v / count for k, v in sums.items()}
    scalars = {f'train/{k}': float(np.mean(v)) for k, v in means.items()}
    for k, v in means.items():
      for i, name in enumerate(self.names):
        scalars[f'train/{name}/{k}'] = float(v[i])
    scalars['train/learning_rate'] = float(self.schedule(step))
    self.writer.write(step, scalars)
    self.log(self.progress.line(
        step, f'epoch {epoch + 1}/{self.num_epochs} loss '
        f'{scalars["train/loss"]:.4f} grad_norm '
        f'{scalars["train/grad_norm"]:.3f}'))

  def save(self, state: _State, epoch: int) -> None:
    """Each process its levels' policies; then process 0 the train state."""
    for level, p in self.shard.local_values(state.params).items():
      checkpoints.save_params(
          checkpoints.policy_path(self.run_dir, epoch, self.names[level]), p)
    # Optimiser state without the padding (so a resume may use another
    # device count); written last, by process 0, once every level is saved.
    saved = {'step': state.step, 'epoch': epoch,
             'opt_state': list(self.shard.unpad(
                 jax.tree.leaves(state.opt_state))),
             'numpy_rng': self.batcher.state()}
    distributed.barrier(f'rtc train: epoch {epoch} policies saved')
    if distributed.is_main():
      checkpoints.atomic_write_bytes(
          os.path.join(self.run_dir, str(epoch), TRAIN_STATE),
          pickle.dumps(saved, protocol=4))

  def evaluate(self, state: _State, epoch: int) -> dict:
    """The solve rates at config.eval.execute_horizons ({} when unset)."""
    if self.evaluator is None:
      return {}
    t_eval = time.time()
    out = self.evaluator(state.params)
    out['eval/time'] = time.time() - t_eval
    self.log(f'[{self.kind} train] epoch {epoch} eval: ' + ', '.join(
        f's={s}: solved {out[f"eval/mean/solved_s{s}"]:.3f}'
        for s in self.horizons))
    return out
