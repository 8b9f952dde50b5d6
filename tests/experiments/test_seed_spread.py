"""``benchmarks/seed_spread.py``'s summary: statistics over seeds, margins
paired by seed over Standard and over AT, and no spread claimed from one seed."""

import importlib.util
import statistics
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "seed_spread.py"


@pytest.fixture(scope="module")
def spread():
    spec = importlib.util.spec_from_file_location("seed_spread", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNS = {
    "standard": {1: {"clean": 0.98, "pgd": 0.05, "apgd": 0.00}, 2: {"clean": 0.99, "pgd": 0.03, "apgd": 0.01}},
    "at": {1: {"clean": 0.99, "pgd": 0.92, "apgd": 0.88}, 2: {"clean": 0.99, "pgd": 0.93, "apgd": 0.89}},
    "lfr": {1: {"clean": 0.97, "pgd": 0.50, "apgd": 0.40}, 2: {"clean": 0.98, "pgd": 0.52, "apgd": 0.43}},
}


def test_margins_are_paired_by_seed_over_standard_and_over_at(spread):
    summary, margins = spread.summarize(RUNS, ("standard", "at", "lfr"), [1, 2])
    assert summary["lfr"]["pgd"]["mean"] == pytest.approx(0.51)
    assert summary["lfr"]["pgd"]["std"] == pytest.approx(statistics.stdev([0.50, 0.52]))
    assert (summary["lfr"]["apgd"]["min"], summary["lfr"]["apgd"]["max"], summary["lfr"]["apgd"]["n"]) == (0.40, 0.43, 2)
    assert set(margins) == {"standard", "at"}
    assert set(margins["standard"]) == {"at", "lfr"} and set(margins["at"]) == {"lfr"}
    # paired: per seed 0.45 and 0.49, so the spread of the differences, not of either method
    assert margins["standard"]["lfr"]["pgd"]["mean"] == pytest.approx(0.47)
    assert margins["standard"]["lfr"]["pgd"]["std"] == pytest.approx(statistics.stdev([0.45, 0.49]))
    assert margins["at"]["lfr"]["apgd"]["mean"] == pytest.approx(-0.47)
    lines = spread.table_lines(summary, margins)
    assert "| lfr - at | -1.5 ± 0.7 | -41.5 ± 0.7 | -47.0 ± 1.4 |" in lines


def test_one_seed_states_no_spread(spread):
    summary, margins = spread.summarize(RUNS, ("lfr",), [2])
    assert summary["lfr"]["clean"]["std"] is None and margins == {}
    assert spread.table_lines(summary, margins)[2] == "| lfr | 98.0 (one seed) [98.0, 98.0] | 52.0 (one seed) [52.0, 52.0] | 43.0 (one seed) [43.0, 43.0] |"
