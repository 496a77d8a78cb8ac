"""The machine configuration inside a state file keeps every NIC setting: a machine loaded
from it gets the same backends (a `--nic user` VM keeps its hostfwd rules, a switch port its
VLAN), the same MAC and the same capture file."""

from __future__ import annotations

import json
from pathlib import Path

from vmm.config import MachineConfig, NicConfig
from vmm.snapshot.statefile import config_from_dict, config_to_dict


def test_nic_options_and_capture_survive_the_round_trip(tmp_path: Path) -> None:
    config = MachineConfig(name="vm", machine="pc")
    config.nics = [
        NicConfig("ethernet0", "user", "52:54:00:12:34:56", tmp_path / "a.pcap", {"hostfwd": "tcp::0-:80"}),
        NicConfig("ethernet1", "switch", None, None, {"switch": "/tmp/sw", "vlan": "10"}),
    ]
    back = config_from_dict(json.loads(json.dumps(config_to_dict(config))))
    assert back.nics == config.nics


def test_a_state_written_before_nic_options_still_loads() -> None:
    data = config_to_dict(MachineConfig(name="vm", nics=[NicConfig("ethernet0", "loopback", "52:54:00:00:00:01")]))
    for nic in data["nics"]:
        del nic["options"], nic["pcap"]
    assert config_from_dict(data).nics == [NicConfig("ethernet0", "loopback", "52:54:00:00:00:01")]
