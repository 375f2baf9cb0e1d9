"""Hooks used by the tools."""
from typing import Optional, Sequence

import numpy as np
from mmengine.dist import collect_results, is_main_process
from mmengine.fileio import dump
from mmengine.hooks import Hook

from ..registry import HOOKS


@HOOKS.register_module()
class DumpSegPredictionsHook(Hook):
    """Pickle the segmentation predictions of a test run
    (``tools/test.py CONFIG CKPT --out FILE.pkl`` on an mmseg config).

    One dict per image, in data set order: ``img_path``, ``seg_map_path``,
    ``ori_shape`` and ``pred_sem_seg`` (an ``(H, W)`` numpy array of class
    indices at the original image size; uint8 when the classes fit, else
    int32). Logits are left out: at Cityscapes size they take about
    160 MB per image.
    """

    priority = 'LOW'

    def __init__(self, out_file: str):
        if not isinstance(out_file, str) or not out_file.endswith(
                ('.pkl', '.pickle')):
            raise ValueError(
                f'out_file must end with .pkl or .pickle, got {out_file!r}')
        self.out_file = out_file
        self.results: list = []

    def before_test_epoch(self, runner) -> None:
        self.results = []

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        for sample in outputs or ():
            label = sample.pred_sem_seg.data.squeeze(0).cpu().numpy()
            fits = label.size == 0 or (label.min() >= 0 and label.max() < 256)
            self.results.append(
                dict(
                    img_path=sample.metainfo.get('img_path'),
                    seg_map_path=sample.metainfo.get('seg_map_path'),
                    ori_shape=sample.metainfo.get('ori_shape'),
                    pred_sem_seg=label.astype(
                        np.uint8 if fits else np.int32)))

    def after_test_epoch(self, runner, metrics=None) -> None:
        # Gather every rank's share in data set order (DefaultSampler).
        results = collect_results(self.results,
                                  len(runner.test_dataloader.dataset))
        if is_main_process():
            dump(results, self.out_file)  # atomic, see checkpoint_io
            runner.logger.info(f'predictions written to {self.out_file}')
        self.results = []
