"""Test-only (imported through ``custom_imports`` by
tests/engine/test_checkpoint_order.py): makes the write of one checkpoint file
fail or stall, as a full disk or a kill during the write would.

``MOBILENET_MM_TEST_CKPT_FAULT`` selects the file and the fault:

* ``enospc:iter_4.pth``: the write raises ``OSError(ENOSPC)``;
* ``stall:iter_4.pth``: half the bytes go into the writer's hidden
  temporary file (the name :func:`mobilenet_mm.utils.atomic_write` uses),
  then the process sleeps until the test kills it.
"""
import errno
import os
import os.path as osp
import tempfile
import time

from mobilenet_mm.engine import checkpoint_io

FAULT_ENV = 'MOBILENET_MM_TEST_CKPT_FAULT'
_real_put = checkpoint_io.AtomicLocalBackend.put


def _faulty_put(self, obj, filepath):
    kind, _, name = os.environ.get(FAULT_ENV, '').partition(':')
    path = str(filepath)
    if name and osp.basename(path) == name:
        if kind == 'enospc':
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        if kind == 'stall':
            fd, _ = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp',
                                     dir=osp.dirname(path))
            os.write(fd, obj[:len(obj) // 2])
            os.fsync(fd)
            time.sleep(600)  # the test kills the process here
    return _real_put(self, obj, filepath)


checkpoint_io.AtomicLocalBackend.put = _faulty_put
