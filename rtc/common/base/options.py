"""Small parsers for list-valued config options typed on the command line.

Lists are comma-separated strings (`--config.delays=0,1,2`), which read the
same in a config file and on a command line.
"""


def int_list(value, name: str) -> list[int]:
  """'0,1, 2' -> [0, 1, 2]; '' -> []; also accepts a sequence of ints."""
  if value is None:
    return []
  if isinstance(value, (list, tuple)):
    items = [str(v) for v in value]
  else:
    items = [s.strip() for s in str(value).split(',') if s.strip()]
  try:
    return [int(s) for s in items]
  except ValueError:
    raise ValueError(f'--config.{name} must be comma-separated integers, got '
                     f'{value!r}.') from None


def str_list(value) -> list[str]:
  if value is None:
    return []
  if isinstance(value, (list, tuple)):
    return [str(v).strip() for v in value if str(v).strip()]
  return [s.strip() for s in str(value).split(',') if s.strip()]
