"""torchvision's trained SSDLite320-MobileNetV3 and LR-ASPP-MobileNetV3 in
our configs: built with random weights and random BatchNorm statistics,
saved as state dicts (what torchvision's URLs serve), converted through
tools/convert_weights.py and run through mmdet's / mmseg's own inference
APIs, the outputs equal torchvision's."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from tests.conftest import randomize_bn as randomize

from mobilenet_mm.analysis import count_params
from mobilenet_mm.models.torchvision_conversion import (COCO_UNASSIGNED_IDS,
                                                        coco91_columns,
                                                        coco_category_ids)

from tests.conftest import REPO as ROOT, run_tool  # noqa: E402
SSDLITE = osp.join(ROOT, 'configs', 'ssdlite',
                   'ssdlite_mobilenetv3-large-reduced-torchvision_8xb24-660e_'
                   'coco-320x320.py')
LRASPP = osp.join(ROOT, 'configs', 'lraspp',
                  'lraspp_mobilenetv3-large-d16-torchvision_8xb4-40k_voc12-'
                  '480x480.py')
TOOL = osp.join(ROOT, 'tools', 'convert_weights.py')
# warnings off: the error protocol is one line on stderr


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mmdet_scope():
    # Building an mmseg model elsewhere in the session switches mmengine's
    # default scope; mmdet's pipelines resolve bare names in it.
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')


def convert(src, dst, config, capsys):
    """tools/convert_weights.py's main, as the command line calls it (in
    this process: a new interpreter costs more than the conversion); its
    printout."""
    from tools import convert_weights as tool
    capsys.readouterr()
    tool.main([src, dst, '--config', config])
    return capsys.readouterr().out


def convert_command(src, dst, config):
    """The same, as a user runs it."""
    return run_tool(TOOL, src, dst, '--config', config, cwd=ROOT)


def random_model(model, seed):
    """Random conv weights of unit gain (He, fan-in: torchvision's
    std-0.03 init leaves every map nearly constant and the scores tied)
    and random BatchNorm statistics (tests/models/test_backbones.py)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.data.normal_(0, (2 / fan_in)**0.5,
                                       generator=generator)
            if module.bias is not None:
                module.bias.data.uniform_(-0.5, 0.5, generator=generator)
    return randomize(model, seed)


def relative_error(actual, expected):
    return float((actual - expected).abs().max() / expected.abs().max())


def random_image(height, width, seed):
    """A BGR uint8 image (what mmcv loads) with some structure."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3))
    image = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    noise = rng.integers(-20, 21, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def to_torchvision(image_bgr):
    """torchvision's detection/segmentation input: RGB float in [0, 1]."""
    return torch.from_numpy(image_bgr[..., ::-1].copy()).permute(
        2, 0, 1).float() / 255


# -------------------------------------------------------------- SSDLite --
@pytest.fixture(scope='module')
def module_capsys(request):
    """capsys for module fixtures (pytest's is per test)."""
    from _pytest.capture import CaptureFixture, SysCapture
    capture = CaptureFixture(SysCapture, request, _ispytest=True)
    capture._start()
    yield capture
    capture.close()


@pytest.fixture(scope='module')
def ssdlite(tmp_path_factory, module_capsys):
    from mmdet.apis import init_detector
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    torch.manual_seed(0)
    reference = random_model(ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=91), seed=1)
    # Training never targets the 10 unassigned ids, so a trained model
    # scores them near 0 (below the 0.001 threshold); a random one would
    # report them, which ours never does (no label maps to them).
    with torch.no_grad():
        for predictor in reference.head.classification_head.module_list:
            predictor[1].bias.view(-1, 91)[:, list(COCO_UNASSIGNED_IDS)] = -30
    tmp = tmp_path_factory.mktemp('ssdlite')
    src = str(tmp / 'ssdlite320_mobilenet_v3_large_coco-a79551df.pth')
    torch.save(reference.state_dict(), src)  # stands in for the download
    dst = str(tmp / 'ssdlite_mm.pth')
    out = convert(src, dst, SSDLITE, module_capsys)
    assert "of torchvision's ssdlite320_mobilenet_v3_large" in out
    model = init_detector(SSDLITE, dst, device='cpu')
    return reference, model, src, dst, tmp


def test_torchvision_coco_ids_are_ours():
    from mmdet.datasets import CocoDataset
    from torchvision.models._meta import _COCO_CATEGORIES
    assert len(_COCO_CATEGORIES) == 91
    assert [i for i, name in enumerate(_COCO_CATEGORIES)
            if name == 'N/A'] == list(COCO_UNASSIGNED_IDS)
    # mmdet's 80 classes, in order, are torchvision's named ids.
    assert [_COCO_CATEGORIES[i] for i in coco_category_ids()] == list(
        CocoDataset.METAINFO['classes'])
    assert sorted(coco91_columns()) == list(range(91))


def test_configs_have_torchvisions_parameter_counts(ssdlite):
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    from mobilenet_mm.analysis.model_stats import build_model_from_config
    reference, model, *_ = ssdlite
    assert count_params(reference) == count_params(model) == 3_440_060
    segmenter = build_model_from_config(Config.fromfile(LRASPP))
    tv_segmenter = lraspp_mobilenet_v3_large(weights=None,
                                             weights_backbone=None)
    assert count_params(tv_segmenter) == count_params(segmenter) == 3_221_538


def _preprocess(model, image):
    """Our test pipeline and data preprocessor, as inference_detector runs
    them."""
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg
    mmdet_scope()
    cfg = copy.deepcopy(get_test_pipeline_cfg(model.cfg))
    cfg[0].type = 'mmdet.LoadImageFromNDArray'
    data = Compose(cfg)(dict(img=image, img_id=0))
    data = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
    return model.data_preprocessor(data, False)


def _torchvision_per_anchor(reference, image):
    images, _ = reference.transform([to_torchvision(image)])
    features = list(reference.backbone(images.tensors).values())
    head = reference.head(features)
    anchors = reference.anchor_generator(images, features)[0]
    boxes = reference.box_coder.decode_single(head['bbox_regression'][0],
                                              anchors)
    from torchvision.ops import clip_boxes_to_image
    boxes = clip_boxes_to_image(boxes, images.image_sizes[0])
    return images.tensors, head['cls_logits'][0].softmax(-1), boxes


def _our_per_anchor(model, image):
    data = _preprocess(model, image)
    head = model.bbox_head
    cls_scores, bbox_preds = head(model.extract_feat(data['inputs']))
    priors = head.prior_generator.grid_priors(
        [s.shape[-2:] for s in cls_scores], device='cpu')
    scores = torch.cat([s[0].permute(1, 2, 0).reshape(
        -1, head.cls_out_channels) for s in cls_scores]).softmax(-1)
    deltas = torch.cat([b[0].permute(1, 2, 0).reshape(-1, 4)
                        for b in bbox_preds])
    boxes = head.bbox_coder.decode(
        torch.cat(priors), deltas,
        max_shape=data['data_samples'][0].img_shape)
    return data['inputs'], scores, boxes


def test_ssdlite_per_anchor_scores_and_boxes_equal(ssdlite):
    reference, model, *_ = ssdlite
    image = random_image(320, 320, seed=2)
    with torch.no_grad():
        tv_input, tv_scores, tv_boxes = _torchvision_per_anchor(
            reference, image)
        our_input, our_scores, our_boxes = _our_per_anchor(model, image)
    assert relative_error(our_input, tv_input) < 1e-6
    # six boxes on each cell of the 20, 10, 5, 3, 2, 1 maps, 91 outputs
    assert our_scores.shape == tv_scores.shape == (6 * 539, 91)
    # our columns: 80 classes, background, 10 unused ids
    assert relative_error(our_scores, tv_scores[:, coco91_columns()]) < 1e-4
    assert relative_error(our_boxes, tv_boxes) < 1e-4
    # not a trivial agreement: the scores differ from anchor to anchor
    assert tv_scores[:, 1:].std() > 0.1 * tv_scores[:, 1:].mean()


def _detections_equal(ours, theirs):
    """Same detections, boxes and scores within 1e-4 relative, labels as
    COCO ids."""
    ids = torch.tensor(coco_category_ids())
    assert len(ours.bboxes) == len(theirs['boxes']) > 0
    assert torch.equal(ids[ours.labels], theirs['labels'])
    assert relative_error(ours.scores, theirs['scores']) < 1e-4
    assert relative_error(ours.bboxes, theirs['boxes']) < 1e-4


def test_ssdlite_final_detections_equal_at_320(ssdlite):
    from mmdet.apis import inference_detector
    reference, model, *_ = ssdlite
    mmdet_scope()
    for seed in (3, 4):
        image = random_image(320, 320, seed)
        with torch.no_grad():
            theirs = reference([to_torchvision(image)])[0]
        ours = inference_detector(model, image).pred_instances
        assert len(theirs['boxes']) == 300
        assert not set(theirs['labels'].tolist()) & set(COCO_UNASSIGNED_IDS)
        _detections_equal(ours, theirs)


def test_ssdlite_other_sizes_differ_only_by_the_resize(ssdlite):
    """At other image sizes both resize to 320x320 bilinearly with half-pixel
    centres and no antialiasing, but torchvision resizes the normalised
    float tensor inside the model (torch.nn.functional.interpolate) and our
    pipeline the uint8 image (mmcv.imresize: OpenCV INTER_LINEAR, fixed-point
    weights, rounded to integers). Fed the image our pipeline resized,
    torchvision's detections equal ours; the printed figures are the cost
    of the two resizes."""
    import mmcv
    from mmdet.apis import inference_detector
    from torchvision.ops import box_iou
    reference, model, *_ = ssdlite
    mmdet_scope()
    image = random_image(480, 640, seed=5)
    height, width = image.shape[:2]
    ours = inference_detector(model, image).pred_instances
    resized = mmcv.imresize(image, (320, 320), interpolation='bilinear')
    with torch.no_grad():
        native = reference([to_torchvision(image)])[0]
        same_input = reference([to_torchvision(resized)])[0]
        tv_input, *_ = _torchvision_per_anchor(reference, image)
        our_input, *_ = _our_per_anchor(model, image)
    # torchvision on our resized image: the same detections, in 320x320
    # coordinates; ours are rescaled to the original image.
    scale = torch.tensor([width / 320, height / 320] * 2)
    same_input['boxes'] = same_input['boxes'] * scale
    _detections_equal(ours, same_input)
    # The two resizes: network inputs in [-1, 1] and the detections.
    input_gap = float((our_input - tv_input).abs().max())
    mean_gap = float((our_input - tv_input).abs().mean())
    ids = torch.tensor(coco_category_ids())
    top = 100
    iou = box_iou(native['boxes'][:top], ours.bboxes)
    same_label = native['labels'][:top, None] == ids[ours.labels][None]
    matched = ((iou > 0.9) & same_label).any(1).float().mean()
    print(f'\nresize gap at {height}x{width} -> 320x320: network input max '
          f'|diff| {input_gap:.4f}, mean {mean_gap:.5f} (input range 2, one '
          f'uint8 step = {2 / 255:.4f}); of torchvision\'s top {top} '
          f'detections {float(matched):.0%} found by ours (IoU > 0.9, same '
          f'id); top score {float(native["scores"][0]):.5f} vs '
          f'{float(ours.scores[0]):.5f}')
    assert input_gap <= 2 * 2 / 255  # rounding and fixed-point weights
    assert 0.5 < float(matched) < 1.0  # close, and not identical


def _training_batch(seed, count=4, size=320):
    """Random images and 1-5 boxes each, as torchvision's targets (COCO ids)
    and as our data samples (labels)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    rng = np.random.default_rng(seed)
    images = [to_torchvision(random_image(size, size, seed + i))
              for i in range(count)]
    ids = torch.tensor(coco_category_ids())
    targets, samples = [], []
    for _ in range(count):
        n = int(rng.integers(1, 6))
        corner = rng.uniform(0, 0.7 * size, (n, 2))
        side = rng.uniform(0.05 * size, 0.5 * size, (n, 2))
        boxes = torch.tensor(np.concatenate(
            [corner, np.minimum(corner + side, size - 1)], 1),
            dtype=torch.float32)
        labels = torch.from_numpy(rng.integers(0, 80, n))
        targets.append(dict(boxes=boxes.clone(), labels=ids[labels]))
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), pad_shape=(size, size),
            batch_input_shape=(size, size), ori_shape=(size, size),
            scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        samples.append(sample)
    return images, targets, samples


def test_ssdlite_training_losses_and_gradients_equal(ssdlite):
    """The same weights on the same batch in training mode: our matcher,
    box encoding, hard negative mining and loss normalisation give
    torchvision's SSD losses (``detection/ssd.py`` compute_loss) and the
    same gradients, so a training step of our recipe is torchvision's.

    NCHW on both sides: the config's CPU channels-last convs (oneDNN) sum
    in another order; their conv gradients differ from float64 ones by up
    to 2.5% (norm) on this random model, NCHW's by 0.4%.
    """
    from mmengine.runner import load_checkpoint

    from mobilenet_mm.analysis.model_stats import build_model_from_config
    reference, _, _, converted, _ = ssdlite
    reference = copy.deepcopy(reference).train()
    cfg = Config.fromfile(SSDLITE)
    cfg.model.backbone.channels_last = False
    model = build_model_from_config(cfg)
    load_checkpoint(model, converted, map_location='cpu', logger='silent')
    model.train()
    images, targets, samples = _training_batch(seed=7)
    theirs = reference(images, targets)
    # our data preprocessor's [-1, 1] of the same RGB pixels
    inputs = torch.stack(images) * 2 - 1
    ours = {k: sum(v) for k, v in model.loss(inputs, samples).items()}
    for our_key, their_key in (('loss_cls', 'classification'),
                               ('loss_bbox', 'bbox_regression')):
        assert float(theirs[their_key]) > 0.1
        assert relative_error(ours[our_key], theirs[their_key]) < 1e-5
    sum(theirs.values()).backward()
    sum(ours.values()).backward()
    # the stem conv and a class predictor (torchvision's 91 columns
    # reordered to ours)
    stem_ours = model.backbone.stages[0][0].conv.weight.grad
    stem_theirs = reference.backbone.features[0][0][0].weight.grad
    assert relative_error(stem_ours, stem_theirs) < 1e-4
    cls_ours = model.bbox_head.cls_convs[1][1].bias.grad.view(6, 91)
    cls_theirs = reference.head.classification_head.module_list[1][
        1].bias.grad.view(6, 91)[:, coco91_columns()]
    assert relative_error(cls_ours, cls_theirs) < 1e-4


def test_coco_metric_sees_cocos_real_category_ids(ssdlite):
    """Ground truth with COCO's real ids (1-90 with the gaps), here the
    best torchvision detections of each image: mmdet's CocoMetric on our
    predictions gives the AP that pycocotools gives torchvision's."""
    from mmcv.transforms import Compose
    from mmdet.datasets import CocoDataset
    from mmdet.evaluation import CocoMetric
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    import mmcv
    from mobilenet_mm.datasets import generate_coco_detection
    reference, model, _, _, tmp = ssdlite
    mmdet_scope()
    root = generate_coco_detection(str(tmp / 'coco'), num_train=1,
                                   num_val=3, size=(320, 320), seed=3)
    ann_file = osp.join(root, 'annotations', 'instances_val2017.json')
    with open(ann_file) as f:
        ann = json.load(f)
    names = CocoDataset.METAINFO['classes']
    ann['categories'] = [dict(id=i, name=n, supercategory='thing')
                         for i, n in zip(coco_category_ids(), names)]
    ann['annotations'], theirs = [], []
    for info in ann['images']:
        image = mmcv.imread(osp.join(root, 'val2017', info['file_name']))
        with torch.no_grad():
            det = reference([to_torchvision(image)])[0]
        for rank, (box, score, label) in enumerate(zip(
                det['boxes'].tolist(), det['scores'].tolist(),
                det['labels'].tolist())):
            x1, y1, x2, y2 = box
            xywh = [x1, y1, x2 - x1, y2 - y1]
            theirs.append(dict(image_id=info['id'], category_id=label,
                               bbox=xywh, score=score))
            if rank < 8 and x2 - x1 > 4 and y2 - y1 > 4:
                ann['annotations'].append(dict(
                    id=len(ann['annotations']) + 1, image_id=info['id'],
                    category_id=label, bbox=xywh, area=xywh[2] * xywh[3],
                    iscrowd=0))
    gt_ids = {a['category_id'] for a in ann['annotations']}
    assert any(i > 80 for i in gt_ids) or any(
        i > j for i, j in zip(sorted(gt_ids), range(1, 91)))
    with open(ann_file, 'w') as f:
        json.dump(ann, f)

    # torchvision's AP, pycocotools directly
    gt = COCO(ann_file)
    evaluation = COCOeval(gt, gt.loadRes(theirs), 'bbox')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    expected = evaluation.stats[0]
    assert expected > 0.5

    # ours, through the test pipeline, the model and mmdet's CocoMetric
    metric = CocoMetric(ann_file=ann_file, metric='bbox')
    metric.dataset_meta = dict(classes=names)
    pipeline = Compose(Config.fromfile(SSDLITE).test_dataloader.dataset.pipeline)
    for info in ann['images']:
        data = pipeline(dict(
            img_path=osp.join(root, 'val2017', info['file_name']),
            img_id=info['id'], instances=[]))
        batch = dict(inputs=[data['inputs']],
                     data_samples=[data['data_samples']])
        with torch.no_grad():
            result = model.test_step(batch)
        metric.process({}, [r.to_dict() for r in result])
    measured = metric.evaluate(size=len(ann['images']))
    assert abs(measured['coco/bbox_mAP'] - round(expected, 3)) <= 1e-3


def test_wrong_files_fail_in_one_line_naming_the_key(ssdlite, tmp_path,
                                                    capsys):
    import torchvision
    _, _, ssdlite_src, _, _ = ssdlite
    classifier = str(tmp_path / 'mobilenet_v3_large.pth')
    torch.save(torchvision.models.mobilenet_v3_large().state_dict(),
               classifier)
    cases = [
        (classifier, SSDLITE, 'features.0.0.weight is not a key of '
         "torchvision's ssdlite320_mobilenet_v3_large"),
        (ssdlite_src, LRASPP, 'head.classification_head.module_list.0.0.0.'
         "weight is not a key of torchvision's lraspp_mobilenet_v3_large"),
    ]
    dst = tmp_path / 'out.pth'
    # the command line: one line on stderr, exit status 1
    result = convert_command(cases[0][0], str(dst), cases[0][1])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and cases[0][2] in lines[0], result.stderr
    assert lines[0].startswith('convert_weights: error: ')
    for src, config, message in cases:
        with pytest.raises(SystemExit) as error:
            convert(src, str(dst), config, capsys)
        assert message in str(error.value)
        assert '\n' not in str(error.value)
        assert not dst.exists()


# -------------------------------------------------------------- LR-ASPP --
def test_lraspp_logits_equal_through_mmseg_inference_model(tmp_path, capsys):
    from mmseg.apis import inference_model, init_model
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large
    torch.manual_seed(0)
    reference = random_model(lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=21), seed=4)
    src = str(tmp_path / 'lraspp_mobilenet_v3_large-d234d4ea.pth')
    torch.save(reference.state_dict(), src)
    dst = str(tmp_path / 'lraspp_mm.pth')
    assert "of torchvision's lraspp_mobilenet_v3_large" in convert(
        src, dst, LRASPP, capsys)
    cfg = Config.fromfile(LRASPP)
    # The image as it is: torchvision's model has no resize of its own.
    cfg.test_pipeline = [dict(type='LoadImageFromFile'),
                         dict(type='PackSegInputs')]
    model = init_model(cfg, dst, device='cpu')
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    for height, width in [(520, 520), (333, 517)]:
        image = random_image(height, width, seed=height)
        with torch.no_grad():
            expected = reference(
                ((to_torchvision(image) - mean) / std)[None])['out'][0]
        actual = inference_model(model, image).seg_logits.data
        assert actual.shape == expected.shape == (21, height, width)
        error = relative_error(actual, expected)
        assert error < 1e-4, f'{height}x{width}: {error:.2e}'
        # not a trivial agreement: the prediction varies over the image
        assert len(expected.argmax(0).unique()) > 1


def test_detection_finetune_config_reinitialises_only_the_class_layers(
        ssdlite):
    """The torchvision SSDLite fine-tuning config, from the
    converted checkpoint: every tensor loads except the six class convs."""
    from mobilenet_mm.analysis.model_stats import build_model_from_config
    from mobilenet_mm.engine.finetune import load_for_finetune
    _, converted, _, dst, _ = ssdlite
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'ssdlite',
        'ssdlite_mobilenetv3-large-reduced-torchvision-finetune_1xb24-60e_'
        'custom-320x320.py'))
    assert cfg.custom_hooks[-1].type == 'mobilenet_mm.FinetuneHook'
    model = build_model_from_config(cfg)
    model.init_weights()
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    result = load_for_finetune(model, dst, logger='silent')
    class_keys = [f'bbox_head.cls_convs.{i}.1.{kind}' for i in range(6)
                  for kind in ('weight', 'bias')]
    assert sorted(result.dropped) == sorted(class_keys)
    assert result.missing == [] and result.unused == []
    source = converted.state_dict()
    for key, value in model.state_dict().items():
        expected = fresh[key] if key in class_keys else source[key]
        assert torch.equal(value, expected), key
    # 3 classes + background, six boxes per cell
    assert model.bbox_head.cls_convs[0][1].out_channels == 6 * 4


def _bad_values():
    from mobilenet_mm.models.backbones import MobileNetV3
    from mobilenet_mm.models.dense_heads import (SSDLiteAnchorGenerator,
                                                 SSDLiteHead)
    yield (lambda: MobileNetV3(dilation_rule='timm'),
           r"dilation_rule must be one of \('tf', 'torchvision'\), got "
           "'timm'")
    yield (lambda: MobileNetV3(arch='small', out_indices=(0, ),
                               out_types=('first_block', )),
           'stage 0 has no block')
    yield (lambda: SSDLiteAnchorGenerator(layout='torchvision'),
           'set reduce_first_level=False')
    yield (lambda: SSDLiteAnchorGenerator(layout='caffe',
                                          reduce_first_level=False),
           "layout 'caffe'")
    yield (lambda: SSDLiteHead(unused_class_outputs=-1),
           'unused_class_outputs must be an int')
    yield (lambda: SSDLiteHead(test_cfg=dict(nms_pre=1000,
                                             topk_per_class=300)),
           'both topk_per_class and nms_pre')


def test_new_options_refuse_bad_values():
    for build, message in _bad_values():
        with pytest.raises(ValueError, match=message):
            build()


def test_conversion_refuses_heads_that_would_score_differently():
    """torchvision's SSDLite weights need its softmax over 91 outputs: the
    paper configs' sigmoid head and another class count are refused before
    any tensor is read."""
    from mobilenet_mm.analysis.model_stats import build_model_from_config
    from mobilenet_mm.models.torchvision_conversion import \
        convert_torchvision_model
    paper = Config.fromfile(osp.join(
        ROOT, 'configs', 'ssdlite',
        'ssdlite_mobilenetv3-large-reduced-scratch_8xb24-660e_coco-'
        '320x320.py'))
    with pytest.raises(ValueError, match='scores with a softmax'):
        convert_torchvision_model({}, build_model_from_config(paper))
    other_classes = Config.fromfile(SSDLITE)
    other_classes.model.bbox_head.num_classes = 3
    with pytest.raises(ValueError, match='must have num_classes=80'):
        convert_torchvision_model({}, build_model_from_config(other_classes))
