"""Refuses to load the native module under a torch it was not compiled against.

The extension calls libtorch's C++ API, which changes between torch releases:
loaded under another torch it fails with an undefined symbol, or worse. build.rs
writes ``lfr-rs built against torch <version>;`` into the binary; this module
reads it from the file before the loader maps the file, and raises an
``ImportError`` naming both versions and the rebuild command.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Optional

MARKER = b"lfr-rs built against torch "
SUPPORTED = ("2.11.0", "2.13.0")  # keep in step with build_backend/lfr_rs_build.py


def release(version: str) -> str:
    """``2.13.0+cu130`` -> ``2.13.0``: the local suffix names the build, not the C++ API."""
    return version.split("+", 1)[0]


def built_against(path: str) -> Optional[str]:
    """The torch version recorded in the extension at ``path``, or None."""
    with open(path, "rb") as f:
        data = f.read()
    start = data.find(MARKER)
    if start < 0:
        return None
    start += len(MARKER)
    end = data.find(b";", start, start + 64)
    return data[start:end].decode("ascii", "replace") if end > 0 else None


def mismatch_message(built: str, running: str) -> str:
    return (
        f"lfr_rs was compiled against torch {built}, but torch {running} is installed "
        f"(the extension only runs with the torch it was built against). Either install torch=={release(built)}, "
        f"or rebuild lfr_rs against the installed torch (supported: {', '.join(SUPPORTED)}):\n"
        f"    {sys.executable} -m pip install --no-build-isolation --force-reinstall --no-deps "
        f"<lfr-rs sdist or source folder>"
    )


def check(torch_version: str) -> None:
    """Raises ImportError when the extension was built against another torch release."""
    spec = importlib.util.find_spec("lfr_rs._native")
    if spec is None or not spec.origin:
        return  # the import that follows reports a missing extension itself
    built = built_against(spec.origin)
    if built is not None and built != "unknown" and release(built) != release(torch_version):
        raise ImportError(mismatch_message(built, torch_version), name="lfr_rs._native", path=spec.origin)
