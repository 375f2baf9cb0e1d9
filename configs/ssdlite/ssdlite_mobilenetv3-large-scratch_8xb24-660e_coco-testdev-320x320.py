# SSDLite + MobileNetV3-Large on COCO test-dev2017, the split of [V3]
# Table 6 (and [V2] Table 6): test-dev has no public annotations, so testing
# writes the detections for the COCO evaluation server instead of scoring
# them (mmdet CocoMetric format_only=True; its outfile_prefix names the
# file, here WORK_DIR/detections_test-dev2017.bbox.json under work_dirs/;
# override it with --cfg-options test_evaluator.outfile_prefix=...):
#   python tools/test.py THIS_CONFIG CHECKPOINT
# The images come from annotations/image_info_test-dev2017.json (images and
# categories only) read by mobilenet_mm.CocoImageInfo
# (mobilenet_mm/datasets/coco_testdev.py). Another detection config: set the
# same test_dataloader.dataset and test_evaluator keys with --cfg-options.
_base_ = './ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py'
custom_imports = dict(
    imports=[
        'mobilenet_mm', 'mobilenet_mm.datasets.coco_checks',
        'mobilenet_mm.datasets.coco_testdev'
    ],
    allow_failed_imports=False)

data_root = 'data/coco/'
image_info = 'annotations/image_info_test-dev2017.json'
input_size = {{_base_.input_size}}
testdev_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
test_dataloader = dict(
    dataset=dict(
        type='mobilenet_mm.CocoImageInfo',
        data_root=data_root,
        ann_file=image_info,
        data_prefix=dict(img='test2017/'),
        test_mode=True,
        pipeline=testdev_pipeline))
test_evaluator = dict(
    type='CocoMetric',
    metric='bbox',
    format_only=True,
    ann_file=data_root + image_info,
    outfile_prefix='./work_dirs/ssdlite_mobilenetv3-large-scratch_8xb24-660e_'
    'coco-testdev-320x320/detections_test-dev2017')
