"""Windows paths (drive letters, backslashes, UNC shares) where handling them is logic, not the OS.

No machine here runs Windows, so what these check is the part that would be the same there:
the command line keeps every path parameter exactly as given, the partial-file rule (which
the provider relies on to clean up) keeps a path's drive or share and folder, and an assembled
VRT names parts on another drive or share absolutely, since no relative path reaches them.
``ntpath`` and ``PureWindowsPath`` are Python's own Windows path logic, runnable anywhere.
"""

from __future__ import annotations

import ntpath
import posixpath
from pathlib import PureWindowsPath

import pytest

from pix2pix_qgis.cli.main import build_parser
from pix2pix_qgis.contract.params import Kind, check, to_argv
from pix2pix_qgis.contract.protocol import partial_paths
from pix2pix_qgis.contract.tables import COMMANDS
from pix2pix_qgis.scale.assemble import source_filename

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


@pytest.mark.parametrize(("part", "vrt_folder", "expected"), [
    (r"C:\runs\parts\part-0000-of-0002.tif", r"C:\runs", ("parts/part-0000-of-0002.tif", True)),
    (r"C:\runs\parts\p.tif", r"C:\runs\vrt", ("../parts/p.tif", True)),
    (r"c:\runs\parts\p.tif", "C:/runs", ("parts/p.tif", True)),  # drive letters ignore case
    (r"\\server\share\parts\p.tif", r"\\server\share\vrt", ("../parts/p.tif", True)),
    (r"D:\parts\p.tif", r"C:\out", (r"D:\parts\p.tif", False)),  # another drive: no relative path
    (r"\\server\share\parts\p.tif", r"C:\out", (r"\\server\share\parts\p.tif", False)),
    (r"\\server\other\parts\p.tif", r"\\server\share\vrt", (r"\\server\other\parts\p.tif", False)),
])
def test_vrt_names_parts_relatively_where_windows_allows_and_absolutely_elsewhere(part, vrt_folder, expected):
    assert source_filename(part, vrt_folder, ntpath) == expected


def test_vrt_names_parts_relatively_on_posix():
    assert source_filename("/data/job/parts/p.tif", "/data/job", posixpath) == ("parts/p.tif", True)
