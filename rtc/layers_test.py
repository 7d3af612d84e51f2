"""Imports only go down: rtc.common's layers, and no import circle in rtc.

rtc/common is cut into layer folders, bottom to top (docs/DESIGN.md,
"Layout"): base, core, env, bc, cli; testlib (test helpers) may import any
of them. A module imports modules of its own layer or of lower ones;
rtc.common imports no family (rtc.flow, rtc.dd) or rtc.expert, which find
it through the registry; and the module graph of rtc has no cycle, lazy
imports inside functions included. Modules that only read results
(reports, plots) and the level survey's flag checks load no Kinetix when
imported (it costs seconds and starts JAX's backend).
"""

import ast
import os
import tempfile

from absl.testing import absltest

LAYERS = ('base', 'core', 'env', 'bc', 'cli', 'testlib')


def _repo_root() -> str:
  here = os.path.dirname(os.path.abspath(__file__))
  return os.path.dirname(here)


def module_imports(root: str, package: str = 'rtc') -> dict[str, set[str]]:
  """Module name -> the rtc modules it imports (anywhere in the file), for
  every non-test .py file under root/package."""
  graph = {}
  for dirpath, _, files in os.walk(os.path.join(root, package)):
    for name in files:
      if not name.endswith('.py') or name.endswith('_test.py'):
        continue
      path = os.path.join(dirpath, name)
      rel = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
      mod = rel[:-len('.__init__')] if rel.endswith('.__init__') else rel
      with open(path) as f:
        tree = ast.parse(f.read(), path)
      deps = set()
      for node in ast.walk(tree):
        if isinstance(node, ast.Import):
          deps.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not (
            node.level):
          for a in node.names:
            deps.add(f'{node.module}.{a.name}')
      graph[mod] = {d for d in deps if d.split('.')[0] == package}
  # `from a.b import c` names module a.b.c or a name inside module a.b.
  for mod, deps in graph.items():
    graph[mod] = {d if d in graph else d.rsplit('.', 1)[0] for d in deps}
    graph[mod] = {d for d in graph[mod] if d in graph and d != mod}
  return graph


def layer_of(module: str):
  parts = module.split('.')
  if parts[:2] == ['rtc', 'common'] and len(parts) > 3:
    return parts[2]
  return None


def violations(graph: dict[str, set[str]]) -> list[str]:
  """Upward imports between rtc.common's layers, and rtc.common importing a
  family or the expert package."""
  out = []
  for mod, deps in sorted(graph.items()):
    if not mod.startswith('rtc.common.'):
      continue
    mine = layer_of(mod)
    for dep in sorted(deps):
      if not dep.startswith('rtc.common.'):
        out.append(f'{mod} imports {dep}, outside rtc.common')
        continue
      theirs = layer_of(dep)
      if mine is None or theirs is None:
        out.append(f'{mod} -> {dep}: a module outside the layer folders')
      elif LAYERS.index(theirs) > LAYERS.index(mine):
        out.append(f'{mod} ({mine}) imports {dep} ({theirs}), a layer above')
  return out


def cycle(graph: dict[str, set[str]]):
  """One import cycle as a list of modules, or None."""
  state, stack = {}, []

  def visit(node):
    state[node] = 1
    stack.append(node)
    for dep in sorted(graph.get(node, ())):
      if state.get(dep) == 1:
        return stack[stack.index(dep):] + [dep]
      if dep not in state:
        found = visit(dep)
        if found:
          return found
    stack.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def _module_file(root: str, module: str):
  base = os.path.join(root, *module.split('.'))
  for path in (base + '.py', os.path.join(base, '__init__.py')):
    if os.path.isfile(path):
      return path
  return None


def _load_time_imports(tree) -> set[str]:
  """Names imported when a module loads: not inside functions."""
  out = set()
  todo = list(tree.body)
  while todo:
    node = todo.pop()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
      continue
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      out.add(node.module)
      out.update(f'{node.module}.{a.name}' for a in node.names)
    todo.extend(ast.iter_child_nodes(node))
  return out


def loaded_on_import(root: str, module: str) -> set[str]:
  """Every module name imported, transitively, when `module` is imported
  (the repository's own modules followed through their files)."""
  seen, todo = set(), [module]
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    parts = name.split('.')
    # A package's __init__ runs before its submodules.
    todo.extend('.'.join(parts[:i]) for i in range(1, len(parts)))
    path = _module_file(root, name)
    if path is None:
      continue
    with open(path) as f:
      todo.extend(_load_time_imports(ast.parse(f.read(), path)))
  return seen


# rtc's one import of Kinetix (it imports Kinetix's modules by name).
KINETIX_IMPORT = 'rtc.common.env.kinetix_import'


def _loads_kinetix(module: str) -> bool:
  return (module.split('.')[0] == 'kinetix' or
          module in ('rtc.common.env.envs', KINETIX_IMPORT))


class LayersTest(absltest.TestCase):

  def test_reading_results_loads_no_kinetix(self):
    root = _repo_root()
    for module in ('rtc.plot', 'rtc.report', 'rtc.common.bc.results',
                   'rtc.bench.level_survey'):
      loaded = loaded_on_import(root, module)
      self.assertIn('rtc.common.bc.columns' if module != (
          'rtc.bench.level_survey') else 'rtc.common.env.level_ids', loaded)
      self.assertEqual({m for m in loaded if _loads_kinetix(m)}, set(), module)
    # The check sees Kinetix where it is loaded.
    self.assertIn(KINETIX_IMPORT, loaded_on_import(root, 'rtc.common.bc.sweep'))

  def test_rtc_common_imports_only_go_down(self):
    graph = module_imports(_repo_root())
    self.assertIn('rtc.common.core.policy', graph)
    self.assertEqual(violations(graph), [])

  def test_no_import_cycle_in_rtc(self):
    self.assertIsNone(cycle(module_imports(_repo_root())))

  def test_the_checks_find_planted_faults(self):
    root = tempfile.mkdtemp()
    files = {
        'rtc/common/base/low.py': 'from rtc.common.bc import high\n',
        'rtc/common/bc/high.py': 'import rtc.common.base.low\n',
        'rtc/common/core/fam.py': 'def f():\n  from rtc.dd import model\n',
        'rtc/dd/model.py': 'from rtc.common.core import fam\n',
    }
    for rel, text in files.items():
      os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
      with open(os.path.join(root, rel), 'w') as f:
        f.write(text)
    graph = module_imports(root)
    self.assertEqual(violations(graph), [
        'rtc.common.base.low (base) imports rtc.common.bc.high (bc), a layer '
        'above',
        'rtc.common.core.fam imports rtc.dd.model, outside rtc.common'])
    found = cycle(graph)
    self.assertIsNotNone(found)
    self.assertEqual(found[0], found[-1])


if __name__ == '__main__':
  absltest.main()
