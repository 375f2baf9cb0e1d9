"""The package's import graph has no cycles, function-local imports
included (a cycle hidden inside functions still ties the modules together
and breaks as soon as one import moves to the top)."""
import ast
import os
import os.path as osp

import pytest

from tests.conftest import REPO

PACKAGE = 'mobilenet_mm'


def package_modules():
    """{module name: file} of every module of the package."""
    modules = {}
    root = osp.join(REPO, PACKAGE)
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith('.py'):
                continue
            parts = osp.relpath(osp.join(folder, name), REPO)[:-3].split(
                osp.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            modules['.'.join(parts)] = osp.join(folder, name)
    return modules


def imports_of(module, path, modules):
    """The package modules that ``module`` imports, anywhere in the file.

    ``from P import N`` is an import of ``P.N`` when that is a module, else
    of ``P``; relative imports are resolved against ``module``.
    """
    is_package = path.endswith('__init__.py')
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = module.split('.')
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = '.'.join(parts[:keep] + ([base] if base else []))
            names = [f'{base}.{alias.name}' if f'{base}.{alias.name}'
                     in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # a.b.function -> a.b
                name = name.rpartition('.')[0]
            if name and name != module:
                found.add(name)
    return found


def find_cycle(graph):
    """One cycle of ``graph`` as a list of modules, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def package_graph():
    modules = package_modules()
    return {m: imports_of(m, path, modules) for m, path in modules.items()}


def test_the_package_has_no_import_cycle():
    graph = package_graph()
    assert len(graph) > 40  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, ' -> '.join(cycle)


def test_function_local_imports_are_in_the_graph():
    """The walk sees imports inside functions: ``register_host_modules``
    imports the package inside its body."""
    graph = package_graph()
    assert PACKAGE in graph[f'{PACKAGE}.apis.config']
    # and the errors module, imported by everything, imports nothing back
    assert graph[f'{PACKAGE}.errors'] == set()


def test_the_cycle_finder_finds_a_hidden_cycle(tmp_path):
    """The check itself: the former tools_common <-> datasets cycle, made
    of a top-level import one way and a function-local one back."""
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'tools_common.py').write_text(
        'def check():\n    from .datasets import check\n')
    (package / 'datasets.py').write_text(
        'from .tools_common import CLIError\n')
    modules = {'pkg': str(package / '__init__.py'),
               'pkg.tools_common': str(package / 'tools_common.py'),
               'pkg.datasets': str(package / 'datasets.py')}
    graph = {m: imports_of(m, p, modules) for m, p in modules.items()}
    assert find_cycle(graph) == ['pkg.datasets', 'pkg.tools_common',
                                 'pkg.datasets']


def _instance(error_type):
    if error_type.__name__ == 'UnsafeCheckpointError':
        return error_type('evil.pth', 'the global os.system')
    return error_type('bad input\nnamed here')


@pytest.mark.parametrize('name', __import__(
    f'{PACKAGE}.errors', fromlist=['__all__']).__all__)
def test_every_user_error_is_one_line_from_the_tools(name, capsys):
    """One way of marking an error as the user's: each type derives from
    UserError, and run_cli prints exactly those as one line (exit 1)."""
    from mobilenet_mm import errors
    from mobilenet_mm.apis.cli import run_cli
    error_type = getattr(errors, name)
    assert issubclass(error_type, errors.UserError)

    def main(argv):
        raise _instance(error_type)

    assert run_cli(main, []) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and ': error: ' in err


def test_other_errors_keep_their_traceback(monkeypatch, capsys):
    """A bug is not a user error: it ends in one line that points to its
    traceback, or (MOBILENET_MM_TRACEBACK=1) is re-raised as it is."""
    from mobilenet_mm.apis.cli import run_cli

    def main(argv):
        raise KeyError('a bug')

    monkeypatch.delenv('MOBILENET_MM_TRACEBACK', raising=False)
    assert run_cli(main, []) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'unexpected KeyError' in err and 'full traceback' in err
    monkeypatch.setenv('MOBILENET_MM_TRACEBACK', '1')
    with pytest.raises(KeyError):
        run_cli(main, [])
