"""The installed package's import graph: no cycle, and no import from a lower layer up to a higher one.

The layers are the README's ("Layers"); docs/design.md draws them. Imports inside functions count: a lazy import
is still a dependency, it only moves the cost.
"""
import ast
import importlib.util
import os
import pkgutil
import subprocess
import sys

import pytest

# Bottom to top; a module belongs to the layer of its longest matching prefix.
LAYERS = [
    ('core', ['tfx_tabular.pipeline.core']),
    ('transforms', ['tfx_tabular.transforms']),
    ('serving', ['tfx_tabular.serving']),
    ('components', ['tfx_tabular.components']),
    ('results', ['tfx_tabular.pipeline.results']),
    ('assembly', ['tfx_tabular.pipeline', 'tfx_tabular.kubeflow']),
    ('cli', ['tfx_tabular.pipeline.cli', 'tfx_tabular.kubeflow.cli', 'tfx_tabular.serving.cli']),
]
PACKAGES = ('pipeline', 'components', 'transforms', 'serving', 'kubeflow')


def layer_of(module: str) -> int:
    best, level = '', None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + '.')) and len(prefix) > len(best):
                best, level = prefix, i
    assert level is not None, f'{module} is in no layer: add it to LAYERS and to the README'
    return level


def installed_modules():
    """Every module of the installed distribution, with its source file (found as Python finds it)."""
    modules = {}
    for package in PACKAGES:
        name = f'tfx_tabular.{package}'
        spec = importlib.util.find_spec(name)
        assert spec is not None, f'{name} is not installed: pip install -e .'
        modules[name] = spec.origin
        for info in pkgutil.walk_packages(spec.submodule_search_locations, prefix=name + '.'):
            path = os.path.join(info.module_finder.path, info.name.rsplit('.', 1)[1])
            modules[info.name] = os.path.join(path, '__init__.py') if info.ispkg else path + '.py'
    return modules


def imports_of(module: str, path: str, known: set) -> set:
    """The project's modules `module` imports (`from a.b import c` is a.b.c when c is a module, else a.b)."""
    tree = ast.parse(open(path).read(), path)
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package.split('.')[:len(package.split('.')) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in known else base)
    return {m for m in found if m in known and m != module}


@pytest.fixture(scope='module')
def graph():
    modules = installed_modules()
    known = set(modules)
    return {m: imports_of(m, path, known) for m, path in modules.items()}


def test_no_module_imports_a_higher_layer(graph):
    upward = [f'{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})'
              for m, deps in sorted(graph.items()) for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, '\n'.join(upward)


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles(graph):
    # A package's __init__ that re-exports its own submodule is not a cycle of design: leave those edges out.
    edges = {m: {d for d in deps if not d.startswith(m + '.')} for m, deps in graph.items()}
    assert not _cycles(edges), _cycles(edges)


def test_the_graph_sees_the_layers_it_checks(graph):
    """The walk found every layer, and edges between them: a test that saw nothing could not fail."""
    assert {LAYERS[layer_of(m)][0] for m in graph} == {name for name, _ in LAYERS}
    assert 'tfx_tabular.pipeline.core.config' in graph['tfx_tabular.transforms.preprocessing']


def test_cycle_finder_finds_a_cycle():
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_the_install_claims_no_generic_top_level_name(tmp_path):
    """`import kubeflow` (Kubeflow's own SDK namespace) or `import pipeline` elsewhere does not find this project."""
    code = ('import importlib.util as u; '
            'print([n for n in ("kubeflow", "pipeline", "components", "transforms", "serving") if u.find_spec(n)])')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.stdout.strip() == '[]', result.stdout + result.stderr
