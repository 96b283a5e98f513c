"""Shared fixtures: oomguard in cpu mode for the whole session, tiny models.

The package must be pip-installed first (`pip install --no-build-isolation .`).
"""

from __future__ import annotations

import gc
import os
import sys

import pytest
import torch

import oomguard

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session", autouse=True)
def installed(tmp_path_factory):
    # The exit report of the test process goes to a temporary directory.
    handle = oomguard.install(mode="cpu", report_dir=str(tmp_path_factory.mktemp("reports")))
    assert handle.enabled and handle.mode == "cpu"
    return handle


@pytest.fixture(autouse=True)
def collect_previous_tests_objects():
    # Categories are process-wide: a model left alive by an earlier test
    # would still count as weights.
    gc.collect()
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def deterministic():
    torch.manual_seed(0)
