"""The cost-adjusted sweep's pieces: the delay mapping and latency CSVs.

Every method of a policy costs its own time per chunk, so on a robot it
sees its own inference delay (docs/cost_adjusted.md, DESIGN §9). With
`--config.cost_adjusted=True` the sweep's delays d0 are read as flow naive
sampling's delay, and each policy x method runs at

  d = min(round_half_up(d0 * ratio), H // 2),   s = max(1, d),

where ratio = the method's latency / flow naive's latency (`adjusted_delay`).

A latency CSV (written by `bazel run //rtc/bench:latency`, or measured by an
evaluation into `<output_dir>/latency.csv`) has one row per (device, batch,
policy, sampling, method), columns CSV_COLUMNS:

* device: where it was measured (`latency.device_name`); one per file;
* batch: chunks computed at once (1 = one robot);
* policy: the policy's name (`policy_name`: a run directory's, or a
  quickstart policy name for the bench's presets); kind: its family;
* method: one of rtc.common.env.rollout.METHODS; sampling: the policy's
  cost_options() values (`sampling_key`, e.g. 'early_start=True'; empty
  for families without them);
* num_steps, delay, execute_horizon: how the chunk was computed;
* timed_calls, median_s, p90_s: the timing (seconds per chunk);
* reference: the flow policy whose naive row is the reference;
  ratio_to_flow_naive, ratio_to_own_naive: median_s over the reference's
  naive median_s (same device and batch), and over the policy's own naive
  (same sampling). `ratios` recomputes them from median_s.

rtc.common.bc.latency measures; this module only reads, checks and maps.
"""

import csv
import io
import math
import os
from typing import Optional, Sequence

from rtc.common.bc import checkpoints
from rtc.common.core import registry

CSV_COLUMNS = ('device', 'batch', 'policy', 'kind', 'method', 'sampling',
               'num_steps', 'delay', 'execute_horizon', 'timed_calls',
               'median_s', 'p90_s', 'reference', 'ratio_to_flow_naive',
               'ratio_to_own_naive')
# results.csv columns of a cost-adjusted sweep (`delay` is d).
RESULT_COLUMNS = ('d0', 'latency_ratio')
REFERENCE_KIND = 'flow'
REFERENCE_METHOD = 'naive'
MEASURED_FILE = 'latency.csv'  # In an evaluation's output directory.
BENCH = '`bazel run //rtc/bench:latency`'


def cost_options() -> dict:
  """Model options that change what a method costs, of every registered
  family (its COST_OPTIONS: name -> the values the latency bench times;
  an evaluation looks up its own)."""
  out = {}
  for kind in registry.kinds():
    out.update(getattr(registry.get(kind), 'COST_OPTIONS', {}))
  return out


def adjusted_delay(d0: int, ratio: float, chunk_size: int) -> int:
  """round(d0 * ratio), halves rounded up, capped at H // 2."""
  if not (math.isfinite(ratio) and ratio > 0):
    raise ValueError(f'A latency ratio must be a positive finite number, got '
                     f'{ratio}.')
  return min(int(math.floor(d0 * ratio + 0.5 + 1e-9)), chunk_size // 2)


def plan(delays: Sequence[int], ratios: dict, chunk_size: int) -> dict:
  """{method: [(d0, d, s)]} of a cost-adjusted sweep, s = max(1, d)."""
  out = {}
  for method, ratio in ratios.items():
    out[method] = []
    for d0 in delays:
      d = adjusted_delay(d0, ratio, chunk_size)
      out[method].append((d0, d, max(1, d)))
  return out


def sampling_key(model_config) -> str:
  """The cost_options() values of a policy's config (a config object, or a
  dict such as an evaluation's recorded `model`), e.g. 'early_start=False'
  ('' if it has none of them)."""
  if isinstance(model_config, dict):
    return ';'.join(f'{name}={model_config[name]}'
                    for name in cost_options() if name in model_config)
  return ';'.join(f'{name}={getattr(model_config, name)}'
                  for name in cost_options()
                  if hasattr(model_config, name))


def sampling_variants(model: dict) -> list[dict]:
  """Model-option overrides to time: {} (as configured), then each
  cost_options() value the model does not have already."""
  out = [{}]
  for name, values in cost_options().items():
    if name in model:
      out += [{name: v} for v in values if v != model[name]]
  return out


def policy_name(run_dir: str) -> str:
  """A run directory's policy name: `<x>` for `.../logs-<x>/<run>` (the
  quickstart's logs-dd/quickstart -> 'dd'), else the directory's name."""
  run_dir = os.path.normpath(run_dir)
  parent = os.path.basename(os.path.dirname(run_dir))
  if parent.startswith('logs-') and len(parent) > len('logs-'):
    return parent[len('logs-'):]
  return os.path.basename(run_dir)


def check_options(config) -> None:
  """The cost options of an evaluation config (configs/common.py: sweep);
  ValueError with one line. Reads no file."""
  if not config.get('cost_adjusted'):
    return
  if not config.get('latency_csv') and not config.get('measure_latency'):
    raise ValueError(
        '--config.cost_adjusted needs a latency source: set '
        '--config.latency_csv=<CSV of ' + BENCH + '> or '
        '--config.measure_latency=True.')
  horizons = config.get('execute_horizons')
  if horizons not in ('', 'min', None):
    raise ValueError(
        f'--config.execute_horizons={horizons!r} cannot be used with '
        "--config.cost_adjusted (every point runs at s = max(1, d)): set it "
        "to 'min' or ''.")


def _number(path, i, row, column, kind=float):
  try:
    value = kind(row[column])
  except (TypeError, ValueError):
    value = float('nan')
  if not (math.isfinite(value) and value > 0):
    raise ValueError(
        f'{path}: row {i + 2} has {column}={row[column]!r}; it must be a '
        f'positive finite number: re-measure with {BENCH}.')
  return value


def read_csv(path: str) -> list[dict]:
  """The rows of a latency CSV, checked: columns, positive finite times,
  known methods, one device. ValueError (one line) otherwise."""
  # pylint: disable=g-import-not-at-top
  from rtc.common.env import rollout  # Imports JAX and Kinetix: only here.
  # pylint: enable=g-import-not-at-top
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Latency CSV {path} not found: pass a file written by {BENCH} (e.g. '
        'docs/latency_cpu.csv).')
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
      raise ValueError(f'{path} lacks columns {missing}: not a latency CSV '
                       f'of {BENCH}.')
    rows = list(reader)
  if not rows:
    raise ValueError(f'{path} holds no rows; re-measure with {BENCH}.')
  out = []
  for i, r in enumerate(rows):
    if r['method'] not in rollout.METHODS:
      raise ValueError(
          f'{path}: row {i + 2} names unknown method {r["method"]!r}; the '
          f'methods are {", ".join(rollout.METHODS)}.')
    out.append(dict(r, batch=int(_number(path, i, r, 'batch')),
                    median_s=_number(path, i, r, 'median_s'),
                    p90_s=_number(path, i, r, 'p90_s')))
  devices = sorted({r['device'] for r in out})
  if len(devices) > 1:
    raise ValueError(f'{path} mixes devices {devices}: keep the rows of the '
                     'one device being modelled.')
  return out


def ratios(rows: list[dict], path: str, policy: str, sampling: str,
           methods: Sequence[str], batch: int = 1) -> dict:
  """{method: latency / flow naive's latency} of `policy` (with sampling
  options `sampling`) at `batch`; ValueError (one line) when `rows` (read
  from `path`) lack the policy, a method or the reference."""
  at = [r for r in rows if r['batch'] == batch]
  if not at:
    raise ValueError(
        f'{path} has no rows at batch {batch} (it has batches '
        f'{sorted({r["batch"] for r in rows})}); set --config.latency_batch.')
  mine = [r for r in at if r['policy'] == policy]
  if not mine:
    names = sorted({r['policy'] for r in at})
    raise ValueError(
        f'{path} has no rows for policy {policy!r} (it has {names}): set '
        '--config.latency_policy to the name it was measured under, or '
        f'measure this policy with {BENCH} -- --run_paths=<run>.')
  options = [r for r in mine if r['sampling'] == sampling]
  if not options:
    have = sorted({r['sampling'] for r in mine})
    raise ValueError(
        f'{path} has no rows for policy {policy!r} with sampling options '
        f'{sampling!r} (it has {have}); re-measure with {BENCH}.')
  reference = options[0]['reference']
  ref = [r for r in at if r['policy'] == reference and
         r['method'] == REFERENCE_METHOD and r['kind'] == REFERENCE_KIND]
  if not ref:
    raise ValueError(
        f'{path} has no {REFERENCE_KIND} {REFERENCE_METHOD} row for the '
        f'reference policy {reference!r} at batch {batch}; re-measure with '
        f'{BENCH}.')
  out = {}
  for method in methods:
    found = [r for r in options if r['method'] == method]
    if not found:
      raise ValueError(
          f'{path} has no {method!r} row for policy {policy!r} at batch '
          f'{batch}: re-measure with {BENCH} including it, or drop it from '
          '--config.methods.')
    out[method] = found[0]['median_s'] / ref[0]['median_s']
  return out


def with_ratios(rows: list[dict]) -> list[dict]:
  """Fills ratio_to_flow_naive and ratio_to_own_naive from median_s."""
  def median(policy, sampling, batch, method='naive'):
    for r in rows:
      if (r['policy'], r['sampling'], r['batch'], r['method']) == (
          policy, sampling, batch, method):
        return r['median_s']
    return None

  out = []
  for r in rows:
    ref = None
    for q in rows:
      if (q['policy'], q['batch'], q['method']) == (
          r['reference'], r['batch'], REFERENCE_METHOD):
        ref = q['median_s']
        break
    own = median(r['policy'], r['sampling'], r['batch'])
    out.append(dict(r, ratio_to_flow_naive=_ratio(r['median_s'], ref),
                    ratio_to_own_naive=_ratio(r['median_s'], own)))
  return out


def _ratio(a, b):
  return a / b if b is not None and b > 0 else ''


def write_csv(path: str, rows: list[dict], header: Optional[str] = None):
  """Writes latency rows atomically; `header` (how and when they were
  measured) goes to the companion `<path without .csv>.txt`."""
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator='\n')
  writer.writeheader()
  for r in rows:
    writer.writerow({k: _fmt(r.get(k, '')) for k in CSV_COLUMNS})
  checkpoints.atomic_write_bytes(path, buf.getvalue().encode())
  if header is not None:
    checkpoints.atomic_write_bytes(os.path.splitext(path)[0] + '.txt',
                                   header.encode())
  return path


def _fmt(value):
  if isinstance(value, float):
    return f'{value:.6g}'
  return value
