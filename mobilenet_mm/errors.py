"""The errors a user fixes, in one place.

Every error whose message says all the user needs (a bad command line or
config, a checkpoint that cannot be loaded, bad data, a non-finite loss) is
a :class:`UserError`. The tools catch exactly that class
(:func:`mobilenet_mm.apis.cli.run_cli`) and print the message as one line
with exit status 1; any other exception is a bug and keeps its traceback.
The subclasses also derive from the built-in type callers already expect
(``ValueError``, ``FileNotFoundError``, ``RuntimeError``...), so code that
catches those keeps working.

This module imports nothing of the package, so any module can raise these
without an import cycle.
"""
import pickle

__all__ = [
    'UserError', 'CLIError', 'CheckpointLoadError', 'CheckpointMismatchError',
    'CheckpointSaveError', 'UnsafeCheckpointError',
    'CocoDataError', 'ImageLoadError', 'SegLabelError', 'MissingLabelError',
    'LabelSizeError', 'LabelRangeError', 'NonFiniteLossError', 'OnnxExportError',
    'CalibrationDataError'
]


class UserError(Exception):
    """An error the user fixes; its message is one line naming what was
    wrong and what is allowed."""


class CLIError(UserError):
    """An error the user fixes by changing the command line or config."""


# -- checkpoints (mobilenet_mm.utils.checkpoint) ------------------------------
class CheckpointLoadError(UserError, RuntimeError):
    """A checkpoint file cannot be read (truncated, not a checkpoint...)."""


class CheckpointMismatchError(CheckpointLoadError, ValueError):
    """A checkpoint that loads but does not fit the model."""


class CheckpointSaveError(UserError, RuntimeError):
    """A checkpoint could not be saved (disk full, ...); the message says
    which checkpoint is kept."""


class UnsafeCheckpointError(CheckpointLoadError, pickle.UnpicklingError):
    """A checkpoint needs a global that is not on the allow-list."""

    def __init__(self, path: str, disallowed: str):
        self.path = path
        self.disallowed = disallowed
        super().__init__(
            f'refusing to load checkpoint {path}: it needs {disallowed}, '
            'which is not among the types mmengine checkpoints hold (nothing '
            'from the file was run; load it with torch.load(weights_only='
            'False) only if you trust its source)')


# -- data (mobilenet_mm.datasets) ---------------------------------------------
class CocoDataError(CLIError, ValueError):
    """Bad COCO-format detection data or a config that does not fit it."""


class ImageLoadError(CLIError):
    """An image file that is missing, empty, corrupted or truncated."""


class SegLabelError(UserError):
    """A label file that cannot be used; the message names it."""


class MissingLabelError(SegLabelError, FileNotFoundError):
    """The label file of an image does not exist."""


class LabelSizeError(SegLabelError, ValueError):
    """A label map whose size is not its image's size."""


class LabelRangeError(SegLabelError, ValueError):
    """A label map with ids that do not fit mmseg's 8-bit labels."""


# -- deployment (mobilenet_mm.deploy) ------------------------------------------
class OnnxExportError(UserError, ValueError):
    """An ONNX file that is not one of our exports, or not of this config."""


class CalibrationDataError(UserError, ValueError):
    """No usable calibration images (missing loader, empty data set)."""


# -- training (mobilenet_mm.engine.nan_guard) ---------------------------------
class NonFiniteLossError(UserError, RuntimeError):
    """The training loss was NaN or infinite; the message names the
    iteration."""
