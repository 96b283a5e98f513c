"""The guard's OOMGUARD_CONF keys: accepted values and clear errors."""

from __future__ import annotations

import pytest

import oomguard
from oomguard import guard


def test_guard_keys_are_accepted_by_the_config_loader():
    cfg = oomguard.config.load(conf="mode:cpu,actions:warn+abort,warn_at:0.8,predict_after:3,max_seq_len:4096")
    assert guard.parse_config(cfg.entries) == {"actions": ["warn", "abort"], "warn_at": 0.8, "predict_after": 3,
                                               "max_seq_len": 4096}


@pytest.mark.parametrize("conf, named", [("actions:warn+explode", "explode"), ("actions:warn+warn", "twice"),
                                         ("warn_at:1.5", "warn_at"), ("predict_after:0", "predict_after")])
def test_bad_guard_values_name_the_key_and_what_is_accepted(conf, named):
    with pytest.raises(oomguard.ConfigError, match=named):
        guard.parse_config(oomguard.config.load(conf=conf).entries)


def test_an_unknown_action_lists_the_accepted_ones():
    with pytest.raises(oomguard.ConfigError) as error:
        guard.parse_config({"actions": "warn+shrink"})
    for kind in guard.ACTION_KINDS:
        assert kind in str(error.value)

