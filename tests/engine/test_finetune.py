"""Segmentation fine-tuning: (a) from ImageNet weights converted from
torchvision/timm, (b) from a trained LR-ASPP checkpoint onto a data set with
other classes (backbone kept, class layers fresh, dropped keys logged)."""
import glob
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from mobilenet_mm.datasets import generate_cityscapes_segmentation
from mobilenet_mm.engine.finetune import (FinetuneHook, class_layer_names,
                                          load_for_finetune)

CITYSCAPES = ('configs/lraspp/lraspp_mobilenetv3-large-rf2-d16_4xb4-90k_'
              'cityscapes-769x769.py')
IMAGENET = ('configs/lraspp/lraspp_mobilenetv3-large-d16-imagenet_4xb4-90k_'
            'cityscapes-769x769.py')
CUSTOM = ('configs/lraspp/lraspp_mobilenetv3-large-rf2-d16-finetune_4xb8-20k_'
          'custom-512x512.py')
CLASS_KEYS = ['decode_head.conv_seg.weight', 'decode_head.conv_seg.bias',
              'decode_head.conv_seg_low.weight',
              'decode_head.conv_seg_low.bias']


@pytest.fixture(autouse=True)
def one_thread():
    # A shared 2-core machine: torch's thread pool makes small runs crawl.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(cfg):
    from mobilenet_mm.analysis.model_stats import build_model_from_config
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    from mmengine.model import revert_sync_batchnorm
    return revert_sync_batchnorm(build_model_from_config(cfg))


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Every tensor random, so equal values can only come from loading."""
    gen = torch.Generator().manual_seed(seed)
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
    return model


def save(model, path):
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=90000)),
               path)
    return str(path)


# -- (a) ImageNet weights ---------------------------------------------------
def test_backbone_from_torchvision_imagenet_weights(tmp_path):
    from mmengine.logging import MMLogger
    log_file = str(tmp_path / 'init.log')
    MMLogger.get_instance('finetune_imagenet', log_file=log_file)
    import torchvision
    reference = randomize(torchvision.models.mobilenet_v3_large(), seed=1)
    path = str(tmp_path / 'mobilenet_v3_large-8738ca79.pth')
    torch.save(reference.state_dict(), path)  # stands in for the download

    cfg = Config.fromfile(IMAGENET)
    cfg.model.backbone.init_cfg.checkpoint = path
    model = build(cfg)
    model.init_weights()

    ours = [(k, v) for k, v in model.backbone.state_dict().items()
            if not k.endswith('num_batches_tracked')]
    theirs = [(k, v) for k, v in reference.state_dict().items()
              if k.startswith('features.')
              and not k.endswith('num_batches_tracked')]
    assert len(ours) == len(theirs)
    for (our_key, ours_value), (key, value) in zip(ours, theirs):
        assert torch.equal(ours_value, value), (our_key, key)
    # The head is not in the ImageNet file: it keeps its own init.
    assert model.decode_head.conv_seg.weight.abs().max() < 0.1
    assert 'dropped classifier keys: classifier.0.weight' in open(
        log_file).read()
    # BN eps of the reference, so the loaded statistics mean the same.
    norms = [m for m in model.backbone.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.eps == 1e-3 for m in norms)


def test_imagenet_weights_do_not_fit_the_reduced_tail(tmp_path):
    # Why the ImageNet config keeps the full tail: RF2 halves the last
    # stage, which no ImageNet checkpoint has.
    import torchvision
    path = str(tmp_path / 'tv.pth')
    torch.save(torchvision.models.mobilenet_v3_large().state_dict(), path)
    cfg = Config.fromfile(CITYSCAPES)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=path)
    model = build(cfg)
    with pytest.raises(ValueError, match='does not fit'):
        model.init_weights()


# -- (b) a trained LR-ASPP onto other classes ------------------------------
@pytest.fixture(scope='module')
def trained_checkpoint(tmp_path_factory):
    """A "trained" 19-class Cityscapes LR-ASPP: random values everywhere."""
    torch.set_num_threads(1)
    model = randomize(build(CITYSCAPES), seed=2)
    path = tmp_path_factory.mktemp('ckpt') / 'iter_90000.pth'
    return save(model, path), model.state_dict()


def test_class_layer_names():
    model = build(CUSTOM)
    assert class_layer_names(model) == ['decode_head.conv_seg',
                                        'decode_head.conv_seg_low']


@pytest.mark.parametrize('num_classes', [3, 19])
def test_load_for_finetune_keeps_all_but_the_class_layers(
        trained_checkpoint, num_classes):
    path, source = trained_checkpoint
    cfg = Config.fromfile(CUSTOM)
    cfg.model.decode_head.num_classes = num_classes
    model = build(cfg)
    model.init_weights()
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    result = load_for_finetune(model, path, logger='silent')

    assert sorted(result.dropped) == sorted(CLASS_KEYS)
    assert result.missing == [] and result.unused == []
    state = model.state_dict()
    for key, value in state.items():
        if key in CLASS_KEYS:
            # Not the checkpoint's, even where the shapes agree (19 -> 19
            # classes of another data set): the fresh initialisation.
            assert torch.equal(value, fresh[key]), key
            assert value.shape[0] == num_classes
        else:
            assert torch.equal(value, source[key]), key
    assert len(result.loaded) == len(state) - len(CLASS_KEYS)


def test_architecture_mismatch_is_refused(trained_checkpoint):
    path, _ = trained_checkpoint
    model = build('configs/lraspp/lraspp_mobilenetv3-small-rf2-d16_4xb4-90k_'
                  'cityscapes-769x769.py')
    with pytest.raises(ValueError, match='not a class layer'):
        load_for_finetune(model, path, logger='silent')


def test_explicit_class_layers_and_state_dict_input(trained_checkpoint):
    _, source = trained_checkpoint
    model = build(CITYSCAPES)
    result = load_for_finetune(model, dict(source),
                               class_layers=['decode_head.conv_seg_low'],
                               logger='silent')
    assert sorted(result.dropped) == sorted(CLASS_KEYS[2:])
    assert torch.equal(model.decode_head.conv_seg.weight,
                       source['decode_head.conv_seg.weight'])


@pytest.fixture(scope='module')
def custom_data(tmp_path_factory):
    """A user data set in the custom config's layout (images/, labels/),
    from the synthetic Cityscapes generator (its ids >= 3 are ignored)."""
    root = str(tmp_path_factory.mktemp('my_dataset'))
    source = generate_cityscapes_segmentation(
        osp.join(root, 'src'), num_train=4, num_val=1, size=(64, 128))
    for split in ('train', 'val'):
        for folder, kind in (('leftImg8bit', 'images'), ('gtFine',
                                                         'labels')):
            os.makedirs(osp.join(root, kind, split))
            for path in glob.glob(osp.join(source, folder, split, '*',
                                           '*.png')):
                name = osp.basename(path).replace(
                    '_leftImg8bit', '').replace('_gtFine_labelTrainIds', '')
                os.rename(path, osp.join(root, kind, split, name))
    return root


def test_custom_dataset_config_trains_with_the_hook(trained_checkpoint,
                                                    custom_data, tmp_path):
    """The custom config as a user runs it: one iteration at learning rate
    0, so the weights after the run are what the hook loaded."""
    from mmengine.runner import Runner
    path, source = trained_checkpoint
    cfg = Config.fromfile(CUSTOM)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.custom_hooks[0].checkpoint = path
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = custom_data
        loader.dataset.img_suffix = '.png'
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    cfg.crop_size = (64, 64)
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.train_dataloader.dataset.pipeline[2].scale = (128, 64)
    cfg.train_dataloader.dataset.pipeline[3].crop_size = (64, 64)
    cfg.optim_wrapper.optimizer.lr = 0.
    cfg.train_cfg.max_iters = 1
    cfg.param_scheduler = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1,
                                        save_last=False)
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    runner.train()

    hook = [h for h in runner.hooks if isinstance(h, FinetuneHook)][0]
    assert sorted(hook.result.dropped) == sorted(CLASS_KEYS)
    params = dict(runner.model.named_parameters())
    for key, value in params.items():
        if key in CLASS_KEYS:
            assert value.shape[0] == 3
        else:
            assert torch.equal(value.detach(), source[key]), key
    log = open(glob.glob(osp.join(cfg.work_dir, '*', '*.log'))[0]).read()
    assert ('dropped checkpoint keys: ' + ', '.join(CLASS_KEYS)) in log


def test_hook_leaves_a_resumed_run_alone(trained_checkpoint):
    path, source = trained_checkpoint

    class Runner:
        iter = 500
        model = build(CUSTOM)
        messages = []

        class logger:
            @staticmethod
            def info(msg):
                Runner.messages.append(msg)

    before = {k: v.clone() for k, v in Runner.model.state_dict().items()}
    hook = FinetuneHook(path)
    hook.before_train(Runner)
    assert hook.result is None
    assert 'resumed at iteration 500' in Runner.messages[0]
    for key, value in Runner.model.state_dict().items():
        assert torch.equal(value, before[key])


def test_hook_needs_a_checkpoint_path():
    with pytest.raises(ValueError, match='checkpoint'):
        FinetuneHook('')
