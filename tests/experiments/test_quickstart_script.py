"""The main job's script ends by printing the committed reference table
beside the quick one: that part runs here on the committed files."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "quickstart.sh"


def test_quickstart_prints_the_reference_rows_after_the_quick_table():
    lines = SCRIPT.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("reference="))
    assert any(line.startswith("lfr-rs table1 --preset quick") for line in lines[:start]), "the quick table comes first"
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines[start:])], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table[0].startswith("| Defense | source | Clean") and table[1].startswith("|---")
    assert [row.split("|")[1].strip() for row in table[2:]] == ["Standard", "AT", "TRADES", "LLR", "LFR", "GradNorm"]
    assert all("| ours |" in row for row in table[2:]), "the paper's rows are not repeated here"
