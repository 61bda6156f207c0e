"""Per-thread, seeded RNGs for audiomentations' module-level ``random`` / ``np.random`` calls.

audiomentations transforms call ``random.uniform(...)`` and ``np.random.randn(...)``
on the process-global generators. Seeding those globals is neither thread-safe
nor safe against any other code (Beam's own retry jitter, other DoFns) drawing
from them meanwhile. Instead, :func:`install` replaces the ``random`` and ``np``
names inside every loaded ``audiomentations`` module with thin proxies: inside
``with seeded(seed):`` the calling thread's draws come from its own
``random.Random(seed)`` and ``np.random.RandomState``; everywhere else (other
threads, code outside the block) the proxies forward to the real globals, so
plain audiomentations use is unchanged.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy

_LOCAL = threading.local()
_INSTALL_LOCK = threading.Lock()
_PACKAGE = "audiomentations"


class _RandomModuleProxy:
    """Stands for the ``random`` module: the thread's seeded Random inside ``seeded``, else the module."""

    def __getattr__(self, name: str) -> Any:
        return getattr(getattr(_LOCAL, "random", None) or random, name)


class _NumpyProxy:
    """Stands for ``numpy``: ``.random`` is the thread's seeded RandomState inside ``seeded``."""

    def __getattr__(self, name: str) -> Any:
        if name == "random":
            return getattr(_LOCAL, "numpy_random", None) or numpy.random
        return getattr(numpy, name)


_RANDOM_PROXY = _RandomModuleProxy()
_NUMPY_PROXY = _NumpyProxy()


def install() -> None:
    """Put the proxies into every loaded audiomentations module (idempotent, thread-safe)."""
    with _INSTALL_LOCK:
        for name, module in list(sys.modules.items()):
            if not (name == _PACKAGE or name.startswith(_PACKAGE + ".")) or not isinstance(module, ModuleType):
                continue
            if getattr(module, "random", None) is random:
                module.random = _RANDOM_PROXY
            if getattr(module, "np", None) is numpy:
                module.np = _NUMPY_PROXY


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Within the block, this thread's audiomentations draws come from generators seeded with ``seed``."""
    install()
    previous = (getattr(_LOCAL, "random", None), getattr(_LOCAL, "numpy_random", None))
    _LOCAL.random = random.Random(seed)
    _LOCAL.numpy_random = numpy.random.RandomState(seed & 0xFFFFFFFF)
    try:
        yield
    finally:
        _LOCAL.random, _LOCAL.numpy_random = previous
