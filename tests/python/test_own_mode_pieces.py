"""The parts of own mode that need no GPU: the library torch would load and
the core's configuration."""

from __future__ import annotations

import ctypes
import os

import pytest

import oomguard
from oomguard import _C


def test_core_library_is_the_one_next_to_the_extension():
    path = _C.core_library_path()
    assert os.path.basename(path) == "liboomguard_core.so"
    assert os.path.dirname(os.path.realpath(path)) == os.path.dirname(os.path.realpath(_C.__file__))
    library = ctypes.CDLL(path)  # what CUDAPluggableAllocator does
    assert library.oomguard_malloc and library.oomguard_free


def test_bad_allocator_conf_names_the_key():
    with pytest.raises(oomguard.ConfigError, match="limit_adapters"):
        _C.configure_core_allocator("limit_adapters:lots")
