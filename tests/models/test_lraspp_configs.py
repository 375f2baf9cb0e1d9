"""The LR-ASPP / R-ASPP configs: they build our modules with consistent
channels, run the schedule they claim, and match [V3] Table 7 where our
backbone allows (params and MAdds at 1024x2048, 19 classes)."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from mobilenet_mm.analysis import (count_madds, count_params,
                                   segmentor_madds)
from mobilenet_mm.analysis.paper_tables import task_rows
from mobilenet_mm.models.decode_heads import LRASPPHead, RASPPHead

from tests.conftest import REPO

CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'lraspp', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'demo', 'lraspp_*.py')))
NAMES = [osp.splitext(osp.basename(c))[0] for c in CONFIGS]
CS = '_4xb4-90k_cityscapes-769x769'  # the Cityscapes configs' schedule

# Iterations each config claims (its comments and configs/lraspp/README.md).
CLAIMED_ITERS = {name: 90000 for name in NAMES}
CLAIMED_ITERS.update({
    'lraspp_mobilenetv3-large-rf2-d16-finetune_4xb8-20k_custom-512x512': 20000,
    'lraspp_mobilenetv3-large-rf2-d16_1xb8-250iter_synthetic-cityscapes-'
    '128x256': 250,
    'lraspp_mobilenetv3-large-d16-torchvision_8xb4-40k_voc12-480x480': 40000,
    'lraspp_mobilenetv3-large-d16-torchvision-finetune_1xb8-10k_custom-'
    '480x480': 10000})


def table_7():
    """[V3] Table 7 as configs/lraspp/metafile.yml gives it: row ->
    (config, params M, MAdds B at 1024x2048)."""
    rows = {}
    for row in task_rows():
        found = re.fullmatch(r'\[V3\] Tab 7 row (\d+)', row.source)
        if found:
            rows[int(found[1])] = (row.config, row.params_m.value,
                                   row.madds_g.value)
    return rows


PAPER = table_7()
# What the configs measure (configs/lraspp/README.md): params M, MAdds B. MAdds
# follow Table 7's convention, up to logits at full resolution (convs plus
# bilinear resizes, mobilenet_mm.analysis.segmentor_madds).
MEASURED = {
    1: (2.113, 20.995),
    4: (0.984, 12.400),
    5: (3.601, 17.958),
    8: (1.507, 9.548),
    11: (0.469, 2.910),
}
# [V3] Table 8: the same models at output stride 32 (last block not
# atrous), MAdds B at 1024x2048.
PAPER_OS32 = {'lraspp_mobilenetv3-large-rf2-d16' + CS: 7.74,
              'lraspp_mobilenetv3-small-rf2-d16' + CS: 2.06}


def test_table_7_rows_come_from_the_metafile():
    assert PAPER == {
        1: ('raspp_mobilenetv2-d16' + CS, 2.11, 21.29),
        4: ('lraspp_mobilenetv2-rf2-d16' + CS, 0.98, 12.57),
        5: ('raspp_mobilenetv3-large-d16' + CS, 3.60, 18.43),
        8: ('lraspp_mobilenetv3-large-rf2-d16' + CS, 1.51, 9.74),
        11: ('lraspp_mobilenetv3-small-rf2-d16' + CS, 0.47, 2.90),
    }


def config_path(name):
    return CONFIGS[NAMES.index(name)]


def build_model(cfg):
    from mobilenet_mm.analysis.model_stats import build_model_from_config
    return build_model_from_config(cfg)


def stats(model, shape=(1024, 2048)):
    """Params and MAdds of one full-size forward, on the meta device (no
    memory, no compute: shapes only)."""
    model = model.to('meta')
    image = torch.zeros(1, 3, *shape, device='meta')
    return count_params(model), segmentor_madds(model, image)


def within(measured, paper, tolerance=0.03):
    return abs(measured - paper) <= tolerance * paper


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- every config ---------------------------------------------------------
@pytest.mark.parametrize('path', CONFIGS, ids=NAMES)
def test_config_builds_our_head_with_the_backbone_channels(path):
    cfg = Config.fromfile(path)
    assert 'mobilenet_mm' in cfg.custom_imports['imports']
    assert cfg.model.decode_head.type.startswith('mobilenet_mm.')
    assert cfg.model.backbone.type.startswith('mobilenet_mm.')
    model = build_model(cfg)
    head = model.decode_head
    assert type(head) in (LRASPPHead, RASPPHead)
    channels = model.backbone.out_channels
    index = head.in_index if isinstance(head.in_index, (list, tuple)) else [
        head.in_index]
    declared = head.in_channels if isinstance(
        head.in_channels, (list, tuple)) else [head.in_channels]
    assert [channels[i] for i in index] == list(declared)
    strides = [model.backbone.out_strides[i] for i in index]
    assert strides == ([8, 16] if type(head) is LRASPPHead else [16])
    # NHWC on the CPU (faster there, see docs/performance.md).
    assert model.backbone.channels_last == 'cpu'
    # A real forward (meta device): logits at 1/8 (LR-ASPP) or 1/16.
    model = model.to('meta').eval()
    out = model(torch.zeros(1, 3, 256, 512, device='meta'), mode='tensor')
    assert out.shape == (1, head.num_classes, 256 // strides[0],
                         512 // strides[0])


@pytest.mark.parametrize(
    'path', [c for c in CONFIGS if osp.sep + 'demo' + osp.sep not in c],
    ids=lambda path: osp.splitext(osp.basename(path))[0])
def test_evaluated_at_1024x2048_with_iou_metric(path):
    cfg = Config.fromfile(path)
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert cfg.model.test_cfg.mode == 'whole'
    resize = [s for s in cfg.test_pipeline if s['type'] == 'Resize']
    if '-torchvision_' in path:  # Pascal VOC, shorter side 520
        assert resize[0]['scale'] == (2048, 520)
        assert cfg.val_dataloader.dataset.data_root == 'data/VOCdevkit/VOC2012'
    elif 'custom' not in path:
        assert resize[0]['scale'] == (2048, 1024)
        assert cfg.val_dataloader.dataset.data_root == 'data/cityscapes/'


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
    from mobilenet_mm.datasets import generate_cityscapes_segmentation
    return generate_cityscapes_segmentation(
        str(tmp_path_factory.mktemp('cs')), num_train=2, num_val=1,
        size=(64, 128))


@pytest.mark.parametrize('path', CONFIGS, ids=NAMES)
def test_built_train_loop_runs_the_claimed_iterations(path, synthetic_root,
                                                      tmp_path):
    """mmseg 1.x ignores a legacy ``runner=`` key: read what the Runner
    builds, and check that the poly schedule ends with it."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(path)
    assert 'runner' not in cfg
    name = osp.splitext(osp.basename(path))[0]
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[key].dataset
        dataset.data_root = synthetic_root
        if dataset.type == 'mobilenet_mm.VOCSegmentation':  # torchvision's
            dataset.type = 'mobilenet_mm.FolderSegmentation'
            dataset.pop('ann_file')
        if dataset.type == 'mobilenet_mm.FolderSegmentation':  # custom data
            split = 'train' if key == 'train_dataloader' else 'val'
            dataset.data_prefix = dict(img_path=f'leftImg8bit/{split}',
                                       seg_map_path=f'gtFine/{split}')
            dataset.img_suffix = '_leftImg8bit.png'
            dataset.seg_map_suffix = '_gtFine_labelTrainIds.png'
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    loop = runner.build_train_loop(runner._train_loop)
    assert loop.max_iters == CLAIMED_ITERS[name]
    poly = [s for s in cfg.param_scheduler if s['type'] == 'PolyLR']
    assert poly[-1]['end'] == loop.max_iters


def test_readme_states_the_claimed_iterations():
    readme = open(osp.join(REPO, 'configs', 'lraspp', 'README.md')).read()
    section = readme.split('<!-- segmentation: start -->')[1].split(
        '<!-- segmentation: end -->')[0]
    for name in NAMES:
        assert name in section, name
    for row, (name, params, madds) in PAPER.items():
        line = [ln for ln in section.splitlines()
                if f'`{name}`' in ln and ln.startswith('|')][0]
        measured = MEASURED[row]
        assert f'{measured[0]:.3f}' in line and f'{measured[1]:.3f}' in line
    assert '90k' in section and '20k' in section and '250' in section
    # The command that printed the figures.
    assert re.search(r'python tools/analysis/model_stats\.py configs/lraspp/'
                     r'lraspp_mobilenetv3-large-rf2-d16' + CS + r'\.py',
                     section)


# -- fidelity: [V3] Table 7 -------------------------------------------------
@pytest.mark.parametrize('row', sorted(PAPER))
def test_table_7_with_the_configs(row):
    """Params and MAdds within 3% of Table 7, pinned to the figures
    configs/lraspp/README.md shows."""
    name, paper_params, paper_madds = PAPER[row]
    params, madds = stats(build_model(Config.fromfile(config_path(name))))
    params, madds = params / 1e6, madds / 1e9
    expected_params, expected_madds = MEASURED[row]
    assert within(params, paper_params), params
    assert within(madds, paper_madds), madds
    assert abs(params - expected_params) < 5e-4
    assert abs(madds - expected_madds) < 5e-3


@pytest.mark.parametrize('name', sorted(PAPER_OS32))
def test_table_8_output_stride_32(name):
    """The counting convention holds at output stride 32 too."""
    cfg = Config.fromfile(config_path(name))
    cfg.model.backbone.output_stride = 32
    params, madds = stats(build_model(cfg))
    assert within(madds / 1e9, PAPER_OS32[name]), madds / 1e9


def test_table_7_needs_the_resizes():
    """Convs alone fall 4% short of row 8: Table 7 counts the network up
    to full-resolution logits, and the resizes are what the difference
    is (2x of F=128 channels to 1/8, then 8x of the 19 logits)."""
    model = build_model(Config.fromfile(
        config_path('lraspp_mobilenetv3-large-rf2-d16' + CS))).to('meta')
    image = torch.zeros(1, 3, 1024, 2048, device='meta')
    convs = count_madds(model, image, mode='tensor')
    assert not within(convs / 1e9, 9.74, 0.025)
    # Bilinear, 4 MAdds per output value: the gate (F=128 channels) to the
    # 64x128 map, the gated features to 1/8, the logits to 1024x2048.
    resizes = 4 * (128 * 64 * 128 + 128 * 128 * 256 + 19 * 1024 * 2048)
    assert segmentor_madds(model, image) == convs + resizes


PAPER_ROW_3 = (1.02, 12.83)  # V2, RF2, LR-ASPP with F=256 (no config)


def test_table_7_row_3_and_the_effect_of_f():
    """Row 3 is row 4's model with F=256: both match, and the paper's
    0.04M / 0.26B difference is the high-level conv at 1/16 plus the class
    conv at 1/8."""
    cfg = Config.fromfile(config_path('lraspp_mobilenetv2-rf2-d16' + CS))
    row4 = stats(build_model(cfg))
    cfg.model.decode_head.channels = 256
    row3 = stats(build_model(cfg))
    params3, madds3 = row3[0] / 1e6, row3[1] / 1e9
    assert within(params3, PAPER_ROW_3[0], 0.01), params3
    assert within(madds3, PAPER_ROW_3[1]), madds3
    assert abs((row3[0] - row4[0]) / 1e6 - 0.04) < 0.005
    assert abs((row3[1] - row4[1]) / 1e9 - 0.26) < 0.02


def test_meta_device_counts_equal_real_counts():
    cfg = Config.fromfile(config_path('lraspp_mobilenetv3-small-rf2-d16' + CS))
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(build_model(cfg))
    real = segmentor_madds(model, torch.zeros(1, 3, 128, 256))
    assert stats(model, (128, 256)) == (count_params(model), real)
