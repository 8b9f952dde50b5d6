"""Build/import plumbing: the torch version recorded in the extension, the
ImportError under another torch, and the build backend's choice of variant.
(Wheel and sdist installs are scripts/package_check.sh; a real mismatched venv
is scripts/test_torch_variant.sh.)"""

import importlib.util
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

import lfr_rs
from lfr_rs import _native, _torch_check

ROOT = Path(__file__).resolve().parent.parent


def _release(v):
    return v.split("+", 1)[0]


def test_records_the_torch_it_was_built_against():
    assert _release(lfr_rs.__torch_version__) == _release(torch.__version__)
    assert _torch_check.built_against(_native.__file__) == lfr_rs.__torch_version__


# One subprocess (importing torch is the slow part): import under another
# supported release, then under another build (local suffix) of the same one.
IMPORTS = """
import sys, torch
built, other, same = sys.argv[1:]
torch.__version__ = other
try:
    import lfr_rs
except ImportError as e:
    print("MISMATCH:", e)
else:
    print("MISMATCH: none")
torch.__version__ = same
import lfr_rs
print("SAME:", lfr_rs.__torch_version__)
"""


def test_import_under_another_torch_raises_importerror_naming_both():
    built = lfr_rs.__torch_version__
    other = next(v for v in _torch_check.SUPPORTED if v != _release(built)) + "+cu130"
    same = _release(built) + "+cpu"
    proc = subprocess.run([sys.executable, "-c", IMPORTS, built, other, same], capture_output=True, text=True,
                          timeout=300, cwd=ROOT / "tests")
    assert proc.returncode == 0, proc.stderr
    mismatch = next(line for line in proc.stdout.splitlines() if line.startswith("MISMATCH:"))
    assert f"lfr_rs was compiled against torch {built}, but torch {other} is installed" in mismatch
    assert f"torch=={_release(built)}" in mismatch
    assert "pip install --no-build-isolation --force-reinstall --no-deps" in proc.stdout
    # another build of the same release (here "+cpu") imports
    assert f"SAME: {built}" in proc.stdout


@pytest.fixture
def backend(monkeypatch):
    monkeypatch.delenv("LIBTORCH_BYPASS_VERSION_CHECK", raising=False)
    spec = importlib.util.spec_from_file_location("lfr_rs_build", ROOT / "build_backend" / "lfr_rs_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backend_and_runtime_agree_on_supported_versions(backend):
    assert backend.SUPPORTED == ", ".join(_torch_check.SUPPORTED)


@pytest.mark.parametrize("release, tch", [("2.11.0", "0.24.0"), ("2.13.0", "0.26.0")])
def test_backend_picks_the_manifest_of_matching_tch(backend, release, tch):
    manifest = ROOT / backend.manifest_for(release)
    text = manifest.read_text()
    for crate in ("tch", "torch-sys", "pyo3-tch"):
        assert f'"={tch}"' in next(line for line in text.splitlines() if line.startswith(crate))
    lock = (manifest.parent / "Cargo.lock").read_text()
    assert f'name = "tch"\nversion = "{tch}"' in lock


def test_backend_refuses_unsupported_torch(backend):
    with pytest.raises(backend.BuildError, match=r"torch 2\.12\.0 is installed .* builds against torch 2\.11\.0, 2\.13\.0"):
        backend.manifest_for("2.12.0")


def test_backend_says_what_to_do_without_torch(backend, monkeypatch, capsys):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(backend.metadata, "version", missing)
    with pytest.raises(SystemExit):
        backend.get_requires_for_build_wheel()
    err = capsys.readouterr().err
    assert sys.executable in err and "--no-build-isolation" in err and "pip install torch==" in err
