import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name):
    path = os.path.join(HERE, 'requirements', name)
    with open(path) as f:
        return [line.split('#')[0].strip() for line in f
                if line.split('#')[0].strip()]


def read_version():
    scope = {}
    with open(os.path.join(HERE, 'mobilenet_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mobilenet_mm',
    version=read_version(),
    description='MobileNet v1-v4 backbones with SSDLite and LR-ASPP heads '
    'for OpenMMLab (mmdetection 3.x, mmsegmentation 1.x)',
    long_description=open(os.path.join(HERE, 'README.md')).read()
    if os.path.exists(os.path.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(
        exclude=('tests', 'tests.*', 'configs', 'tools', 'tools.*')),
    python_requires='>=3.8',
    install_requires=['torch>=1.8', 'mmcv>=2.0.0rc4,<2.2.0'] +
    read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
