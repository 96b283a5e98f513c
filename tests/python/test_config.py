"""OOMGUARD_CONF: the grammar of PYTORCH_CUDA_ALLOC_CONF, clear errors."""

from __future__ import annotations

import pytest

import oomguard
from oomguard import config


def test_conf_and_arguments_merge(monkeypatch):
    monkeypatch.setenv("OOMGUARD_CONF", "mode:cpu,budget:2GiB,report_dir:out")
    cfg = config.load(budget="90%")
    assert (cfg.mode, cfg.budget, cfg.report_dir) == ("cpu", "90%", "out")
    assert cfg.allocator_conf == "budget:90%"
    assert not cfg.disabled


def test_unknown_key_is_named_and_accepted_keys_listed(monkeypatch):
    monkeypatch.setenv("OOMGUARD_CONF", "mode:cpu,bugdet:1GiB")
    with pytest.raises(ValueError) as error:
        config.load()
    message = str(error.value)
    assert "bugdet" in message
    for key in ("mode", "budget", "report_dir", "limit_activations"):
        assert key in message


def test_bad_mode_lists_modes():
    with pytest.raises(oomguard.ConfigError) as error:
        config.load(mode="fast", conf="")
    assert "fast" in str(error.value) and "observe" in str(error.value) and "cpu" in str(error.value)


@pytest.mark.parametrize("conf", ["budget:lots", "limit_weights:12XB", "per_stream_pools:maybe", "mode"])
def test_bad_values_are_named(conf):
    with pytest.raises(ValueError) as error:
        config.load(conf=conf)
    assert conf.split(":")[-1] in str(error.value) or conf in str(error.value)


def test_disable_from_environment(monkeypatch):
    monkeypatch.setenv("OOMGUARD_DISABLE", "1")
    assert config.load(conf="").disabled
    monkeypatch.setenv("OOMGUARD_DISABLE", "0")
    assert not config.load(conf="").disabled
    monkeypatch.setenv("OOMGUARD_DISABLE", "perhaps")
    with pytest.raises(ValueError, match="OOMGUARD_DISABLE"):
        config.load(conf="")


def test_install_is_idempotent():
    assert oomguard.install() is oomguard.install(mode="cpu")
