"""Helpers shared by the test folders (models, datasets, engine, deploy,
tools).

``tests`` is a package, so pytest puts the repository root on ``sys.path``:
the tests import these helpers as ``tests.conftest`` and the command-line
tools as modules of the ``tools`` package (``from tools import train``)
instead of loading script files by path.
"""
import contextlib
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')
TEST_CONFIGS = osp.join(REPO, 'tests', 'configs')  # the tiny det/seg configs
TOOLS = osp.join(REPO, 'tools')


def with_repo_on_path(env: dict, *paths: str) -> dict:
    """``env`` with the repository (and ``paths``) in front of its
    PYTHONPATH, so a tool started as a subprocess imports this checkout."""
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO, *paths] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def tool_env(*paths: str, **extra) -> dict:
    """The environment for a tool run as a subprocess: one intra-op thread
    (torch's default pool slows tiny models down many times on a shared
    2-core machine) and this checkout (then ``paths``) first on the path."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', **extra)
    return with_repo_on_path(env, *paths)


def run_tool(*args, cwd: str = REPO, paths=(), timeout: float = 300,
             env=None, fresh: bool = False):
    """``python SCRIPT ARGS`` as a user runs it, in ``cwd`` with
    :func:`tool_env` (``paths`` after this checkout on PYTHONPATH; ``env``
    adds variables), its output captured as text, as
    ``subprocess.run(..., capture_output=True, text=True)`` returns it.

    A ``.py`` script runs in a process forked from ``tests/tool_server.py``,
    a clean interpreter that has already imported torch, mmengine, mmdet,
    mmseg and mobilenet_mm: about 8 s of CPU less per run, most of a small
    tool test's time. ``fresh=True`` starts a new interpreter instead, for
    what happens at import time."""
    argv = [str(a) for a in args]
    environment = tool_env(*paths, **(env or {}))
    if fresh or not argv[0].endswith('.py'):
        return subprocess.run([sys.executable, *argv], capture_output=True,
                              text=True, env=environment, timeout=timeout,
                              cwd=cwd)
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        out, err = osp.join(folder, 'stdout'), osp.join(folder, 'stderr')
        proc = start_tool(*argv, log=out, stderr=err, cwd=cwd, paths=paths,
                          env=env)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        return subprocess.CompletedProcess(
            [sys.executable, *argv], proc.returncode,
            open(out, errors='replace').read(),
            open(err, errors='replace').read())


def start_tool(*args, log: str, stderr=None, cwd: str = REPO, paths=(),
               env=None):
    """Start ``python SCRIPT ARGS`` (forked from the tool server, see
    :func:`run_tool`) with stdout to the file ``log`` and stderr to the file
    ``stderr`` (None: to ``log`` as well); returns a :class:`ToolProcess`
    (``poll``, ``wait``, ``send_signal``, ``kill``, ``pid``,
    ``returncode``, as ``subprocess.Popen``)."""
    server = _ToolServer.get()
    return server.start([str(a) for a in args], str(cwd),
                        tool_env(*paths, **(env or {})), str(log),
                        None if stderr is None else str(stderr))


class ToolProcess:
    """A tool run forked by the tool server: the server is its parent, so
    its exit status comes as the server's answer."""

    def __init__(self, server, argv, pid):
        self.server, self.args, self.pid = server, argv, pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            self._status(self.server.reply(timeout=0))
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            answer = self.server.reply(timeout=1e9 if timeout is None
                                       else timeout)
            if answer is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._status(answer)
        return self.returncode

    def send_signal(self, number):
        if self.returncode is None:
            os.kill(self.pid, number)

    def kill(self):
        import signal
        self.send_signal(signal.SIGKILL)
        self.wait()

    def _status(self, answer):
        if answer is not None:
            self.returncode = os.waitstatus_to_exitcode(answer['status'])
            self.server.running = None


class _ToolServer:
    """This pytest process's tests/tool_server.py (one run at a time)."""
    _instance = None

    @classmethod
    def get(cls):
        server = cls._instance
        if server is None or server.process.poll() is not None:
            server = cls._instance = cls()
        if server.running is not None:  # a test that did not wait for it
            server.running.kill()
        return server

    def __init__(self):
        import atexit
        import tempfile
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, osp.join(REPO, 'tests', 'tool_server.py')],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=tool_env(), cwd=REPO)
        self.replies, self.pending = self.process.stdout.fileno(), b''
        self.running = None  # the ToolProcess not yet waited for
        atexit.register(self.process.stdin.close)
        if self.reply(timeout=300) is None:  # {"ready": true}: imports done
            raise RuntimeError('tests/tool_server.py did not start within '
                               '300 s; its stderr: ' + self._log_tail())

    def start(self, argv, cwd, env, stdout, stderr):
        import json
        self.process.stdin.write(json.dumps(dict(
            argv=argv, cwd=cwd, env=env, stdout=stdout,
            stderr=stderr)).encode() + b'\n')
        self.process.stdin.flush()
        answer = self.reply(timeout=60)
        if answer is None:
            raise RuntimeError('tests/tool_server.py did not fork within 60 '
                               's; its stderr: ' + self._log_tail())
        self.running = ToolProcess(self, argv, answer['pid'])
        return self.running

    def reply(self, timeout):
        """The server's next JSON line, or None if none came within
        ``timeout`` s (read from the raw pipe: two replies may arrive in
        one read)."""
        import json
        import select
        import time
        deadline = time.monotonic() + timeout
        while b'\n' not in self.pending:
            left = max(0., deadline - time.monotonic())
            if not select.select([self.replies], [], [], left)[0]:
                return None
            chunk = os.read(self.replies, 65536)
            if not chunk:
                raise RuntimeError('tests/tool_server.py stopped; its '
                                   'stderr: ' + self._log_tail())
            self.pending += chunk
        line, self.pending = self.pending.split(b'\n', 1)
        return json.loads(line)

    def _log_tail(self):
        self.log.seek(0)
        return self.log.read().decode(errors='replace')[-3000:]


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, and random layer scales
    (``gamma``, initialised at 1e-5), then eval mode: with identity-like
    defaults a wrong layer order, a missing op or a missed BN fold would
    not show in the outputs."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5, generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            if module.weight is not None:
                module.weight.data.uniform_(0.5, 1.5, generator=generator)
                module.bias.data.uniform_(-0.5, 0.5, generator=generator)
    for name, param in model.named_parameters():
        if name.endswith('gamma'):  # layer scale
            param.data.uniform_(0.05, 0.2, generator=generator)
    return model.eval()


def _current_scope():
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    return current.scope_name if current is not None else None


# The default scope a test module sets when it is imported (many call
# init_default_scope('mmdet') at the top): its tests run in that scope
# whichever module was imported, or ran, last. A module whose call finds
# its scope already current changes nothing, so the call is also read from
# its source.
_MODULE_SCOPES = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    if not isinstance(collector, pytest.Module):
        yield
        return
    import re
    before = _current_scope()
    yield
    after = _current_scope()
    calls = re.findall(r"^init_default_scope\('(\w+)'\)",
                       collector.path.read_text(), re.M)
    if calls:
        _MODULE_SCOPES[str(collector.path)] = calls[-1]
    elif after is not None and after != before:
        _MODULE_SCOPES[str(collector.path)] = after


@contextlib.contextmanager
def _default_scope_of(path):
    """Run in the default scope the test module ``path`` set (if any) and
    leave mmengine's default scopes as they were found."""
    from mmengine.registry import DefaultScope, init_default_scope
    saved = DefaultScope._instance_dict.copy()
    scope = _MODULE_SCOPES.get(str(path))
    if scope is not None:
        init_default_scope(scope)
    try:
        yield
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)


@pytest.fixture(autouse=True, scope='module')
def _module_default_scope(request):
    """A test module's module-scoped fixtures run in its scope, and what
    they do to the default scope (a Runner built in one sets its own) ends
    with the module: autouse fixtures of a scope are set up before, and
    torn down after, the others of that scope."""
    with _default_scope_of(request.path):
        yield


@pytest.fixture(autouse=True)
def _restore_default_scope(request):
    """Each test starts in its module's scope and leaves mmengine's default
    scope as it found it: a test that sets 'mmseg' must not change how a
    later test's bare type names resolve (the tests run in any order, and
    in parallel workers)."""
    with _default_scope_of(request.path):
        yield


# The test files that take longest, longest first (measured with
# `make test PYTEST_ARGS=--durations=0`). `make test` hands whole files to
# two xdist workers in collection order (--no-loadscope-reorder): starting
# the long files first and letting the short ones fill in keeps one worker
# from running a long file alone at the end.
SLOWEST_FIRST = (
    'tools/test_gpu_check.py',
    'tools/test_demo.py',
    'engine/test_distributed.py',
    'deploy/test_onnx_export.py',
    'engine/test_torchvision_det_finetune.py',
    'deploy/test_fuse.py',
    'tools/test_host_tools.py',
    'models/test_lraspp_configs.py',
    'datasets/test_segmentation_data.py',
    'engine/test_torchvision_finetune.py',
    'models/test_backbones.py',
    'tools/test_bad_input_round2.py',
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    here = osp.dirname(osp.abspath(__file__))
    items.sort(key=lambda item: rank.get(
        osp.relpath(str(item.path), here), len(rank)))


def _manager_classes():
    """mmengine's ManagerMixin classes (loggers, message hubs, visualizers,
    default scopes): each keeps its named instances in ``_instance_dict``."""
    from mmengine.utils import ManagerMixin
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@contextlib.contextmanager
def restored_process_state():
    """Undo what a tool run in this process leaves behind: mmengine's named
    loggers, message hubs, visualizers and default scopes (a later test's
    ``print_log``, or crash report, would go to this run's log), the
    environment (``LOCAL_RANK``...), ``sys.argv``, torch's and OpenCV's
    thread counts and the RNG states the runner seeds."""
    import random
    import sys

    import cv2
    import numpy as np
    managers = {cls: cls._instance_dict.copy() for cls in _manager_classes()
                if '_instance_dict' in vars(cls)}
    environ, threads = dict(os.environ), torch.get_num_threads()
    cv2_threads = cv2.getNumThreads()  # mmengine's setup_env sets 0
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    saved_argv = sys.argv
    try:
        yield
    finally:
        sys.argv = saved_argv
        for cls in _manager_classes():  # also classes the run imported
            if '_instance_dict' not in vars(cls):
                continue
            instances = managers.get(cls, {})
            for name in set(cls._instance_dict) - set(instances):
                for handler in getattr(cls._instance_dict[name], 'handlers',
                                       []):
                    handler.close()  # the run's log file
            cls._instance_dict.clear()
            cls._instance_dict.update(instances)
        os.environ.clear()
        os.environ.update(environ)
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])


def run_in_process(main, argv, capsys, prog):
    """``main(argv)`` as a tool's ``__main__`` runs it
    (:func:`mobilenet_mm.apis.run_cli`, ``sys.argv[0]`` = ``prog``, so its
    messages start ``PROG: error:``), under :func:`restored_process_state`:
    returns (exit status, non-empty stderr lines). ``sys.exit('message')``
    is printed with status 1, as the interpreter does; an argparse usage
    error (``sys.exit(2)``) raises SystemExit. Keep one subprocess test per
    tool for what only a real terminal shows (output of imports and
    workers)."""
    import sys

    from mobilenet_mm.apis import run_cli
    argv = [str(a) for a in argv]
    capsys.readouterr()
    with restored_process_state():
        sys.argv = [str(prog)] + argv
        try:
            status = run_cli(main, argv)
        except SystemExit as exit_:
            if not isinstance(exit_.code, str):
                raise
            # sys.exit('message'): the interpreter prints it, status 1.
            print(exit_.code, file=sys.stderr)
            status = 1
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip()]
    return status, err


def run_tool_in_process(tool, argv, capsys):
    """``python tools/TOOL argv`` (``tool`` relative to tools/, e.g.
    ``'train.py'``) in this process: :func:`run_in_process` of its
    ``main``."""
    import importlib
    module = importlib.import_module(
        osp.splitext(osp.relpath(osp.join(TOOLS, tool), REPO))[0].replace(
            osp.sep, '.'))
    return run_in_process(module.main, argv, capsys, osp.join(TOOLS, tool))


@pytest.fixture(scope='module')
def fast_host_base_lookup():
    """In this process, for a module's tests: mmengine resolves each
    ``mmdet::_base_/...`` / ``mmseg::_base_/...`` by parsing all of the
    host's ~100 metafiles (seconds), only to fall back to the ``_base_``
    path (base files have no metafile entry); skipping that search for
    ``_base_/`` paths gives the same file at once. Subprocesses keep
    mmengine's own lookup."""
    import mmengine.config.config as mm_config
    original = mm_config._get_external_cfg_path

    def lookup(package_path, cfg_file):
        if cfg_file.startswith('_base_/'):
            raise ValueError(cfg_file)  # mmengine's fallback: the base path
        return original(package_path, cfg_file)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mm_config, '_get_external_cfg_path', lookup)
        yield


@pytest.fixture(scope='module')
def unformatted_config_text():
    """In this process, for a module's tests: a Runner formats its config
    with yapf to log and dump it (four times, seconds per run); here the
    text stays unformatted (the same config). Subprocesses format it."""
    import mmengine.config.config as mm_config
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mm_config, 'FormatCode',
                      lambda text, style_config=None: (text, False))
        yield
