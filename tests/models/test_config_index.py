"""The config families: configs/model-index.yml, the metafiles and the
configs agree, the papers' figures come from the metafiles, and the short
entry point configs/ssdlite_v3.py is the canonical SSDLite-V3 config."""
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

from mobilenet_mm.analysis import paper_tables

from tests.conftest import CONFIGS, REPO

FAMILIES = ('ssdlite', 'retinanet', 'lraspp', 'demo')
SSDLITE_V3 = osp.join(
    CONFIGS, 'ssdlite',
    'ssdlite_mobilenetv3-large-scratch_8xb24-660e_coco-320x320.py')


def read(path):
    with open(path) as f:
        return yaml.safe_load(f)


def metafile_models():
    index = read(osp.join(CONFIGS, 'model-index.yml'))
    for metafile in index['Import']:
        for model in read(osp.join(REPO, metafile))['Models']:
            yield metafile, model


def shipped_configs():
    """Every config a user runs: all but the ``_base_`` parts."""
    return sorted(
        p for p in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
        if '_base_' not in osp.relpath(p, CONFIGS).split(osp.sep))


def test_model_index_lists_every_family_metafile():
    index = read(osp.join(CONFIGS, 'model-index.yml'))
    assert index['Import'] == [f'configs/{family}/metafile.yml'
                               for family in FAMILIES]
    for family in FAMILIES:
        assert osp.isfile(osp.join(CONFIGS, family, 'README.md')), family


def test_every_metafile_config_exists_and_is_named_for_its_file():
    collections = set()
    for metafile in read(osp.join(CONFIGS, 'model-index.yml'))['Import']:
        collections |= {c['Name']
                        for c in read(osp.join(REPO, metafile)).get(
                            'Collections', [])}
    names = []
    for metafile, model in metafile_models():
        config = osp.join(REPO, model['Config'])
        assert osp.isfile(config), (metafile, model['Config'])
        assert osp.dirname(model['Config']) == osp.dirname(metafile)
        assert model['Name'] == osp.splitext(osp.basename(config))[0]
        assert model['In Collection'] in collections, model['Name']
        names.append(model['Name'])
    assert len(names) == len(set(names))


def test_every_shipped_config_is_in_a_metafile_or_an_alias_of_one():
    listed = {osp.realpath(osp.join(REPO, model['Config']))
              for _, model in metafile_models()}
    for path in shipped_configs():
        target = path
        if osp.realpath(path) not in listed:
            target = paper_tables.alias_target(path)
            assert target is not None, f'{path} is in no metafile'
        assert osp.realpath(target) in listed, path


def test_the_short_entry_point_is_the_canonical_ssdlite_v3_config():
    short = Config.fromfile(osp.join(CONFIGS, 'ssdlite_v3.py'))
    canonical = Config.fromfile(SSDLITE_V3)
    assert short.to_dict() == canonical.to_dict()
    assert osp.realpath(paper_tables.alias_target(
        osp.join(CONFIGS, 'ssdlite_v3.py'))) == osp.realpath(SSDLITE_V3)


def test_paper_figures_come_from_the_metafiles():
    """What the tools print beside our figures is the metafiles' Paper
    block, with the printed decimals, for the config and its alias."""
    row = paper_tables.find_task_row(SSDLITE_V3)
    assert (row.score, row.params_m, row.madds_g, row.source) == (
        22.0, paper_tables.PaperFigure(4.97, 2),
        paper_tables.PaperFigure(0.62, 2), '[V3] Tab 6')
    assert paper_tables.find_task_row(
        osp.join(CONFIGS, 'ssdlite_v3.py')) == row
    with_paper = [m for _, m in metafile_models() if 'Paper' in m]
    assert len(paper_tables.task_rows()) == len(with_paper) == 13
    for model in with_paper:
        found = paper_tables.find_task_row(osp.join(REPO, model['Config']))
        assert found.config == model['Name']
        assert found.params_m.value == float(model['Paper']['Parameters (M)'])
    # A config that inherits one with figures but changes it gets none.
    demo = glob.glob(osp.join(CONFIGS, 'demo', 'ssdlite_*.py'))[0]
    assert paper_tables.find_task_row(demo) is None


@pytest.mark.parametrize('family', FAMILIES)
def test_family_readme_names_every_config_of_its_metafile(family):
    readme = open(osp.join(CONFIGS, family, 'README.md')).read()
    for metafile, model in metafile_models():
        if metafile == f'configs/{family}/metafile.yml':
            assert model['Name'] in readme, model['Name']
