from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from carbon.errors import SourceError, SourceUnavailable
from carbon.sources._procfs import CpuTicks, busy_fraction, read_cpu_ticks
from carbon.sources._tdp_table import load_tdp_table, match_tdp, normalise_cpu_name
from carbon.sources.base import Component, PowerSource, Provenance
from carbon.sources.cpu_estimate import (
    DEFAULT_TDP_W_PER_CPU,
    CpuEstimateSource,
    choose_tdp,
    cpu_power_fraction,
)

# /proc/stat fields after the label: user nice system idle iowait irq softirq steal guest
# guest_nice. Busy = all but idle and iowait; guest is already inside user.
Ticks = Sequence[int]


def write_stat(proc: Path, lines: Mapping[int, Ticks]) -> None:
    total = [sum(column) for column in zip(*lines.values(), strict=True)]
    text = ["cpu  " + " ".join(map(str, total))]
    text += [f"cpu{cpu} " + " ".join(map(str, ticks)) for cpu, ticks in sorted(lines.items())]
    text += ["intr 12345 0 0", "ctxt 999", "btime 1700000000"]
    (proc / "stat").write_text("\n".join(text) + "\n")


def write_cpuinfo(proc: Path, model: str | None, packages: Sequence[int] = (0,)) -> None:
    blocks = []
    for cpu, package in enumerate(packages):
        lines = [f"processor\t: {cpu}", "vendor_id\t: GenuineIntel"]
        if model is not None:
            lines.append(f"model name\t: {model}")
        lines.append(f"physical id\t: {package}")
        blocks.append("\n".join(lines))
    (proc / "cpuinfo").write_text("\n\n".join(blocks) + "\n")


def ticks(busy: int, idle: int) -> list[int]:
    """A /proc/stat line with ``busy`` ticks of user time and ``idle`` idle ticks."""
    return [busy, 0, 0, idle, 0, 0, 0, 0, 0, 0]


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    root.mkdir()
    write_cpuinfo(root, "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz")
    write_stat(root, {cpu: ticks(1000, 1000) for cpu in range(4)})
    return root


# --- the model -----------------------------------------------------------------------


def test_power_fraction_is_codecarbons_cubic_model() -> None:
    assert cpu_power_fraction(0.0) == pytest.approx(0.1)
    assert cpu_power_fraction(0.5) == pytest.approx(0.1 + 0.9 * 0.125)  # 0.2125
    assert cpu_power_fraction(1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("load", [-0.01, 1.01, float("nan")])
def test_power_fraction_rejects_loads_outside_0_1(load: float) -> None:
    with pytest.raises(ValueError, match="load"):
        cpu_power_fraction(load)


# --- /proc/stat ----------------------------------------------------------------------


def test_busy_time_excludes_idle_iowait_and_double_counted_guest(tmp_path: Path) -> None:
    # user 40 (guest 10 inside it), system 10, idle 40, iowait 10, guest 10
    write_stat(tmp_path, {0: [40, 0, 10, 40, 10, 0, 0, 0, 10, 0]})
    assert read_cpu_ticks({0}, tmp_path) == CpuTicks(busy=50, total=100)


def test_only_the_affinity_cpus_are_counted(tmp_path: Path) -> None:
    write_stat(tmp_path, {0: ticks(10, 90), 1: ticks(30, 70), 2: ticks(100, 0)})
    assert read_cpu_ticks({0, 1}, tmp_path) == CpuTicks(busy=40, total=200)


def test_busy_fraction_between_readings() -> None:
    before, after = CpuTicks(busy=100, total=400), CpuTicks(busy=175, total=500)
    assert busy_fraction(before, after) == pytest.approx(0.75)
    assert busy_fraction(after, after) is None


def test_no_line_for_the_cpus(tmp_path: Path) -> None:
    write_stat(tmp_path, {0: ticks(1, 1)})
    with pytest.raises(ValueError, match="no line"):
        read_cpu_ticks({5}, tmp_path)


# --- the TDP table (codecarbon 3.3.2 data/hardware/cpu_power.csv) -----------------------


@pytest.mark.parametrize(
    ("reported", "row", "tdp_w"),
    [
        # rows of cpu_power.csv: "Intel Xeon Platinum 8375C,300", "AMD EPYC 7763,280.0",
        # "Intel Core i7-10700K,125.0", "AMD Ryzen 7 7840HS,54", "Intel Core i7-1185G7,28"
        ("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "Intel Xeon Platinum 8375C", 300.0),
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763", 280.0),
        ("Intel(R) Core(TM) i7-10700K CPU @ 3.80GHz", "Intel Core i7-10700K", 125.0),
        ("AMD Ryzen 7 7840HS w/ Radeon 780M Graphics", "AMD Ryzen 7 7840HS", 54.0),
        ("11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", "Intel Core i7-1185G7", 28.0),
    ],
)
def test_real_cpu_names_match_their_rows(reported: str, row: str, tdp_w: float) -> None:
    match = match_tdp(reported, load_tdp_table())
    assert match is not None
    assert (match.table_name, match.tdp_w) == (row, tdp_w)


@pytest.mark.parametrize("reported", ["AMD EPYC", "Intel(R) Xeon(R) CPU @ 2.20GHz", ""])
def test_vague_names_match_nothing(reported: str) -> None:
    assert match_tdp(reported, load_tdp_table()) is None


def test_normalisation() -> None:
    assert normalise_cpu_name("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz") == (
        "intel xeon platinum 8375c"
    )
    assert normalise_cpu_name("AMD EPYC 7763 64-Core Processor") == "amd epyc 7763"


def test_token_match_needs_whole_model_numbers_and_a_unique_tdp(tmp_path: Path) -> None:
    table_path = tmp_path / "cpus.csv"
    table_path.write_text("Name,TDP\nIntel Core i7-10700,65\nAcme Z 1000,50\nAcme Y 1000,60\n")
    table = load_tdp_table(table_path)
    assert match_tdp("Intel Core i7-10700K", table) is None
    assert match_tdp("Intel Core i7-10700 Special Edition", table) is not None
    assert match_tdp("Acme Z Y 1000", table) is None  # two rows fit equally, TDPs differ


def test_choose_tdp_multiplies_by_packages() -> None:
    choice = choose_tdp("AMD EPYC 7763 64-Core Processor", logical_cpus=256, sockets=2)
    assert choice.tdp_w == 560.0  # 280 W per package x 2
    assert choice.table_name == "AMD EPYC 7763"


def test_choose_tdp_default_says_so() -> None:
    choice = choose_tdp("AMD EPYC", logical_cpus=64, sockets=1)
    assert DEFAULT_TDP_W_PER_CPU == 4.0
    assert choice.tdp_w == 256.0  # 4 W x 64 logical CPUs
    assert choice.table_name is None
    assert "CPU model 'AMD EPYC' not in codecarbon's TDP table" in choice.detail
    assert "256 W assumed" in choice.detail


def test_choose_tdp_without_a_model_name() -> None:
    choice = choose_tdp(None, logical_cpus=2, sockets=None)
    assert choice.tdp_w == 8.0
    assert "CPU model unknown" in choice.detail


# --- the source ----------------------------------------------------------------------


def test_integrates_the_model_over_hand_computed_intervals(proc: Path) -> None:
    # 4 CPUs, the process may use 0 and 1: share 2/4; TDP 100 W given.
    source = CpuEstimateSource.open(
        proc_root=proc, tdp_w=100.0, cpus={0, 1}, cpu_count=4, now_s=10.0
    )
    assert isinstance(source, PowerSource)

    # [10, 12] s: CPUs 0 and 1 each 50 busy / 50 idle ticks -> load 0.5 (CPUs 2-3 fully busy,
    # not ours). Power = 100 x 0.5 x (0.1 + 0.9 x 0.125) = 10.625 W; energy 2 s -> 21.25 J.
    write_stat(
        proc,
        {0: ticks(1050, 1050), 1: ticks(1050, 1050), 2: ticks(1100, 1000), 3: ticks(1100, 1000)},
    )
    (first,) = source.read(12.0)
    assert first.utilization == pytest.approx(0.5)
    assert first.power_w == pytest.approx(10.625)
    assert first.energy_j == pytest.approx(21.25)

    # [12, 13] s: CPU 0 100 busy, CPU 1 100 busy -> load 1.0 -> 100 x 0.5 x 1.0 = 50 W; +50 J.
    write_stat(
        proc,
        {0: ticks(1150, 1050), 1: ticks(1150, 1050), 2: ticks(1100, 1100), 3: ticks(1100, 1100)},
    )
    (second,) = source.read(13.0)
    assert second.utilization == pytest.approx(1.0)
    assert second.power_w == pytest.approx(50.0)
    assert second.energy_j == pytest.approx(71.25)

    # [13, 17] s: idle -> 100 x 0.5 x 0.1 = 5 W; +20 J.
    write_stat(
        proc,
        {0: ticks(1150, 1250), 1: ticks(1150, 1250), 2: ticks(1100, 1300), 3: ticks(1100, 1300)},
    )
    (third,) = source.read(17.0)
    assert third.power_w == pytest.approx(5.0)
    assert third.energy_j == pytest.approx(91.25)


def test_no_tick_passed_leaves_the_interval_for_the_next_read(proc: Path) -> None:
    source = CpuEstimateSource.open(proc_root=proc, tdp_w=40.0, cpus={0}, cpu_count=1, now_s=0.0)
    (same,) = source.read(0.005)
    assert same.energy_j == 0.0
    assert same.power_w is None
    assert same.utilization is None
    # [0, 2] s as one interval: 25 busy of 100 -> load 0.25 -> 40 x (0.1 + 0.9/64) W.
    write_stat(proc, {0: ticks(1025, 1075), 1: ticks(1000, 1000)})
    (later,) = source.read(2.0)
    power_w = 40.0 * (0.1 + 0.9 * 0.25**3)  # 4.5625 W
    assert later.power_w == pytest.approx(power_w)
    assert later.energy_j == pytest.approx(2.0 * power_w)


def test_device_describes_the_model_and_the_tdp_from_the_table(proc: Path) -> None:
    write_cpuinfo(proc, "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", packages=(0, 0, 1, 1))
    source = CpuEstimateSource.open(proc_root=proc, cpus={0, 1, 2, 3}, cpu_count=4, now_s=0.0)
    (device,) = source.devices
    assert device.component is Component.CPU
    assert device.method == "tdp_estimate"
    assert device.provenance is Provenance.ESTIMATED
    assert device.name == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    assert device.power_limit_w == 600.0  # 300 W per package x 2 packages
    assert "Intel Xeon Platinum 8375C" in device.detail
    assert "0.1 + 0.9 x load^3" in device.detail
    assert "share = 4/4" in device.detail


def test_unknown_model_uses_the_default_and_says_so(proc: Path) -> None:
    write_cpuinfo(proc, "AMD EPYC")
    source = CpuEstimateSource.open(proc_root=proc, cpus={0, 1}, cpu_count=4, now_s=0.0)
    (device,) = source.devices
    assert device.power_limit_w == 16.0  # 4 W x 4 logical CPUs
    assert "CPU model 'AMD EPYC' not in codecarbon's TDP table" in device.detail


def test_unreadable_proc_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="cannot be read"):
        CpuEstimateSource.open(proc_root=tmp_path / "missing", cpus={0}, cpu_count=1)


def test_read_errors(proc: Path) -> None:
    source = CpuEstimateSource.open(proc_root=proc, tdp_w=10.0, cpus={0}, cpu_count=4, now_s=5.0)
    with pytest.raises(ValueError, match="backwards"):
        source.read(4.0)
    (proc / "stat").unlink()
    with pytest.raises(SourceError, match="could not be read"):
        source.read(6.0)
    source.close()
    with pytest.raises(SourceError, match="after close"):
        source.read(7.0)


@pytest.mark.parametrize("tdp_w", [0.0, -5.0, float("nan"), float("inf")])
def test_bad_tdp(proc: Path, tdp_w: float) -> None:
    with pytest.raises(ValueError, match="tdp_w"):
        CpuEstimateSource.open(proc_root=proc, tdp_w=tdp_w, cpus={0}, cpu_count=4)
