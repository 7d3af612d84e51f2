"""Replicate statistics of a combined results.csv (docs/benchmark.md).

A replicate is one independent repetition of the whole pipeline: its own
experts, data, policy initialisation and evaluation seed. Rows carry their
`policy` and `replicate` (rtc.common.bc.results.read_results; a file without
the column is replicate 0).

* `estimates`: per policy x method x delay, the mean over levels and
  replicates, with a 95% interval over replicates: Student's t with R - 1
  degrees of freedom on the R per-replicate level means. Beside it, the
  standard error of episode sampling alone.
* `comparisons`: paired differences within replicate, with 95% t
  intervals on the R per-replicate differences: each method minus naive in
  a policy, each policy minus flow for the same method, and a policy's
  methods that its base policy lacks (training-time RTC's `training_time`)
  minus each of the base's methods. A difference is
  "better" when its interval lies above 0, "worse" below, else "no
  detectable difference" (with one replicate there is no interval).
* `level_drops`: per level, a method's solve rate at two delays and the
  drop between them, paired within replicate (which levels show the delay
  effect over replicates: the CPU suite's rule).
* `gain_comparisons`: a method's gain over its policy's naive minus the
  reference policy's gain with the same method (a difference of paired
  differences, within replicate): does a real-time method help this policy
  more than it helps flow?

Each (policy, method, delay) uses one execution horizon: the one with the
highest mean over levels and replicates (rtc.common.bc.results.summarise).
"""

import collections
import dataclasses
import math
from typing import Optional

import numpy as np
from scipy import stats as scipy_stats

from rtc.common.bc import results

CONFIDENCE = 0.95
METRIC = 'returned_episode_solved'
BETTER, WORSE, NONE = 'better', 'worse', 'no detectable difference'
NO_INTERVAL = 'n/a (1 replicate)'


@dataclasses.dataclass(frozen=True)
class Interval:
  """A mean over replicates with its confidence interval [lo, hi]."""
  mean: float
  lo: float  # nan with one replicate.
  hi: float
  replicates: int
  episode_se: float = math.nan  # Episode sampling only.

  @property
  def verdict(self) -> str:
    if self.replicates < 2:
      return NO_INTERVAL
    return BETTER if self.lo > 0 else WORSE if self.hi < 0 else NONE


def t_interval(values, confidence: float = CONFIDENCE,
               episode_se: float = math.nan) -> Interval:
  """Mean of `values` (one per replicate) with its Student-t interval."""
  v = np.asarray(values, dtype=np.float64)
  if v.size == 0:
    raise ValueError('t_interval: no values.')
  mean = float(v.mean())
  if v.size < 2:
    return Interval(mean, math.nan, math.nan, 1, episode_se)
  half = float(scipy_stats.t.ppf(0.5 + confidence / 2, v.size - 1) *
               v.std(ddof=1) / math.sqrt(v.size))
  return Interval(mean, mean - half, mean + half, int(v.size), episode_se)


def policies(rows) -> list[str]:
  """The policies of `rows`, flow first (the reference), then by name."""
  names = sorted({r.get('policy', '') for r in rows})
  return sorted(names, key=lambda p: (p != 'flow', p))


def horizons(rows) -> dict:
  """{(policy, method, delay): the execution horizon used}."""
  out = {}
  for p in policies(rows):
    mine = [r for r in rows if r.get('policy', '') == p]
    for method, by_delay in results.summarise(mine).items():
      for delay, (_, s) in by_delay.items():
        out[(p, method, delay)] = s
  return out


def _cells(rows) -> dict:
  """{(policy, method, delay): {replicate: {level: row}}} at the chosen
  execution horizon."""
  chosen = horizons(rows)
  out = collections.defaultdict(lambda: collections.defaultdict(dict))
  for r in rows:
    key = (r.get('policy', ''), r['method'], r['delay'])
    if chosen.get(key) == r['execute_horizon']:
      out[key][r.get('replicate', 0)][r['level']] = r
  return out


def _episode_se(cell: dict, num_evals: Optional[int]) -> float:
  """Standard error of the mean over every (replicate, level) row from
  episode sampling: sqrt(sum p (1 - p) / n) / N."""
  p, n = [], []
  for by_level in cell.values():
    for r in by_level.values():
      p.append(r[METRIC])
      n.append(r.get('num_evals') or num_evals or math.nan)
  p, n = np.array(p), np.array(n, dtype=np.float64)
  return float(np.sqrt(np.sum(p * (1 - p) / n)) / len(p))


def estimates(rows, num_evals: Optional[int] = None) -> dict:
  """{policy: {method: {delay: Interval}}}; `num_evals` serves rows that do
  not say how many episodes they hold."""
  cells = _cells(rows)
  out = collections.defaultdict(lambda: collections.defaultdict(dict))
  for (p, method, delay), cell in sorted(cells.items(), key=str):
    means = [np.mean([r[METRIC] for r in by_level.values()])
             for _, by_level in sorted(cell.items())]
    out[p][method][delay] = t_interval(means,
                                       episode_se=_episode_se(cell, num_evals))
  return {p: {m: dict(sorted(out[p][m].items())) for m in _order(out[p])}
          for p in policies(rows) if p in out}


def _order(methods):
  return ([m for m in results.METHOD_ORDER if m in methods] +
          sorted(set(methods) - set(results.METHOD_ORDER)))


@dataclasses.dataclass(frozen=True)
class Comparison:
  """`policy`/`method` minus its reference, paired within replicate."""
  policy: str
  method: str
  reference: str  # 'naive' (a method of `policy`) or 'flow' (a policy).
  delay: int
  difference: Interval
  of_methods: bool  # True: method - reference method; False: policies.
  # Set: `method` of `policy` minus method `reference` of this policy.
  reference_policy: str = ''
  # Set: (method - `gain_over`) of `policy` minus the same of `reference`.
  gain_over: str = ''

  @property
  def label(self) -> str:
    if self.gain_over:
      return (f'{self.method} - {self.gain_over}: {self.policy} - '
              f'{self.reference}')
    if self.reference_policy:
      return (f'{self.policy} {self.method} - {self.reference_policy} '
              f'{self.reference}')
    if self.of_methods:
      return f'{self.policy}: {self.method} - {self.reference}'
    return f'{self.method}: {self.policy} - {self.reference}'


def paired(cell: dict, reference: dict) -> Optional[Interval]:
  """The paired difference of two cells: per replicate both hold, the mean
  over their common levels of (cell - reference); None if none is shared."""
  return contrast([(1, cell), (-1, reference)])


def contrast(terms) -> Optional[Interval]:
  """sum(sign * cell) over `terms` [(sign, cell)], paired: per replicate
  every cell holds, the mean over the levels they all hold; None if no
  replicate has a level in all of them."""
  diffs = []
  for rep in sorted(set.intersection(*(set(c) for _, c in terms))):
    levels = sorted(set.intersection(*(set(c[rep]) for _, c in terms)))
    if levels:
      diffs.append(np.mean([sum(sign * c[rep][lv][METRIC]
                                for sign, c in terms) for lv in levels]))
  return t_interval(diffs) if diffs else None


def comparisons(rows, reference_method: str = 'naive',
                reference_policy: str = 'flow',
                bases: Optional[dict] = None) -> list[Comparison]:
  """Each method minus `reference_method` within a policy, then each policy
  minus `reference_policy` for the same method, at every delay both have;
  then, for `bases` {policy: its base policy} (e.g. flow trained with a
  simulated delay -> flow), each method of the policy that its base lacks
  minus each method of the base."""
  cells = _cells(rows)
  out = []
  names = policies(rows)
  for p in names:
    methods = _order({m for (q, m, _) in cells if q == p})
    for method in methods:
      if method == reference_method:
        continue
      for delay in sorted({d for (q, m, d) in cells if q == p and
                           m == method}):
        ref = cells.get((p, reference_method, delay))
        diff = ref and paired(cells[(p, method, delay)], ref)
        if diff:
          out.append(Comparison(p, method, reference_method, delay, diff,
                                  True))
  for p in names:
    if p == reference_policy:
      continue
    for (q, method, delay) in sorted(cells, key=str):
      ref = cells.get((reference_policy, method, delay))
      if q != p or not ref:
        continue
      diff = paired(cells[(p, method, delay)], ref)
      if diff:
        out.append(Comparison(p, method, reference_policy, delay, diff,
                              False))
  for p, base in (bases or {}).items():
    theirs = _order({m for (q, m, _) in cells if q == base})
    for (q, method, delay) in sorted(cells, key=str):
      if q != p or method in theirs:
        continue
      for other in theirs:
        ref = cells.get((base, other, delay))
        diff = ref and paired(cells[(p, method, delay)], ref)
        if diff:
          out.append(Comparison(p, method, other, delay, diff, True, base))
  return out


def gain_comparisons(rows, reference_method: str = 'naive',
                     reference_policy: str = 'flow') -> list[Comparison]:
  """For each policy but `reference_policy`, each method but
  `reference_method` and each delay where both policies have both methods:
  (method - reference_method) of the policy minus the same of
  `reference_policy`, paired within replicate."""
  cells = _cells(rows)
  out = []
  for p in policies(rows):
    if p == reference_policy:
      continue
    for (q, method, delay) in sorted(cells, key=str):
      keys = [(q, method, delay), (q, reference_method, delay),
              (reference_policy, method, delay),
              (reference_policy, reference_method, delay)]
      if q != p or method == reference_method or not all(
          k in cells for k in keys):
        continue
      diff = contrast([(s, cells[k]) for s, k in zip((1, -1, -1, 1), keys)])
      if diff:
        out.append(Comparison(p, method, reference_policy, delay, diff,
                              False, gain_over=reference_method))
  return out


def level_drops(rows, policy: str = 'flow', method: str = 'naive',
                low: int = 0, high: int = 4) -> dict:
  """{level: (rate at delay `low`, rate at `high`, low - high)} for
  `policy`'s `method`, each an Interval over replicates (the drop paired
  within replicate): does a level show the delay effect across replicates?
  Levels without both delays in some replicate are left out."""
  cells = _cells(rows)
  a, b = cells.get((policy, method, low)), cells.get((policy, method, high))
  if not a or not b:
    return {}

  def one(cell, level):
    return {rep: {level: by[level]} for rep, by in cell.items()
            if level in by}

  out = {}
  levels = sorted({lv for by in a.values() for lv in by})
  for lv in levels:
    drop = contrast([(1, one(a, lv)), (-1, one(b, lv))])
    if drop:
      out[lv] = (t_interval([by[lv][METRIC] for by in a.values() if lv in by]),
                 t_interval([by[lv][METRIC] for by in b.values() if lv in by]),
                 drop)
  return out


def format_interval(iv: Interval, signed: bool = False) -> str:
  """'0.512 [0.431, 0.593]' (one replicate: '0.512')."""
  f = '{:+.3f}' if signed else '{:.3f}'
  if iv.replicates < 2:
    return f.format(iv.mean)
  return f'{f.format(iv.mean)} [{f.format(iv.lo)}, {f.format(iv.hi)}]'
