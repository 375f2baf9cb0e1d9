"""The papers' published figures, for side-by-side comparison.

Numbers are quoted, never measured here: tools print them next to what our
code measures. The detection and segmentation figures live in the config
families' ``metafile.yml`` (OpenMMLab's format, listed by
``configs/model-index.yml``), beside the configs they belong to, so that a
renamed config keeps them (a test checks that every metafile config exists);
the classifier rows are below. ``digits`` is the number of decimals the paper printed, so a
comparison can allow the paper's own rounding (0.5M printed for 0.47M).
Sources: [V1] arXiv 1704.04861, [V2] 1801.04381, [V3] 1905.02244, [V4]
2404.10518; "timm" / "tv" are the reference implementations.
"""
import ast
import functools
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional


@dataclass(frozen=True)
class PaperFigure:
    value: float
    digits: int  # decimals as printed in the source

    def tolerance(self, relative: float) -> float:
        """Allowed absolute difference: ``relative`` of the value, or half a
        unit of the last printed digit, whichever is larger."""
        return max(abs(self.value) * relative, 0.5 * 10**-self.digits)


@dataclass(frozen=True)
class ClassifierRow:
    arch: str
    widen_factor: float
    resolution: int
    top1: float
    params_m: PaperFigure  # millions
    madds_m: PaperFigure  # millions
    source: str
    # Exact parameter count of the timm/torchvision reference, where one
    # exists: (library, model name).
    reference: Optional[tuple] = None
    note: str = ''
    # False where the paper's MAdds cannot be reproduced from the public
    # code; ``note`` says why and tests compare with the reference instead.
    madds_match_paper: bool = True


def _f(text: str, scale: float = 1) -> PaperFigure:
    """A figure as printed; ``scale`` converts its unit (e.g. '0.2' G ->
    200 M with a rounding tolerance of 50 M)."""
    decimals = len(text.split('.')[1]) if '.' in text else 0
    shift = len(str(int(scale))) - 1 if scale >= 1 else 0
    return PaperFigure(float(text) * scale, decimals - shift)


_V4_NOTE = ('the paper\'s params and MACs are not reproducible from the '
            'public TF Model Garden / timm code (params differ by 5-6% too); '
            'the layers equal timm\'s exactly, and so do our counts')

CLASSIFIERS = [
    ClassifierRow('v1', 1.0, 224, 70.6, _f('4.2'), _f('569'), '[V1] Tab 8',
                  ('timm', 'mobilenetv1_100')),
    ClassifierRow('v1', 0.75, 224, 68.4, _f('2.6'), _f('325'), '[V1] Tab 6'),
    ClassifierRow('v1', 0.5, 224, 63.7, _f('1.3'), _f('149'), '[V1] Tab 6'),
    ClassifierRow('v1', 0.25, 224, 50.6, _f('0.5'), _f('41'), '[V1] Tab 6'),
    ClassifierRow('v1', 1.0, 192, 69.1, _f('4.2'), _f('418'), '[V1] Tab 7'),
    ClassifierRow('v1', 1.0, 160, 67.2, _f('4.2'), _f('290'), '[V1] Tab 7'),
    ClassifierRow('v1', 1.0, 128, 64.4, _f('4.2'), _f('186'), '[V1] Tab 7'),
    ClassifierRow('v2', 1.0, 224, 72.0, _f('3.4'), _f('300'), '[V2] Tab 4',
                  ('torchvision', 'mobilenet_v2')),
    ClassifierRow('v2', 1.4, 224, 74.7, _f('6.9'), _f('585'), '[V2] Tab 4',
                  ('timm', 'mobilenetv2_140'),
                  note='the paper prints 6.9M; TF-slim and timm have 6.06/'
                  '6.11M for the same layers'),
    ClassifierRow('v3_large', 1.0, 224, 75.2, _f('5.4'), _f('217'),
                  '[V3] Tab 3', ('torchvision', 'mobilenet_v3_large')),
    ClassifierRow('v3_large', 0.75, 224, 73.3, _f('4.0'), _f('155'),
                  '[V3] Tab 3', ('timm', 'mobilenetv3_large_075')),
    ClassifierRow('v3_small', 1.0, 224, 67.4, _f('2.5'), _f('56'),
                  '[V3] Tab 3', ('torchvision', 'mobilenet_v3_small')),
    ClassifierRow('v3_small', 0.75, 224, 65.4, _f('2.0'), _f('44'),
                  '[V3] Tab 3', ('timm', 'mobilenetv3_small_075')),
    ClassifierRow('v3_large_minimalistic', 1.0, 224, 72.3, _f('3.9'),
                  _f('209'), 'TF-slim README',
                  ('timm', 'tf_mobilenetv3_large_minimal_100')),
    ClassifierRow('v3_small_minimalistic', 1.0, 224, 61.9, _f('2.0'),
                  _f('65'), 'TF-slim README',
                  ('timm', 'tf_mobilenetv3_small_minimal_100'),
                  note='65M is not reproducible: the layers equal timm\'s '
                  'port of the TF-slim model exactly, which counts 52.3M; '
                  'TF-slim\'s figure likely uses the ICCV-version counting '
                  '(66M for the full V3-Small, 56M in the latest arXiv)',
                  madds_match_paper=False),
    ClassifierRow('v4_conv_small', 1.0, 224, 73.8, _f('3.8'),
                  _f('0.2', 1000), '[V4] Tab 6',
                  ('timm', 'mobilenetv4_conv_small')),
    ClassifierRow('v4_conv_medium', 1.0, 256, 79.9, _f('9.2'),
                  _f('1.0', 1000), '[V4] Tab 6',
                  ('timm', 'mobilenetv4_conv_medium'),
                  note=_V4_NOTE, madds_match_paper=False),
    ClassifierRow('v4_hybrid_medium', 1.0, 256, 80.7, _f('10.5'),
                  _f('1.2', 1000), '[V4] Tab 6',
                  ('timm', 'mobilenetv4_hybrid_medium'),
                  note=_V4_NOTE, madds_match_paper=False),
    ClassifierRow('v4_conv_large', 1.0, 384, 82.9, _f('31'),
                  _f('5.9', 1000), '[V4] Tab 6',
                  ('timm', 'mobilenetv4_conv_large'),
                  note=_V4_NOTE, madds_match_paper=False),
    ClassifierRow('v4_hybrid_large', 1.0, 384, 83.4, _f('35.9'),
                  _f('7.2', 1000), '[V4] Tab 6',
                  ('timm', 'mobilenetv4_hybrid_large'),
                  note=_V4_NOTE, madds_match_paper=False),
]


@dataclass(frozen=True)
class TaskRow:
    """A detector or segmenter of the papers: the ``Paper`` block of its
    model in a config family's ``metafile.yml``."""
    config: str  # the model's Name in the metafile (its config file stem)
    metric: str
    score: float
    params_m: Optional[PaperFigure]
    madds_g: Optional[PaperFigure]
    source: str


# The repository root: configs/ sits beside the package (an editable
# install, as the README's set-up makes).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_INDEX = osp.join(REPO_ROOT, 'configs', 'model-index.yml')


def _read_yaml(path: str):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


@functools.lru_cache(maxsize=None)
def _task_rows() -> Dict[str, TaskRow]:
    """Every model with paper figures in the metafiles that
    ``configs/model-index.yml`` imports, keyed by the absolute path of its
    config."""
    rows = {}
    if not osp.isfile(MODEL_INDEX):  # installed without the configs
        return rows
    for metafile in _read_yaml(MODEL_INDEX)['Import']:
        for model in _read_yaml(osp.join(REPO_ROOT, metafile))['Models']:
            paper = model.get('Paper') or {}
            if 'Score' not in paper:
                continue
            rows[osp.realpath(osp.join(REPO_ROOT, model['Config']))] = \
                TaskRow(model['Name'], paper['Metric'], float(paper['Score']),
                        _f(str(paper['Parameters (M)'])),
                        _f(str(paper['MAdds (G)'])), paper['Source'])
    return rows


def alias_target(config_path: str) -> Optional[str]:
    """The config that ``config_path`` only renames, or None.

    A file whose one statement is ``_base_ = 'OTHER.py'`` (such as
    ``configs/ssdlite_v3.py``) builds exactly OTHER's model and recipe, so
    it shares OTHER's paper figures; any other content may change them.
    """
    with open(config_path) as f:
        tree = ast.parse(f.read())
    body = [node for node in tree.body if not (
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    if (len(body) == 1 and isinstance(body[0], ast.Assign)
            and [getattr(t, 'id', None) for t in body[0].targets] == [
                '_base_']
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return osp.join(osp.dirname(config_path), body[0].value.value)
    return None


def find_task_row(config_path: str) -> Optional[TaskRow]:
    """The paper's figures for a config (through aliases), or None."""
    seen = set()
    path = config_path
    while path is not None and osp.realpath(path) not in seen:
        row = _task_rows().get(osp.realpath(path))
        if row is not None:
            return row
        seen.add(osp.realpath(path))
        path = alias_target(path) if osp.isfile(path) else None
    return None


def task_rows() -> List[TaskRow]:
    """Every paper row of the metafiles."""
    return list(_task_rows().values())


def find_classifier_row(arch: str, widen_factor: float = 1.0,
                        resolution: Optional[int] = None):
    """The paper row for an architecture, or None."""
    for row in CLASSIFIERS:
        if (row.arch == arch and abs(row.widen_factor - widen_factor) < 1e-6
                and (resolution is None or row.resolution == resolution)):
            return row
    return None
