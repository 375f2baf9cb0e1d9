"""The command-line protocol of the tools (``tools/train.py``,
``tools/test.py``, ``tools/demo.py``, ``tools/deploy/export_onnx.py``).

Bad input from the command line or the config ends in one line on stderr and
exit status 1 (argparse's usage errors: 2), never a traceback: the checks
run before the expensive parts and raise a
:class:`~mobilenet_mm.errors.UserError` with the message; :func:`run_cli`
prints it. Each message names the bad value and where it came from. Errors
met later (a bad image or label file inside the data loader, a NaN loss)
are printed the same way.
"""
import argparse
import os.path as osp
import re
import sys
import warnings
from typing import Callable, Optional, Sequence

from ..errors import UserError

__all__ = [
    'run_cli', 'one_line', 'destroy_process_group', 'parse_size',
    'positive_int'
]


def run_cli(main: Callable[[Optional[Sequence[str]]], int],
            argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; a :class:`~mobilenet_mm.errors.UserError` (bad
    command line, config, data or checkpoint, a non-finite loss) becomes
    one line on stderr and exit status 1, and so does any other error, with
    a pointer to its full traceback (:mod:`mobilenet_mm.utils.crash_report`;
    ``MOBILENET_MM_TRACEBACK=1`` re-raises it); Ctrl-C exits with 130."""
    # setuptools < 81 is pinned on purpose (mmengine resolves ``mmdet::``
    # bases with pkg_resources); its deprecation notice on every run would
    # bury the one line that matters.
    warnings.filterwarnings(
        'ignore', message='pkg_resources is deprecated', category=UserWarning)
    prog = osp.basename(sys.argv[0]) or 'mobilenet_mm'
    try:
        return main(argv) or 0
    except KeyboardInterrupt:
        print(f'{prog}: interrupted', file=sys.stderr)
        return 130
    except UserError as e:
        print(f'{prog}: error: {one_line(e)}', file=sys.stderr)
        return 1
    except Exception as e:  # noqa: B902  (every error ends in one line)
        from ..utils import crash_report
        if crash_report.wants_plain_traceback():
            raise
        print(crash_report.crash_line(e, prog, one_line(e)), file=sys.stderr)
        return 1
    finally:
        destroy_process_group()


def destroy_process_group() -> None:
    """Shut the default process group down, if one was started.

    Gloo's worker threads must stop while the interpreter is still alive: a
    process that exits with the group up can abort at finalisation
    (SIGABRT, "terminate called without an active exception"), which turns
    a finished distributed run into a failed one.
    """
    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


_WORKER_PREFIX = re.compile(r'^[\w.]+: ')


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line.

    An error raised in a data loader worker reaches the main process with
    torch's wrapper text ("Caught X in DataLoader worker process 0",
    "Original Traceback ...") in front of it; the original message is the
    last line, after the exception's qualified name.
    """
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if 'Original Traceback' in text and lines:
        return _WORKER_PREFIX.sub('', lines[-1].strip(), count=1)
    return ' '.join(line.strip() for line in lines)


# -- argparse types of the analysis tools -----------------------------------
def parse_size(text: str):
    """``HxW`` (e.g. ``224x224``) as ``(H, W)``; anything else is argparse's
    one-line usage error."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size {text!r} is not HxW (e.g. 224x224)')
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'size {text!r} must be positive')
    return height, width


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text} is not a positive integer')
    return value
