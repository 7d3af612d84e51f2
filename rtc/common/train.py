"""Behaviour cloning for every policy kind: one loop, parameterised by policy.

`train_and_evaluate(config, make_policy, kind)` trains one independent policy
per level, all levels at once (vmapped over a level axis that is sharded over
local devices, rtc.common.sharding), on the expert data in
`<config.run_path>/data/` (DESIGN §8):

* AdamW (learning rate with linear warm-up, weight decay), global-norm
  clipping, shuffled epochs (rtc.common.data).
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

In a job of several processes (`--config.distributed.*`,
rtc.common.distributed) the level axis spans every process's devices: each
process loads the data (and, resuming, the policies) of its own levels only
and writes its own levels' checkpoints; after a barrier, process 0 writes
`train_state.pkl` (gathered), `config.json` and TensorBoard scalars, and
prints the progress lines.
"""

import os
import pickle
import queue
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rtc.common import checkpoints
from rtc.common import cli
from rtc.common import data as data_lib
from rtc.common import distributed
from rtc.common import options
from rtc.common import paths
from rtc.common import sharding
from rtc.common import summary

# envs, rollout, runs and sweep import Kinetix, which starts JAX's backend:
# they are imported inside the functions, after distributed.initialize.

TRAIN_STATE = 'train_state.pkl'


def make_optimizer(config) -> optax.GradientTransformation:
  warmup = max(int(config.warmup_steps), 1)
  schedule = optax.linear_schedule(0.0, config.learning_rate, warmup)
  schedule = optax.join_schedules(
      [schedule, optax.constant_schedule(config.learning_rate)], [warmup])
  return optax.chain(
      optax.clip_by_global_norm(config.grad_norm_clip),
      optax.adamw(schedule, weight_decay=config.weight_decay))


def learning_rate(config, step: int) -> float:
  warmup = max(int(config.warmup_steps), 1)
  return float(config.learning_rate) * min(1.0, step / warmup)


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


def _prefetch(batcher, indices, depth=3):
  """Yields batcher.batch(i) for i in indices, prepared in a thread."""
  q = queue.Queue(maxsize=depth)
  stop = threading.Event()

  def work():
    try:
      for idx in indices:
        if stop.is_set():
          return
        q.put(batcher.batch(idx))
      q.put(None)
    except BaseException as e:  # pylint: disable=broad-except
      q.put(e)

  t = threading.Thread(target=work, daemon=True)
  t.start()
  try:
    while True:
      item = q.get()
      if item is None:
        return
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    stop.set()


class EpochEvaluator:
  """Solve rate of every level at a few execution horizons (naive, d = 0)."""

  def __init__(self, policy, levels, shard, horizons, num_evals: int,
               num_steps: int, seed: int):
    # pylint: disable=g-import-not-at-top
    from rtc.common import envs
    from rtc.common import rollout
    # pylint: enable=g-import-not-at-top
    self.horizons = horizons
    self.names = levels.names
    self.shard = shard
    env = envs.BatchedEnv.for_levels(levels, num_evals)
    method = rollout.Method('naive')

    def one_level(params, key_data, level, execute_horizon):
      key = jax.random.wrap_key_data(key_data)
      return rollout.rollout(policy, env, method, num_steps, params, None,
                             key, level, 0, execute_horizon)

    self._fn = shard.map(one_level, in_axes=(0, 0, 0, None))
    keys = jax.random.split(jax.random.key(seed), len(levels))
    self._keys = shard.pad(np.asarray(jax.random.key_data(keys)))
    self._states = shard.pad(levels.states)

  def __call__(self, params_padded) -> dict:
    out = {}
    for s in self.horizons:
      m = self.shard.unpad(self._fn(params_padded, self._keys, self._states,
                                    s))
      for i, name in enumerate(self.names):
        out[f'eval/{name}/solved_s{s}'] = float(
            m['returned_episode_solved'][i])
        out[f'eval/{name}/return_s{s}'] = float(
            m['returned_episode_returns'][i])
      out[f'eval/mean/solved_s{s}'] = float(
          np.mean(m['returned_episode_solved']))
    return out


def _latest_complete_epoch(run_dir: str):
  if not os.path.isdir(run_dir):
    return None
  done = [e for e in checkpoints.epoch_dirs(run_dir)
          if os.path.exists(os.path.join(run_dir, str(e), TRAIN_STATE))]
  return max(done) if done else None


def _resolve_levels(config, run_path: str) -> tuple[str, ...]:
  # pylint: disable=g-import-not-at-top
  from rtc.common import envs
  from rtc.common import runs
  # pylint: enable=g-import-not-at-top
  if config.levels:
    return envs.parse_levels(config.levels)
  names = runs.data_level_names(run_path)
  return runs.level_ids_for_names(names, paths.resolve(config.worlds_dir))


class _NoWriter:

  def write(self, step, scalars):
    del step, scalars

  def close(self):
    pass


def _slot_params(params, slot_levels):
  """Rows of `params` [L, ...] for the given levels: [S, ...] (numpy)."""
  return jax.tree.map(lambda x: np.asarray(x)[np.asarray(slot_levels)],
                      params)


def _fit_opt_leaf(x, like, shard, path):
  """A saved optimiser leaf [L, ...] -> global, padded and sharded.

  Older runs saved the padded leaf [P, ...]; its pads copy the last level."""
  x = np.asarray(x)[:shard.num_levels]
  if x.shape[:1] != (shard.num_levels,) or x.shape[1:] != like.shape[1:]:
    raise ValueError(f'{path} does not fit this optimiser ({x.shape} vs '
                     f'{like.shape}); start a new --config.run_name.')
  return shard.pad(x)


def train_and_evaluate(config, make_policy: Callable, kind: str,
                       log: Callable[[str], None] = print) -> str:
  """Trains `kind` policies per config; returns the run directory."""
  distributed.initialize(config.get('distributed'))
  with distributed.guard():
    return _train(config, make_policy, kind, distributed.main_only(log))


def _train(config, make_policy: Callable, kind: str,
           log: Callable[[str], None]) -> str:
  # pylint: disable=g-import-not-at-top
  from rtc.common import envs
  from rtc.common import runs
  from rtc.common import sweep
  # pylint: enable=g-import-not-at-top
  if not config.run_path:
    raise ValueError(
        '--config.run_path is required: the expert run directory that holds '
        'data/<level_name>.npz (e.g. logs-expert/<run>).')
  run_path = paths.resolve(config.run_path)
  if not os.path.isdir(run_path):
    raise FileNotFoundError(
        f'Run directory {run_path} does not exist: check --config.run_path.')
  if config.eval.execute_horizons:  # Checked before any training.
    sweep.check_counts(int(config.eval.num_evals),
                       int(config.eval.num_flow_steps), 'eval.')
  worlds_dir = paths.resolve(config.worlds_dir)
  level_ids = _resolve_levels(config, run_path)
  levels = envs.load_levels(level_ids, worlds_dir)
  names = levels.names
  horizon = int(config.model.action_chunk_size)
  shard = sharding.LevelSharding(len(levels))
  datasets = [data_lib.load_level_dataset(data_lib.data_path(run_path, n),
                                          horizon)
              if i in shard.local_levels else
              data_lib.peek_level(data_lib.data_path(run_path, n))
              for i, n in enumerate(names)]
  distributed.barrier('rtc train: data loaded')
  env = envs.BatchedEnv.for_levels(levels, 1)
  obs_dim = env.plain_obs_dim(levels.level(0))
  for ds in datasets:
    if ds.obs_dim != obs_dim or ds.action_dim != env.action_dim:
      raise ValueError(
          f'Dataset {ds.path} has O={ds.obs_dim}, A={ds.action_dim}, but its '
          f'level gives O={obs_dim}, A={env.action_dim}: the data was made '
          'for other levels; check --config.levels / --config.worlds_dir.')
  policy = make_policy(config.model, obs_dim, env.action_dim)

  run_name = config.run_name or distributed.shared_value(
      runs.default_run_name)  # Process 0's clock: one name for the job.
  run_dir = os.path.join(paths.resolve(config.logdir), run_name)
  optimizer = make_optimizer(config)
  batcher = data_lib.MultiLevelBatcher(datasets, int(config.batch_size),
                                       int(config.seed),
                                       shard.local_slot_levels)
  steps_per_epoch = batcher.steps_per_epoch
  num_epochs = int(config.num_epochs)

  # Parameters: resume > load_dir > fresh initialisation.
  shapes = policy.param_shapes()
  resume_epoch = _latest_complete_epoch(run_dir)
  slots = shard.local_slot_levels
  local_names = [names[i] for i in slots]
  if resume_epoch is not None:
    params = runs.load_level_params(run_dir, resume_epoch, local_names,
                                    shapes)
    with open(os.path.join(run_dir, str(resume_epoch), TRAIN_STATE),
              'rb') as f:
      saved = pickle.load(f)
    start_epoch, step = resume_epoch + 1, int(saved['step'])
    log(f'[{kind} train] resuming {run_dir} after epoch {resume_epoch} '
        f'(step {step})')
  else:
    start_epoch, step, saved = 0, 0, None
    if config.load_dir:
      load_dir = paths.resolve(config.load_dir)
      params = jax.tree.map(
          lambda *x: np.stack(x),
          *[checkpoints.load_checked(
              os.path.join(load_dir, 'policies', f'{n}.pkl'), shapes)
            for n in local_names])
      log(f'[{kind} train] starting from {load_dir}')
    else:
      keys = jax.random.split(jax.random.key(int(config.seed)), len(levels))
      params = _slot_params(jax.jit(jax.vmap(policy.init))(keys), slots)

  if distributed.is_main():
    runs.write_run_config(run_dir, {
      'kind': kind, 'levels': list(level_ids), 'worlds_dir': worlds_dir,
      'level_names': list(names), 'obs_dim': obs_dim,
      'action_dim': env.action_dim, 'data_run_path': run_path,
      'model': config.model.to_dict(), 'train': config.to_dict()})

  params_p = shard.put_local(params)
  opt_state_p = jax.jit(jax.vmap(optimizer.init))(params_p)
  if saved is not None:
    leaves, tree = jax.tree.flatten(opt_state_p)
    state_path = f'{run_dir}/{resume_epoch}/{TRAIN_STATE}'
    if len(saved['opt_state']) != len(leaves):
      raise ValueError(f'{state_path} does not fit this optimiser; start a '
                       'new --config.run_name.')
    opt_state_p = jax.tree.unflatten(
        tree, [_fit_opt_leaf(x, l, shard, state_path)
               for x, l in zip(saved['opt_state'], leaves)])
    batcher._rng.bit_generator.state = saved['numpy_rng']  # pylint: disable=protected-access
  train_step = shard.map(make_train_step(policy, optimizer),
                         in_axes=(0, 0, 0, 0, 0), donate_argnums=(0, 1))
  step_key = jax.random.key(int(config.seed) + 1)

  horizons = options.int_list(config.eval.execute_horizons,
                              'eval.execute_horizons')
  evaluator = None
  if horizons:
    evaluator = EpochEvaluator(policy, levels, shard, horizons,
                               int(config.eval.num_evals),
                               int(config.eval.num_flow_steps),
                               int(config.seed))

  writer = (summary.SummaryWriter(os.path.join(run_dir, 'tb'))
            if distributed.is_main() else _NoWriter())
  total_steps = num_epochs * steps_per_epoch
  progress = cli.Progress(total_steps, 'steps', f'{kind} train', initial=step)
  log(f'[{kind} train] {len(levels)} level(s): {", ".join(names)}; '
      f'{steps_per_epoch} steps/epoch x {num_epochs} epochs, batch '
      f'{config.batch_size}; run dir {run_dir}')
  log_every = max(int(config.log_every), 1)
  for epoch in range(start_epoch, num_epochs):
    t_epoch = time.time()
    sums, count = {}, 0
    for idx_step, (obs, act) in enumerate(
        _prefetch(batcher, batcher.epoch_indices())):
      keys = jax.random.split(jax.random.fold_in(step_key, step),
                              len(levels))
      params_p, opt_state_p, metrics = train_step(
          params_p, opt_state_p,
          shard.pad(np.asarray(jax.random.key_data(keys))),
          shard.put_local(obs), shard.put_local(act))
      step += 1
      metrics = shard.unpad(metrics)
      bad = [names[i] for i in range(len(levels))
             if not np.isfinite(metrics['loss'][i])]
      if bad:
        last = _latest_complete_epoch(run_dir)
        raise FloatingPointError(
            f'Non-finite loss at epoch {epoch}, step {step} for level(s) '
            f'{", ".join(bad)}; stopped without saving. Last good checkpoint: '
            f'{os.path.join(run_dir, str(last)) if last is not None else "none"}'
            '. Lower --config.learning_rate or check the data.')
      for k, v in metrics.items():
        sums[k] = sums.get(k, 0.0) + np.asarray(v, np.float64)
      count += 1
      if step % log_every == 0 or idx_step == steps_per_epoch - 1:
        means = {k: v / count for k, v in sums.items()}
        scalars = {f'train/{k}': float(np.mean(v)) for k, v in means.items()}
        for k, v in means.items():
          for i, name in enumerate(names):
            scalars[f'train/{name}/{k}'] = float(v[i])
        scalars['train/learning_rate'] = learning_rate(config, step)
        writer.write(step, scalars)
        log(progress.line(
            step, f'epoch {epoch + 1}/{num_epochs} loss '
            f'{scalars["train/loss"]:.4f} grad_norm '
            f'{scalars["train/grad_norm"]:.3f}'))
        sums, count = {}, 0

    epoch_time = time.time() - t_epoch
    scalars = {'train/epoch_time': epoch_time, 'train/epoch': epoch}
    for level, p in shard.local_values(params_p).items():
      checkpoints.save_params(
          checkpoints.policy_path(run_dir, epoch, names[level]), p)
    # Optimiser state without the padding (so a resume may use another
    # device count); written last, by process 0, once every level is saved.
    state = {'step': step, 'epoch': epoch,
             'opt_state': list(shard.unpad(jax.tree.leaves(opt_state_p))),
             'numpy_rng': batcher._rng.bit_generator.state}  # pylint: disable=protected-access
    distributed.barrier(f'rtc train: epoch {epoch} policies saved')
    if distributed.is_main():
      checkpoints.atomic_write_bytes(
          os.path.join(run_dir, str(epoch), TRAIN_STATE),
          pickle.dumps(state, protocol=4))
    if evaluator is not None:
      t_eval = time.time()
      ev = evaluator(params_p)
      scalars.update(ev)
      scalars['eval/time'] = time.time() - t_eval
      log(f'[{kind} train] epoch {epoch} eval: ' + ', '.join(
          f's={s}: solved {ev[f"eval/mean/solved_s{s}"]:.3f}'
          for s in horizons))
    writer.write(step, scalars)
    log(f'[{kind} train] epoch {epoch} done in {epoch_time:.1f}s; saved '
        f'{os.path.join(run_dir, str(epoch))}')
  writer.close()
  return run_dir
