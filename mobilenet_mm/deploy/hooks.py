"""Runner hook behind ``tools/test.py --fuse``."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..registry import HOOKS
from .fuse import fuse_conv_bn


@HOOKS.register_module()
class FuseConvBNHook(Hook):
    """Fold every conv + BN of the model before testing.

    ``before_test`` runs after the runner has loaded the checkpoint, so the
    folded weights are the checkpoint's. Registered as
    ``mobilenet_mm.FuseConvBNHook``; ``tools/test.py --fuse`` adds it to
    ``custom_hooks``.
    """

    priority = 'VERY_HIGH'  # before any other hook looks at the model

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        fuse_conv_bn(model)
        runner.logger.info(
            f'FuseConvBNHook: folded {model.fused_bn_count} batch norms into '
            'their convs for testing')
