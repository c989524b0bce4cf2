"""Windows paths (drive letters, backslashes, UNC shares) where handling them is logic, not the OS.

No machine here runs Windows, so what these check is the part that would be the same there:
the command line keeps every path parameter exactly as given, and the partial-file rule (which
the provider relies on to clean up) keeps a path's drive or share and folder.
``PureWindowsPath`` is Python's own Windows path logic, runnable anywhere. (An assembled VRT's
names of parts on other drives: ``scale/test_parts.py``.)
"""

from __future__ import annotations

from pathlib import PureWindowsPath

import pytest

from pix2pix_qgis.cli.main import build_parser
from pix2pix_qgis.contract.params import Kind, check, to_argv
from pix2pix_qgis.contract.protocol import partial_paths
from pix2pix_qgis.contract.tables import COMMANDS

WINDOWS_PATHS = [
    r"C:\Users\Ana Lyst\GIS data\relief.tif",  # drive letter, backslashes, spaces
    "D:/projects/pix2pix/out.tif",  # drive letter, forward slashes
    r"\\fileserver\gis share\run 1\out.tif",  # UNC share
    r"\\?\C:\very\long\path\out.tif",  # the long-path prefix
    r"E:relative\out.tif",  # drive-relative
]


@pytest.mark.parametrize("path", WINDOWS_PATHS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_every_path_parameter_keeps_a_windows_path_exactly(command, path):
    argv = [command.name]
    paths = [param for param in command if param.cli and param.kind in (Kind.PATH, Kind.PATHS)]
    assert paths, f"{command.name} has no path parameter"
    for param in paths:
        value = [path] if param.kind == Kind.PATHS else path
        check(param, value)
        argv += [path] if param.positional else to_argv(param, value)
    args = build_parser().parse_args(argv)
    for param in paths:
        assert getattr(args, param.dest) == ([path] if param.kind == Kind.PATHS else path), param.name


@pytest.mark.parametrize(("target", "plain", "suffixed"), [
    (r"C:\Users\Ana\out.tif", r"C:\Users\Ana\.out.tif.partial-42", r"C:\Users\Ana\.out.partial-42.tif"),
    ("D:/models/model.p2p", r"D:\models\.model.p2p.partial-42", r"D:\models\.model.partial-42.p2p"),
    (r"\\server\share\out.tif", r"\\server\share\.out.tif.partial-42", r"\\server\share\.out.partial-42.tif"),
    (r"\\server\share\chips", r"\\server\share\.chips.partial-42", r"\\server\share\.chips.partial-42"),
])
def test_partial_names_stay_beside_the_target_on_its_drive_or_share(target, plain, suffixed):
    """The rename onto the target is atomic only within one volume, and the provider removes these names."""
    assert partial_paths(PureWindowsPath(target), 42) == (PureWindowsPath(plain), PureWindowsPath(suffixed))
