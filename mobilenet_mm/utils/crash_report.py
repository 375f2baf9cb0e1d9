"""An unexpected error in a tool: one line on the terminal, the traceback in
a file.

The tools' known errors (bad command line, config, data or checkpoint) are
one line already (:func:`mobilenet_mm.apis.cli.run_cli`). Anything else
used to end in a wall of traceback that hid the line that matters. Here it
ends in ``PROG: error: unexpected TYPE: MESSAGE (full traceback: FILE)``:

* FILE is the run's log file in the work dir (mmengine's
  ``WORK_DIR/<timestamp>/<timestamp>.log``) when the runner has started
  one; the traceback is appended to it through the logger's file handler
  only, so the terminal stays clean;
* before that, a new file ``<tmp>/PROG-traceback-*.log``.

Set ``MOBILENET_MM_TRACEBACK=1`` to get the plain traceback instead (for
debugging the tools themselves).
"""
import logging
import os
import sys
import tempfile
import traceback
from typing import Optional

TRACEBACK_ENV = 'MOBILENET_MM_TRACEBACK'
_MAX_MESSAGE = 300  # characters of the error message on the terminal


def wants_plain_traceback() -> bool:
    return os.environ.get(TRACEBACK_ENV, '') not in ('', '0')


def _run_log_handlers():
    """The file handlers of mmengine's current logger, if a runner made
    one with a log file (mmengine is not imported for this)."""
    logging_mod = sys.modules.get('mmengine.logging')
    if logging_mod is None:
        return None, []
    logger_cls = logging_mod.MMLogger
    if not logger_cls._instance_dict:  # no logger yet: do not create one
        return None, []
    logger = logger_cls.get_current_instance()
    log_file = getattr(logger, 'log_file', None)
    handlers = [
        h for h in logger.handlers if isinstance(h, logging.FileHandler)
    ]
    return log_file, handlers


def write_traceback(error: BaseException, prog: str) -> Optional[str]:
    """Write the traceback of ``error``; return the file it went to (None
    when no file could be written)."""
    text = ''.join(
        traceback.format_exception(type(error), error, error.__traceback__))
    log_file, handlers = _run_log_handlers()
    if log_file and handlers:
        record = logging.LogRecord('mobilenet_mm', logging.ERROR, __file__, 0,
                                   f'{prog} stopped on an unexpected error:'
                                   f'\n{text}', None, None)
        try:
            for handler in handlers:
                handler.emit(record)
                handler.flush()
            return log_file
        except (OSError, ValueError):  # a closed or unwritable log file
            pass
    try:
        fd, path = tempfile.mkstemp(prefix=f'{prog}-traceback-',
                                    suffix='.log')
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        return path
    except OSError:
        return None


def crash_line(error: BaseException, prog: str, message: str) -> str:
    """The one line for ``error`` (``message`` is its one-line text), after
    writing its traceback."""
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + '...'
    path = write_traceback(error, prog)
    where = (f'full traceback: {path}' if path else
             f'set {TRACEBACK_ENV}=1 for the traceback')
    return (f'{prog}: error: unexpected {type(error).__name__}: {message} '
            f'({where})')
