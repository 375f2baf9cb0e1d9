"""Deprecated: the names that ``tools_common`` held, kept so that code
written against the old layout still imports. New code imports them from
where they live:

* :mod:`mobilenet_mm.errors`: ``CLIError`` (and every user error type);
* :mod:`mobilenet_mm.apis.cli`: ``run_cli``, ``one_line``,
  ``destroy_process_group``;
* :mod:`mobilenet_mm.apis.config`: ``TASK_SCOPES``, ``check_file``,
  ``load_config``, ``detect_task``, ``register_host_modules``,
  ``resolve_work_dir``;
* :mod:`mobilenet_mm.apis.launch`: ``has_accelerator``, ``set_launcher``,
  ``init_cpu_distributed``;
* :mod:`mobilenet_mm.apis.runner`: ``build_runner``;
* :mod:`mobilenet_mm.datasets.path_checks`: ``check_data_paths``,
  ``check_detection_data``;
* :mod:`mobilenet_mm.utils.checkpoint`: ``read_state_dict``,
  ``check_state_dict_matches``.
"""
from .apis.cli import destroy_process_group, one_line, run_cli  # noqa: F401
from .apis.config import (TASK_SCOPES, check_file,  # noqa: F401
                          detect_task, load_config, register_host_modules,
                          resolve_work_dir)
from .apis.launch import (has_accelerator, init_cpu_distributed,  # noqa: F401
                          set_launcher)
from .apis.runner import build_runner  # noqa: F401
from .datasets.path_checks import (check_data_paths,  # noqa: F401
                                   check_detection_data)
from .errors import CLIError  # noqa: F401
from .utils.checkpoint import (check_state_dict_matches,  # noqa: F401
                               read_state_dict)
