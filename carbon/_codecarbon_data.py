"""Find the data files that the installed codecarbon package ships, without importing it.

Importing ``codecarbon`` loads pandas and its tracker (about a second), and carbon only
needs two of its data files: the CPU TDP table and the country energy mix. So the package is
located with :func:`importlib.util.find_spec`, which finds a top-level package on the path
without executing its ``__init__``, and the files are read directly from its folder.
"""

from __future__ import annotations

import functools
import importlib.util
from importlib import metadata
from pathlib import Path, PurePosixPath

from carbon.errors import SourceUnavailable

__all__ = ["codecarbon_data_path", "codecarbon_version"]

_PACKAGE = "codecarbon"


def _package_dir() -> Path:
    """Return the folder of the installed codecarbon package.

    Raises:
        SourceUnavailable: codecarbon is not installed (or is not a regular package).
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None:
        raise SourceUnavailable(
            "the codecarbon package is not installed; carbon reads its CPU TDP table and "
            "grid intensity data (install carbon's dependencies: pip install codecarbon)"
        )
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        raise SourceUnavailable(
            f"codecarbon was found at {spec.origin} but is not a package folder; "
            "carbon cannot locate its bundled data files"
        )
    return Path(locations[0])


def codecarbon_data_path(relative: str) -> Path:
    """Return the path of a data file bundled with codecarbon.

    Args:
        relative: Path below codecarbon's ``data`` folder, with forward slashes
            (``hardware/cpu_power.csv``).

    Returns:
        The absolute path of the file, which exists.

    Raises:
        ValueError: ``relative`` is absolute or climbs out of the data folder.
        SourceUnavailable: codecarbon is not installed, or this version does not ship the file.
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise ValueError(f"expected a path inside codecarbon's data folder, got {relative!r}")
    path = _package_dir().joinpath("data", *parts)
    if not path.is_file():
        raise SourceUnavailable(
            f"codecarbon {codecarbon_version() or '(unknown version)'} does not ship "
            f"data/{relative} (looked for {path}); reinstall codecarbon>=3.0"
        )
    return path


@functools.cache
def codecarbon_version() -> str | None:
    """Return the installed codecarbon version, or ``None`` where it cannot be read.

    Read once per process: every zone's source names it, and reading package metadata
    scans the installed distributions each time.
    """
    try:
        return metadata.version(_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
