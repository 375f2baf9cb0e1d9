"""The command-line tools, importable as modules (``from tools import train``)
so that tests call their ``main()`` instead of loading the scripts by file
path. Run them as scripts: ``python tools/train.py CONFIG``."""
