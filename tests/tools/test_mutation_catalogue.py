"""The mutation catalogue (tools/dev/mutations.yml) is well formed and still
matches the code: every original text occurs exactly once in its file and
every listed test exists. No mutation is run here (that is
tools/dev/mutation_check.py, a developer tool)."""
import os.path as osp

import pytest

from tests.conftest import REPO
from tools.dev import mutation_check as runner

ENTRIES = runner.load_catalogue()
AREAS = {
    'models': ('mobilenet_mm/models/backbones/', 'mobilenet_mm/models/lay'),
    'heads': ('mobilenet_mm/models/dense_heads/',
              'mobilenet_mm/models/decode_heads/', 'mobilenet_mm/models/nec'),
    'configs': ('configs/', ),
    'data checks': ('mobilenet_mm/datasets/', ),
    'checkpoint safety': ('mobilenet_mm/utils/checkpoint.py',
                          'mobilenet_mm/engine/checkpoint_io.py'),
    'resume': ('tools/train.py', 'mobilenet_mm/utils/checkpoint.py'),
    'export': ('mobilenet_mm/deploy/', ),
    'analysis': ('mobilenet_mm/analysis/', ),
}


def test_catalogue_size_and_coverage():
    assert len(ENTRIES) >= 40
    for area, prefixes in AREAS.items():
        assert any(e['file'].startswith(prefixes) for e in ENTRIES), area


@pytest.mark.parametrize('entry', ENTRIES, ids=[e['id'] for e in ENTRIES])
def test_entry_matches_the_tree(entry):
    runner.check_against_tree(entry)


def test_a_stale_entry_is_named(tmp_path):
    entry = dict(ENTRIES[0], original='text that is nowhere in the file')
    with pytest.raises(runner.CatalogueError,
                       match=f"mutation '{entry['id']}'.*occurs 0 times in "
                       f"{entry['file']}"):
        runner.check_against_tree(entry)
    # The runner refuses to start with it.
    catalogue = tmp_path / 'mutations.yml'
    import yaml
    catalogue.write_text(yaml.safe_dump([entry]))
    assert runner.main(['--catalogue', str(catalogue), '--list']) == 2


def test_apply_mutation_changes_exactly_one_line(tmp_path):
    entry = ENTRIES[0]
    runner.copy_tree(REPO, str(tmp_path))
    assert not (tmp_path / '.venv').exists()
    before = (tmp_path / entry['file']).read_text().splitlines()
    runner.apply_mutation(entry, str(tmp_path))
    after = (tmp_path / entry['file']).read_text().splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(changed) == 1
    assert changed[0][1] == changed[0][0].replace(entry['original'],
                                                  entry['replacement'])
