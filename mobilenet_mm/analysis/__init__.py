from .complexity import (count_madds, count_params, resize_madds,
                         segmentor_madds)

__all__ = ['count_madds', 'count_params', 'resize_madds', 'segmentor_madds']
