#!/usr/bin/env python
"""Mutation check: do the tests notice plausible one-line bugs?

    .venv/bin/python tools/dev/mutation_check.py [--only ID ...] [--list]
        [--jobs N] [--timeout SECONDS] [--baseline] [--catalogue FILE]

Each entry of the catalogue (``tools/dev/mutations.yml``) names a file, a
text that occurs exactly once in it, its replacement and the tests that
must catch the change. For each entry the runner copies the tree (only
what the tests read: the package, configs, tools, tests, docs and a few
top-level files; not ``.venv`` or work dirs) to a temporary directory,
applies the change there, and runs only the listed tests with this Python
(``sys.executable``) and ``PYTHONPATH`` set to the copy. A mutation is
*killed* when the tests fail (or time out), *survived* when they pass, and
an *error* when pytest could not run them (no such test, usage error).
The checkout itself is never modified.

A catalogue entry whose original text is not found exactly once stops the
run before anything is tested, naming the entry and the file: a catalogue
that no longer matches the code must be updated, not skipped.

``--baseline`` first runs every entry's tests on an unmutated copy: a kill
means something only if those tests pass without the mutation.

Exit status 0 when every selected mutation was killed. This is a developer
tool (minutes of CPU), not part of ``make test``;
``tests/tools/test_mutation_catalogue.py`` checks the catalogue itself there.
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CATALOGUE = osp.join(REPO, 'tools', 'dev', 'mutations.yml')
# What a test run reads; everything else (.venv, work_dirs, data, .git)
# stays behind.
COPIED_DIRS = ('mobilenet_mm', 'configs', 'tools', 'tests', 'docs',
               'requirements')
COPIED_FILES = ('setup.py', 'setup.cfg', 'README.md', 'Makefile')
REQUIRED_KEYS = ('id', 'file', 'original', 'replacement', 'description',
                 'tests')
OPTIONAL_KEYS = ('k', )
ID_PATTERN = re.compile(r'^[a-z0-9][a-z0-9-]*$')
# pytest exit codes: 0 passed, 1 tests failed, 2 interrupted (a collection
# error: the mutated code does not even import), 3 internal error, 4 usage
# error, 5 no tests collected.
KILLED_CODES = (1, 2)


class CatalogueError(ValueError):
    """The catalogue is malformed or no longer matches the code."""


def load_catalogue(path: str = CATALOGUE) -> List[dict]:
    """The entries of the catalogue, checked for form (not against code)."""
    import yaml
    with open(path) as f:
        entries = yaml.safe_load(f)
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f'{path}: expected a list of mutations')
    seen = set()
    for index, entry in enumerate(entries):
        where = f'{path}: entry {index}'
        if not isinstance(entry, dict):
            raise CatalogueError(f'{where} is not a mapping')
        where = f'{path}: mutation {entry.get("id", index)!r}'
        missing = [k for k in REQUIRED_KEYS if k not in entry]
        unknown = [k for k in entry
                   if k not in REQUIRED_KEYS + OPTIONAL_KEYS]
        if missing or unknown:
            raise CatalogueError(f'{where}: missing keys {missing}, unknown '
                                 f'keys {unknown}')
        if not isinstance(entry['id'], str) or not ID_PATTERN.match(
                entry['id']):
            raise CatalogueError(f'{where}: id must be lower-case words '
                                 'joined by hyphens')
        if entry['id'] in seen:
            raise CatalogueError(f'{where}: duplicate id')
        seen.add(entry['id'])
        for key in ('file', 'original', 'replacement', 'description'):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise CatalogueError(f'{where}: {key} must be a non-empty '
                                     'string')
        for key in ('original', 'replacement', 'description'):
            if '\n' in entry[key]:
                raise CatalogueError(f'{where}: {key} must be one line')
        if entry['original'] == entry['replacement']:
            raise CatalogueError(f'{where}: replacement equals original')
        tests = entry['tests']
        if not isinstance(tests, list) or not tests or not all(
                isinstance(t, str) and t.startswith('tests/')
                for t in tests):
            raise CatalogueError(f'{where}: tests must be a non-empty list '
                                 'of paths or node ids under tests/')
        if 'k' in entry and not isinstance(entry['k'], str):
            raise CatalogueError(f'{where}: k must be a string')
    return entries


def check_against_tree(entry: dict, root: str = REPO) -> None:
    """Raise :class:`CatalogueError` unless the entry's original text
    occurs exactly once in its file and its tests exist in ``root``."""
    where = f'mutation {entry["id"]!r}'
    path = osp.join(root, entry['file'])
    if not osp.isfile(path):
        raise CatalogueError(f'{where}: file {entry["file"]} does not exist')
    with open(path, encoding='utf-8') as f:
        count = f.read().count(entry['original'])
    if count != 1:
        raise CatalogueError(
            f'{where}: the original text {entry["original"]!r} occurs '
            f'{count} times in {entry["file"]} (expected exactly once); '
            'update the catalogue entry')
    for test in entry['tests']:
        file, _, node = test.partition('::')
        test_path = osp.join(root, file)
        if not osp.isfile(test_path):
            raise CatalogueError(f'{where}: test file {file} does not exist')
        if node:
            function = node.split('[')[0].split('::')[-1]
            with open(test_path, encoding='utf-8') as f:
                if not re.search(rf'^\s*def {re.escape(function)}\(',
                                 f.read(), flags=re.MULTILINE):
                    raise CatalogueError(f'{where}: {file} has no test '
                                         f'{function}')


def copy_tree(root: str, destination: str) -> None:
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info',
                                    'work_dirs', '.pytest_cache')
    for name in COPIED_DIRS:
        if osp.isdir(osp.join(root, name)):
            shutil.copytree(osp.join(root, name), osp.join(destination, name),
                            ignore=ignore, symlinks=True)
    for name in COPIED_FILES:
        if osp.isfile(osp.join(root, name)):
            shutil.copy2(osp.join(root, name), osp.join(destination, name))


def apply_mutation(entry: dict, root: str) -> None:
    """Replace the entry's original text (exactly once) in ``root``."""
    check_against_tree(dict(entry, tests=[]), root)
    path = osp.join(root, entry['file'])
    with open(path, encoding='utf-8') as f:
        text = f.read()
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text.replace(entry['original'], entry['replacement'], 1))


def pytest_command(entry: dict, python: str) -> List[str]:
    command = [python, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
               *entry['tests']]
    if entry.get('k'):
        command += ['-k', entry['k']]
    return command


def run_tests(entry: dict, root: str, python: str,
              timeout: float) -> Dict[str, object]:
    env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS='1',
               MKL_NUM_THREADS='1')
    start = time.time()
    try:
        proc = subprocess.run(pytest_command(entry, python), cwd=root,
                              env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(code=None, seconds=time.time() - start, tail='timeout')
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    return dict(code=proc.returncode, seconds=time.time() - start,
                tail=tail[-1] if tail else '')


def outcome(code: Optional[int]) -> str:
    if code is None:
        return 'killed'  # the tests hung: noticed, if slowly
    if code == 0:
        return 'survived'
    return 'killed' if code in KILLED_CODES else 'error'


def check_one(entry: dict, python: str, timeout: float,
              mutate: bool = True) -> Dict[str, object]:
    with tempfile.TemporaryDirectory(prefix='mutation_') as root:
        copy_tree(REPO, root)
        if mutate:
            apply_mutation(entry, root)
        result = run_tests(entry, root, python, timeout)
    result['status'] = outcome(result['code'])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Apply each catalogued one-line bug to a copy of the '
        'tree and run the tests that must catch it.')
    parser.add_argument('--catalogue', default=CATALOGUE)
    parser.add_argument('--only', nargs='+', metavar='ID',
                        help='run only these mutations')
    parser.add_argument('--list', action='store_true',
                        help='list the mutations and exit')
    parser.add_argument('--jobs', type=int, default=1,
                        help='mutations tested at the same time (default 1)')
    parser.add_argument('--timeout', type=float, default=600,
                        help='seconds per mutation (default 600); a run '
                        'that times out counts as killed')
    parser.add_argument('--baseline', action='store_true',
                        help='first check that every selected entry\'s '
                        'tests pass on the unmutated tree')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    try:
        entries = load_catalogue(args.catalogue)
        if args.only:
            known = {e['id'] for e in entries}
            unknown = [i for i in args.only if i not in known]
            if unknown:
                raise CatalogueError(f'unknown mutation ids: {unknown}')
            entries = [e for e in entries if e['id'] in args.only]
        for entry in entries:
            check_against_tree(entry)
    except CatalogueError as error:
        print(f'mutation_check: error: {error}', file=sys.stderr)
        return 2
    if args.list:
        for entry in entries:
            print(f'{entry["id"]:44} {entry["file"]}\n    '
                  f'{entry["description"]}')
        print(f'{len(entries)} mutations')
        return 0

    python = sys.executable
    if args.baseline:
        selections = {}
        for entry in entries:
            selections.setdefault(
                (tuple(entry['tests']), entry.get('k')), entry)
        print(f'baseline: {len(selections)} test selections, unmutated',
              flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(
                lambda e: (e, check_one(e, python, args.timeout, False)),
                selections.values()))
        failing = [(e, r) for e, r in results if r['code'] != 0]
        for entry, result in failing:
            print(f'baseline FAILS for {entry["id"]}: '
                  f'{" ".join(pytest_command(entry, "python")[1:])}: '
                  f'{result["tail"]}')
        if failing:
            return 2
        print('baseline: every selection passes', flush=True)

    print(f'{len(entries)} mutations, {args.jobs} at a time, timeout '
          f'{args.timeout:.0f} s', flush=True)
    start = time.time()

    def job(entry):
        result = check_one(entry, python, args.timeout)
        print(f'{result["status"].upper():9} {entry["id"]:44} '
              f'{result["seconds"]:6.1f} s  {entry["file"]}'
              + (f'  ({result["tail"]})' if result['status'] != 'killed'
                 else ''), flush=True)
        return entry, result

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(job, entries))
    killed = [e['id'] for e, r in results if r['status'] == 'killed']
    survived = [e['id'] for e, r in results if r['status'] == 'survived']
    errors = [e['id'] for e, r in results if r['status'] == 'error']
    print(f'\nkilled {len(killed)} of {len(results)} mutations, kill rate '
          f'{100 * len(killed) / len(results):.1f}% '
          f'({(time.time() - start) / 60:.1f} min)')
    if survived:
        print(f'survived: {", ".join(survived)}')
    if errors:
        print(f'errors (pytest could not run the tests): {", ".join(errors)}')
    return 0 if len(killed) == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())
