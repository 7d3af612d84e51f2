"""Synthetic combined results.csv rows for the tests of rtc.common.bc.stats
and rtc.report: two levels, two replicates, flow and dd, naive and
realtime at d = 2 (s = 2), with planted differences.

Per-replicate level means (levels a, b):

              replicate 0       replicate 1
  flow naive  0.40 0.60 (0.50)  0.50 0.70 (0.60)
  flow rt     0.70 0.86 (0.78)  0.84 1.00 (0.92)   rt - naive: 0.28, 0.32
  dd naive    0.55 0.55 (0.55)  0.55 0.55 (0.55)   dd - flow:  0.05, -0.05
  dd rt       0.20 0.30 (0.25)  0.32 0.32 (0.32)   dd - flow: -0.53, -0.60
"""

import csv

from rtc.common.bc import results

LEVELS = ('worlds/l/a.json', 'worlds/l/b.json')
DELAY, HORIZON, NUM_EVALS = 2, 2, 100
# (policy, method, replicate): (level a, level b) solve rates.
PLANTED = {
    ('flow', 'naive', 0): (0.40, 0.60), ('flow', 'naive', 1): (0.50, 0.70),
    ('flow', 'realtime', 0): (0.70, 0.86),
    ('flow', 'realtime', 1): (0.84, 1.00),
    ('dd', 'naive', 0): (0.55, 0.55), ('dd', 'naive', 1): (0.55, 0.55),
    ('dd', 'realtime', 0): (0.20, 0.30), ('dd', 'realtime', 1): (0.32, 0.32),
}


def rows(planted=None, replicate_column: bool = True) -> list[dict]:
  """Rows as rtc.common.bc.results.read_results returns them."""
  out = []
  for (policy, method, rep), rates in (planted or PLANTED).items():
    for level, solved in zip(LEVELS, rates):
      r = {'level': level, 'delay': DELAY, 'execute_horizon': HORIZON,
           'method': method, 'returned_episode_solved': solved,
           'returned_episode_returns': solved,
           'returned_episode_lengths': 50.0, 'policy': policy,
           'num_evals': NUM_EVALS, 'run_dir': f'r{rep}/logs-{policy}',
           'settings_hash': 'abc'}
      if replicate_column:
        r['replicate'] = rep
      out.append(r)
  return out


def write_csv(path: str, rows_, columns=results.COMBINED_COLUMNS) -> None:
  with open(path, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
    w.writeheader()
    for r in rows_:
      w.writerow({k: r.get(k, '') for k in columns})
