"""An evaluation sweep's results.csv columns: the metrics and the point.

Kept apart from rtc.common.bc.sweep (which imports the environments) so that
reading results (reports, plots) imports no Kinetix.
"""

COLUMNS = ('returned_episode_returns', 'returned_episode_lengths',
           'returned_episode_solved', 'delay', 'method', 'level',
           'execute_horizon')
METRICS = COLUMNS[:3]
