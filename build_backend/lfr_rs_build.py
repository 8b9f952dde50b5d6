"""PEP 517 backend: maturin, pointed at the torch of the interpreter running the build.

lfr-rs links libtorch's C++ API, so it must be compiled against the very torch
it will run with, and each torch release needs its own tch version (see
``TORCH_VARIANTS``). This wrapper, before handing every hook to maturin:

* reads the torch installed for ``sys.executable`` (the interpreter pip runs
  the build with) and fails with a message saying what to do when there is
  none (an isolated build, or torch not installed yet) or it is unsupported;
* picks the Cargo manifest of that torch's tch version;
* puts that interpreter first on ``PATH`` as ``python``/``python3``, because
  torch-sys's build script runs whichever ``python`` is first on ``PATH``:
  ``venv/bin/pip install --no-build-isolation .`` without activating the venv
  would otherwise find another Python, without torch.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import maturin

# torch major.minor -> (the release its tch version checks for, that tch version's Cargo manifest).
TORCH_VARIANTS: Dict[str, Tuple[str, str]] = {
    "2.11": ("2.11.0", "variants/torch-2.11/Cargo.toml"),
    "2.13": ("2.13.0", "Cargo.toml"),
}
SUPPORTED = ", ".join(release for release, _ in TORCH_VARIANTS.values())


class BuildError(Exception):
    pass


def torch_release() -> str:
    """The installed torch's ``X.Y.Z`` (without ``+cu130``-style suffixes)."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        raise BuildError(
            f"lfr-rs is compiled against the torch installed for the Python running this build "
            f"({sys.executable}), and there is none.\n"
            f"  - If pip is building in an isolated environment, build with the torch you use instead:\n"
            f"      {sys.executable} -m pip install torch==2.13.0   # or another supported release: {SUPPORTED}\n"
            f"      {sys.executable} -m pip install --no-build-isolation lfr-rs   # (or the sdist / source folder)\n"
            f"  - From a source tree: install torch and maturin into the venv first, then "
            f"`path/to/venv/bin/pip install --no-build-isolation .`"
        ) from None
    return version.split("+", 1)[0]


def manifest_for(release: str) -> str:
    minor = ".".join(release.split(".")[:2])
    if minor not in TORCH_VARIANTS:
        raise BuildError(
            f"torch {release} is installed for {sys.executable}, and lfr-rs builds against torch {SUPPORTED} only.\n"
            f"  Install one of them first, e.g. `{sys.executable} -m pip install torch==2.13.0`."
        )
    expected, manifest = TORCH_VARIANTS[minor]
    if release != expected:
        # torch-sys checks the exact release; a patch release keeps the operator set
        # of its minor release (only the releases in TORCH_VARIANTS are tested).
        os.environ.setdefault("LIBTORCH_BYPASS_VERSION_CHECK", "1")
    return manifest


def _python_first_on_path() -> None:
    shim = Path(tempfile.mkdtemp(prefix="lfr-rs-build-python-"))
    atexit.register(shutil.rmtree, shim, True)
    for name in ("python", "python3"):
        # a script, not a symlink: a venv's Python finds its pyvenv.cfg only from its own path
        (shim / name).write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        (shim / name).chmod(0o755)
    bin_dir = os.path.dirname(sys.executable)  # the venv's maturin, if it has one
    os.environ["PATH"] = os.pathsep.join([str(shim), bin_dir, os.environ.get("PATH", "")])
    os.environ["VIRTUAL_ENV"] = sys.prefix  # torch-sys runs `python` (not `python3`) when this is set


def write_variant_pyproject(variant_dir: Path, root: Path = Path(".")) -> Path:
    """maturin reads the ``pyproject.toml`` beside the manifest it builds: without
    one, a variant's wheel held the bare ``_native`` module and no metadata. This
    writes the root ``pyproject.toml`` there, with the README copied and the
    Python package copied beside it (all generated, not committed), so every
    variant builds the same package, dependencies and entry points."""
    text = (root / "pyproject.toml").read_text()
    source = text.split('python-source = "', 1)[1].split('"', 1)[0] if 'python-source = "' in text else None
    if not source:
        raise BuildError("pyproject.toml has no [tool.maturin] python-source entry")
    # maturin takes nothing from outside the folder it builds (a readme there is refused; a python-source
    # there, or a link to one, is silently left out), so the package and the readme are copied into it
    copy = variant_dir / source
    if copy.is_symlink():
        copy.unlink()
    elif copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(root / source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    shutil.copyfile(root / "README.md", variant_dir / "README.md")
    text = text.replace('build-backend = "lfr_rs_build"', 'build-backend = "maturin"')
    text = text.replace('backend-path = ["build_backend"]\n', "")
    header = "# Generated by build_backend/lfr_rs_build.py from the root pyproject.toml; do not edit.\n"
    path = variant_dir / "pyproject.toml"
    path.write_text(header + text)
    return path


def _configure() -> None:
    try:
        manifest = manifest_for(torch_release())
    except BuildError as e:
        sys.stderr.write(f"\nerror: {e}\n\n")
        sys.stderr.flush()
        raise SystemExit(1) from None
    _python_first_on_path()
    os.environ["LIBTORCH_USE_PYTORCH"] = "1"
    if manifest != "Cargo.toml":
        write_variant_pyproject(Path(manifest).parent)
    if manifest != "Cargo.toml" and "--manifest-path" not in os.environ.get("MATURIN_PEP517_ARGS", ""):
        extra = os.environ.get("MATURIN_PEP517_ARGS", "")
        os.environ["MATURIN_PEP517_ARGS"] = f"{extra} --manifest-path {shlex.quote(manifest)}".strip()


Settings = Optional[Mapping[str, Any]]


def get_requires_for_build_wheel(config_settings: Settings = None) -> list:
    _configure()
    return maturin.get_requires_for_build_wheel(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Settings = None) -> str:
    _configure()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(wheel_directory: str, config_settings: Settings = None, metadata_directory: Optional[str] = None) -> str:
    _configure()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


get_requires_for_build_editable = get_requires_for_build_wheel


def build_editable(wheel_directory: str, config_settings: Settings = None,
                   metadata_directory: Optional[str] = None) -> str:
    _configure()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


# An sdist holds the sources of every variant and needs no torch.
get_requires_for_build_sdist = maturin.get_requires_for_build_sdist
build_sdist = maturin.build_sdist
