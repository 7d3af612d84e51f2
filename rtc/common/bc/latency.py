"""Measuring what one chunk costs, per policy and method (rtc.common.bc.cost).

A chunk is timed as the rollout computes it (`rollout.next_chunk`, jitted,
with d and s traced), on random observations and a random previous chunk,
after one compiling call. The calls of every (policy, method) at one batch
size are interleaved, one of each per round, so load on a shared machine
falls on all alike; median and 90th percentile per (policy, method).

Used by `bazel run //rtc/bench:latency` (many policies) and by a
cost-adjusted evaluation without --config.latency_csv (its policy and a flow
reference of the same backbone, at batch 1).
"""

import dataclasses
import os
import platform
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rtc.common.base import paths
from rtc.common.bc import cost
from rtc.common.bc import distributed
from rtc.common.core import backbone
from rtc.common.core import registry
from rtc.common.env import rollout

MIN_REPEATS = 5  # Timed calls per (policy, method), at least.
EVAL_REPEATS = 50  # An evaluation's measurement (the bench: --repeats).


@dataclasses.dataclass(frozen=True, eq=False)
class Subject:
  """One policy to time: `name` in the CSV, its family `kind`, the policy
  and parameters (any: latency does not depend on their values); `only`
  limits the methods timed (a reference needs naive alone)."""
  name: str
  kind: str
  policy: object
  params: object
  only: tuple = ()

  @property
  def sampling(self) -> str:
    return cost.sampling_key(self.policy.config)


def device_name() -> str:
  """The current device, e.g. 'cpu: AMD EPYC 7B13 (2 cores)' or
  'gpu: NVIDIA H100 80GB HBM3'."""
  dev = jax.devices()[0]
  if dev.platform != 'cpu':
    return f'{dev.platform}: {dev.device_kind}'
  model = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          model = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  return f'cpu: {model} ({os.cpu_count()} cores)'


def methods_for(subject: Subject, methods: Sequence[rollout.Method]):
  """`methods` the subject supports (training_time needs simulated_delay)."""
  return [m for m in methods
          if (m.name != 'training_time' or
              subject.policy.config.simulated_delay is not None) and
          (not subject.only or m.name in subject.only)]


def _chunk_fn(policy, method, num_steps):
  def fn(params, key, obs, prev, delay, execute_horizon):
    return rollout.next_chunk(policy, method, params, params, key, obs,
                              num_steps, prev, delay, execute_horizon)
  return jax.jit(fn)


def _inputs(policy, batch, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  obs = jax.random.normal(k1, (batch, policy.obs_dim))
  prev = jnp.tanh(jax.random.normal(
      k2, (batch, policy.chunk_size, policy.action_dim)))
  return obs, prev


def measure(subjects: Sequence[Subject], methods: Sequence[rollout.Method],
            batch_sizes: Sequence[int], num_steps: int, delay: int,
            execute_horizon: int, repeats: int, reference: str,
            log: Callable[[str], None] = print) -> list[dict]:
  """Latency rows (rtc.common.bc.cost.CSV_COLUMNS, ratios filled) of every
  subject x its methods x batch size; `reference` names the flow subject
  whose naive sampling is the reference."""
  if repeats < MIN_REPEATS:
    raise ValueError(f'repeats must be >= {MIN_REPEATS}, got {repeats}.')
  device = device_name()
  rows = []
  for batch in batch_sizes:
    calls = {}
    for j, s in enumerate(subjects):
      rollout.check_delay_horizon(delay, execute_horizon,
                                  s.policy.chunk_size)
      obs, prev = _inputs(s.policy, batch)
      for m in methods_for(s, methods):
        fn = _chunk_fn(s.policy, m, num_steps)
        args = (s.params, jax.random.key(1), obs, prev, jnp.int32(delay),
                jnp.int32(execute_horizon))
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))  # Compiles.
        log(f'[latency] batch {batch}: compiled {s.name} '
            f'{s.sampling or "-"} {m.name} in '
            f'{time.perf_counter() - t0:.1f}s')
        calls[(j, m.name)] = (fn, args)
    times = {k: [] for k in calls}
    start = time.perf_counter()
    for i in range(repeats):
      for k, (fn, args) in calls.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times[k].append(time.perf_counter() - t0)
      if (i + 1) % 10 == 0 or i + 1 == repeats:
        log(f'[latency] batch {batch}: {i + 1}/{repeats} rounds of '
            f'{len(calls)} calls, {time.perf_counter() - start:.1f}s')
    for (j, method), t in times.items():
      s = subjects[j]
      rows.append({
          'device': device, 'batch': batch, 'policy': s.name,
          'kind': s.kind, 'method': method, 'sampling': s.sampling,
          'num_steps': num_steps, 'delay': delay,
          'execute_horizon': execute_horizon, 'timed_calls': len(t),
          'median_s': float(np.median(t)),
          'p90_s': float(np.percentile(t, 90)), 'reference': reference})
  return cost.with_ratios(rows)


def flow_reference(model: dict, obs_dim: int, action_dim: int) -> Subject:
  """A flow policy with `model`'s backbone options (no simulated delay),
  randomly initialised: the reference of another family's policy."""
  fields = {f.name for f in dataclasses.fields(backbone.MixerConfig)}
  options = {k: v for k, v in model.items()
             if k in fields and k != 'simulated_delay'}
  policy = registry.make_policy(cost.REFERENCE_KIND)(options, obs_dim,
                                                     action_dim)
  return Subject('flow_reference', cost.REFERENCE_KIND, policy,
                 jax.jit(policy.init)(jax.random.key(0)),
                 only=(cost.REFERENCE_METHOD,))


def for_evaluation(name: str, kind: str, policy, params, model: dict,
                   methods: Sequence[rollout.Method], num_steps: int,
                   repeats: int = EVAL_REPEATS, batch: int = 1,
                   log: Callable[[str], None] = print) -> list[dict]:
  """Latency rows of one evaluated policy (its `methods` and naive) and its
  flow reference (itself for a flow policy) at `batch`, d = s = 2."""
  methods = list(methods)
  if not any(m.name == cost.REFERENCE_METHOD for m in methods):
    methods.append(rollout.Method(cost.REFERENCE_METHOD))
  subjects = [Subject(name, kind, policy, params)]
  if kind != cost.REFERENCE_KIND:
    subjects.append(flow_reference(model, policy.obs_dim, policy.action_dim))
  delay = min(2, policy.chunk_size // 2)
  return measure(subjects, methods, [batch], num_steps, delay, max(1, delay),
                 repeats, subjects[-1].name, log)


class EvalCosts:
  """The latency ratios of one cost-adjusted evaluation.

  Made before anything is written: reads and checks `--config.latency_csv`
  (or, when resuming, the `latency.csv` an earlier measurement left in the
  output directory). `ratios()` then returns them, measuring first (and
  writing `<output_dir>/latency.csv`) when there is no file. The options
  were checked by rtc.common.bc.cost.check_options.
  """

  def __init__(self, config, output_dir: str, run_dir: str, kind: str,
               policy, model: dict, methods: Sequence[rollout.Method],
               num_steps: int):
    self.kind, self.policy, self.model = kind, policy, model
    self.methods, self.num_steps = list(methods), num_steps
    self.name = config.latency_policy or cost.policy_name(run_dir)
    self.batch = int(config.latency_batch)
    self.sampling = cost.sampling_key(policy.config)
    self.measured = os.path.join(output_dir, cost.MEASURED_FILE)
    self.path = paths.resolve(config.latency_csv) if config.latency_csv \
        else None
    self._ratios = None
    source = self.path or (self.measured if os.path.exists(self.measured)
                           else None)
    if source is not None:
      self._ratios = cost.ratios(cost.read_csv(source), source, self.name,
                                 self.sampling, [m.name for m in methods],
                                 self.batch)
    elif jax.process_count() > 1:
      raise ValueError('A job of several processes cannot measure latency '
                       '(each would time its own): set --config.latency_csv.')
    self.settings = {'latency_csv': self.path or '', 'policy': self.name,
                     'batch': self.batch, 'sampling': self.sampling}
    if self.path:
      self.settings['ratios'] = self._ratios

  def ratios(self, params, log: Callable[[str], None] = print) -> dict:
    """{method: ratio}; `params` of one level, for measuring."""
    if self._ratios is None:
      log(f'[latency] measuring {self.name} and the flow reference at batch '
          f'{self.batch} on {device_name()} (--config.latency_csv skips '
          'this)')
      rows = for_evaluation(self.name, self.kind, self.policy, params,
                            self.model, self.methods, self.num_steps,
                            batch=self.batch, log=log)
      self._ratios = cost.ratios(rows, 'the measurement', self.name,
                                 self.sampling, [m.name for m in self.methods],
                                 self.batch)
      if distributed.is_main():
        cost.write_csv(self.measured, rows)
    log('[latency] ratios to flow naive: ' + ', '.join(
        f'{m} {r:.2f}' for m, r in self._ratios.items()))
    return self._ratios
