"""A fork server for the tests' tool runs (``tests.conftest.run_tool``).

Started once per pytest process as a fresh interpreter, it imports what
every tool imports (torch, mmengine, mmcv, mmdet, mmseg and mobilenet_mm:
about 8 s of CPU on the 2-core test machine, most of a small tool test's
time), then reads one request per line on stdin (JSON: argv, cwd, env,
stdout and stderr file names; stderr None: to stdout's file). For each it
forks a child that runs
``argv[0]`` as ``__main__`` the way ``python SCRIPT ARGS`` would, answers
``{"pid": N}`` when the child starts and ``{"status": S}`` (a waitpid
status) when it has ended.

The children are forks of this clean interpreter, not of pytest: no test
state (warning recorders, loggers, default scopes, captured streams) comes
with them. What they do not repeat is only the imports above.
"""
import io
import json
import os
import os.path as osp
import runpy
import signal
import sys

import mobilenet_mm  # noqa: F401  (torch, mmengine, mmcv, mmdet, mmseg)


def run_child(request: dict) -> None:
    """In the forked child: become ``python SCRIPT ARGS`` and exit."""
    code = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        os.dup2(os.open(request['stdout'], flags), 1)
        os.dup2(os.open(request['stderr'], flags) if request['stderr']
                else 1, 2)  # None: stderr to stdout's file (2>&1)
        sys.stdin = open(0, closefd=False)
        sys.stdout = io.TextIOWrapper(open(1, 'wb', closefd=False),
                                      line_buffering=True)
        sys.stderr = io.TextIOWrapper(open(2, 'wb', closefd=False),
                                      line_buffering=True)
        sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        script = osp.abspath(request['argv'][0])
        sys.path[:0] = [osp.dirname(script)] + [
            p for p in request['env'].get('PYTHONPATH', '').split(os.pathsep)
            if p]
        sys.argv = list(request['argv'])
        runpy.run_path(script, run_name='__main__')
        code = 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:  # sys.exit('message'), as the interpreter prints it
            print(exit_.code, file=sys.stderr)
    except BaseException:  # noqa: B902  (the interpreter's last resort)
        import traceback
        traceback.print_exc()
    finally:
        try:
            import logging
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def answer(message: dict) -> None:
    sys.__stdout__.write(json.dumps(message) + '\n')
    sys.__stdout__.flush()


def serve() -> None:
    replies = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the replies
    sys.__stdout__ = replies
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            run_child(request)
        answer(dict(pid=pid))
        _, status = os.waitpid(pid, 0)
        answer(dict(status=status))


if __name__ == '__main__':
    # The server itself is stopped by closing its stdin; SIGINT from a
    # terminal's Ctrl-C should reach the children, not kill the server
    # between requests.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answer(dict(ready=True))
    serve()
