"""Generate a synthetic data set.

Usage: python tools/data/generate_synthetic.py coco|cityscapes OUT_DIR
       [--num-train N] [--num-val N] [--size H W] [--seed S]

See :mod:`mobilenet_mm.datasets.synthetic` for what is drawn.
"""
import importlib.util
import os.path as osp
import sys


def load_generator():
    """Load ``mobilenet_mm/datasets/synthetic.py`` on its own.

    It needs only numpy and Pillow; importing it through the package would
    first import ``mobilenet_mm`` (torch, mmengine, the models), seconds of
    start-up for nothing.
    """
    package = importlib.util.find_spec('mobilenet_mm')  # does not import it
    if package is None or not package.submodule_search_locations:
        sys.exit('generate_synthetic.py: error: mobilenet_mm is not '
                 'installed (pip install -e . in the repository)')
    path = osp.join(package.submodule_search_locations[0], 'datasets',
                    'synthetic.py')
    spec = importlib.util.spec_from_file_location('_mobilenet_mm_synthetic',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == '__main__':
    sys.exit(load_generator().main())
