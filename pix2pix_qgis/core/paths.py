"""Where a run may write: every output checked against the run's inputs and the filesystem, before any work.

Each command and each API function names its inputs and outputs once, at its start, in
:func:`check_run_paths`. An output is refused, with the path, the problem and the fix, when

- it **is an input** of the run: the same path, a symlink to it, a hard link or the same
  inode under another name; a raster input counts with every local file GDAL reads for it
  (a VRT's sources, a ``/vsizip/`` path's zip, side files); an output inside an input
  folder counts too, and so does an input inside an output folder that the run replaces;
- it is **another output** of the same run (or lies inside one that is a folder);
- it exists and is **not what the run writes**: a device, FIFO or socket (the atomic
  rename would put a GeoTIFF where ``/dev/null`` was), a folder where a file is written or a
  file where a folder is written; a GDAL virtual path (``/vsi…``), which cannot be renamed into;
- its **name cannot be held** by the filesystem, including the hidden staging name
  (``.<name>.partial-<pid>``, see ``outputs``) that is written first;
- its **folder cannot be written**: probed by creating and removing that staging name (or
  the first missing folder), so read-only disks and pseudo filesystems such as ``/proc``
  are caught before hours of training rather than after.

``outputs.staged_file``/``staged_directory`` repeat the per-output checks on every write,
so code that writes without declaring its run is still kept off devices and folders.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..contract.errors import Pix2PixError
from ..contract.protocol import partial_path, suffixed_partial_path

PathName = Union[str, "os.PathLike[str]"]

MAX_PID = 4_194_304  # Linux's largest pid_max: the longest staging name a run can get
_GDAL_ARCHIVES = ("/vsizip/", "/vsitar/", "/vsigzip/", "/vsi7z/", "/vsirar/")


@dataclass(frozen=True)
class _Input:
    role: str  # e.g. "input raster", "model", "chips folder"
    name: str  # as the user gave it
    path: Path  # a local file or folder it stands for (the name itself, or a file GDAL reads for it)


@dataclass(frozen=True)
class _Output:
    role: str
    path: Path
    folder: bool  # a folder the run creates or replaces as a whole


def check_run_paths(
    *,
    rasters: Mapping[str, PathName | None] | None = None,
    inputs: Mapping[str, PathName | None] | None = None,
    files: Mapping[str, PathName | None] | None = None,
    folders: Mapping[str, PathName | None] | None = None,
) -> None:
    """Refuse the run's outputs that would destroy an input, collide, or cannot be written (see the module).

    Each mapping goes from a role ("input raster", "report", …), used in messages, to a
    path; None values (options not given) are skipped. ``rasters`` are inputs read by
    GDAL (any name it takes), ``inputs`` other input files or folders, ``files`` output
    files and ``folders`` output folders that the run creates or replaces as a whole.
    """
    for group in (rasters, inputs, files, folders):
        for role, name in (group or {}).items():
            if name is not None:
                _check_encodable(str(name), role)
    sources: list[_Input] = []
    for role, name in (rasters or {}).items():
        if name is not None:
            check_raster_node(str(name), role)  # before GDAL opens it to list its files
            sources += [_Input(role, str(name), path) for path in raster_files(str(name))]
    for role, name in (inputs or {}).items():
        if name is not None:
            sources += [_Input(role, str(name), path) for path in local_files(str(name))]
    outputs = [_Output(role, Path(name).absolute(), folder)
               for group, folder in ((files, False), (folders, True))
               for role, name in (group or {}).items() if name is not None]
    for output in outputs:
        check_output(output.path, output.folder, output.role)
        _probe_writable(output)
    for output in outputs:
        for source in sources:
            _refuse_overlap(output, source)
    for index, first in enumerate(outputs):
        for second in outputs[index + 1:]:
            _refuse_shared(first, second)


def _check_encodable(name: str, role: str) -> None:
    """Refuse a name that is not valid UTF-8 (Python keeps its bytes as surrogates): GDAL, through rasterio,
    takes UTF-8 names only, so it would fail on the first raster opened or written."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(name).decode("utf-8", "backslashreplace")  # the bad bytes as \xff
        raise Pix2PixError(f"The {role} {shown} has a name that is not valid UTF-8; GDAL and the engine's files use "
                           "UTF-8 names. Rename it with UTF-8 characters (e.g. convmv -f latin1 -t utf8).") from None


def check_output(target: Path, folder: bool = False, role: str = "output") -> None:
    """Refuse an output path that is virtual, too long to hold, or an existing thing of the wrong kind."""
    target = Path(target).absolute()
    if str(target).startswith("/vsi"):
        raise Pix2PixError(f"The {role} {target} is a GDAL virtual path; outputs are written under a temporary name "
                           "and renamed, which needs a real folder. Give a local file path.")
    _check_name_lengths(target, role)
    try:
        found = os.stat(target)  # follows symlinks: a link to /dev/null is a device as well
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise Pix2PixError(f"The {role} {target} cannot be written: {_existing_ancestor(target)} on its path is a "
                           "file, not a folder. Choose another output path.") from None
    except OSError as exc:
        raise Pix2PixError(f"The {role} {target} cannot be checked ({exc.strerror}). Choose another output "
                           "path.") from exc
    if stat.S_ISDIR(found.st_mode):
        if not folder:
            raise Pix2PixError(f"The {role} {target} is a folder; give a file path.")
        return
    if folder:
        raise Pix2PixError(f"The {role} {target} exists and is {_kind(found.st_mode)}; choose a folder path.")
    if not stat.S_ISREG(found.st_mode):
        raise Pix2PixError(
            f"The {role} {target} is {_kind(found.st_mode)}, not a regular file. The engine writes a complete file "
            "and renames it into place, which would replace it. Choose a file path."
        )


def check_input_file(path: PathName, role: str, fix: str) -> Path:
    """``path`` as a Path, refused unless it is an existing regular file (symlinks followed).

    A device, FIFO or socket is never an input file: ``/dev/zero`` would be read until memory
    runs out and a FIFO without a writer blocks the run for ever (even SIGTERM only wakes it).
    ``fix`` ends each message.
    """
    path = Path(path)
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        raise Pix2PixError(f"The {role} {path} does not exist. {fix}") from None
    except OSError as exc:
        raise Pix2PixError(f"The {role} {path} cannot be read ({exc.strerror}). {fix}") from exc
    if stat.S_ISDIR(found.st_mode):
        raise Pix2PixError(f"The {role} {path} is a folder, not a file. {fix}")
    if not stat.S_ISREG(found.st_mode):
        raise Pix2PixError(f"The {role} {path} is {_kind(found.st_mode)}, not a regular file; the engine reads only "
                           f"files. {fix}")
    return path


def check_raster_node(name: str, role: str) -> None:
    """Refuse a raster name that is a local device, FIFO or socket before GDAL opens it (it would block or read
    for ever); folders pass, as some GDAL formats are folders, and so do names that are not local paths."""
    try:
        found = os.stat(name)
    except (OSError, ValueError):  # absent, or a GDAL name (/vsi…, NETCDF:"…":var): GDAL says what it is
        return
    if not (stat.S_ISREG(found.st_mode) or stat.S_ISDIR(found.st_mode)):
        raise Pix2PixError(f"The {role} {name} is {_kind(found.st_mode)}, not a raster file. Give the path of a "
                           "raster file.")


def raster_files(name: str) -> list[Path]:
    """The local files GDAL reads for the raster ``name``: the file, its side files, a VRT's sources and the
    archive of a ``/vsizip/`` path; the name itself (when local) if GDAL cannot open it."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. not georeferenced: the run itself says so where it matters
            with rasterio.open(name) as dataset:
                listed = list(dataset.files) or [name]
    except (rasterio.errors.RasterioError, OSError, ValueError):  # the run itself says why, with the fix
        listed = [name]
    found: dict[Path, None] = {}
    for item in [name, *listed]:
        found.update(dict.fromkeys(local_files(item)))
    return list(found)


def local_files(name: str) -> list[Path]:
    """The local file or folder that a (possibly GDAL) ``name`` stands for, if any.

    A plain path is itself; ``/vsizip/a.zip/x.tif`` (and tar, gzip, 7z, rar) is ``a.zip``;
    a subdataset name such as ``NETCDF:"f.nc":var`` or ``GTIFF_DIR:2:f.tif`` is the file
    among its parts; network paths (``/vsicurl/``) have none.
    """
    prefix = next((p for p in _GDAL_ARCHIVES if name.startswith(p)), None)
    if prefix is not None:  # /vsizip/rel.zip/x.tif is relative, /vsizip//abs.zip/x.tif absolute
        inner = Path(name[len(prefix):]).absolute()
        return [p for p in (inner, *inner.parents) if _is_file(p)][:1]
    if name.startswith("/vsi"):
        return []
    if _exists(Path(name)) or ":" not in name:
        return [Path(name).absolute()]
    return [Path(part.strip('"')).absolute() for part in name.split(":") if part and _is_file(Path(part.strip('"')))]


def _refuse_overlap(output: _Output, source: _Input) -> None:
    named = source.name if Path(source.name).absolute() == source.path else f"{source.name}, through {source.path}"
    out, where = _real(output.path), _real(source.path)
    if out == where or _same_file(output.path, source.path):
        raise Pix2PixError(
            f"The {output.role} {output.path} is the {source.role} of this run ({named}); writing it would destroy "
            f"that input. Choose another path for the {output.role}."
        )
    if _inside(out, where) and _is_dir(source.path):
        raise Pix2PixError(
            f"The {output.role} {output.path} lies inside the {source.role} {source.name}, an input of this run; "
            f"writing there would change it. Choose a path outside it."
        )
    if output.folder and _inside(where, out):
        raise Pix2PixError(
            f"The {source.role} {named} lies inside the {output.role} {output.path}, which this run replaces, so it "
            f"would be deleted. Choose another folder for the {output.role}, or move the input out of it."
        )


def _refuse_shared(first: _Output, second: _Output) -> None:
    a, b = _real(first.path), _real(second.path)
    if a == b or _same_file(first.path, second.path):
        raise Pix2PixError(f"The {first.role} and the {second.role} are the same path {first.path}; give each "
                           "output its own path.")
    for outer, inner in ((first, second), (second, first)):
        if outer.folder and _inside(_real(inner.path), _real(outer.path)):
            raise Pix2PixError(f"The {inner.role} {inner.path} lies inside the {outer.role} {outer.path}, which this "
                               f"run replaces. Choose a path outside it.")


def _check_name_lengths(target: Path, role: str) -> None:
    """Refuse names longer than the filesystem holds (NAME_MAX per name, PATH_MAX in all), staging names included."""
    anchor = _existing_ancestor(target)
    name_max, path_max = _limit(anchor, "PC_NAME_MAX", 255), _limit(anchor, "PC_PATH_MAX", 4096)
    for part in target.parts[1:]:
        size = len(os.fsencode(part))
        if size > name_max:
            raise Pix2PixError(
                f"The {role} {target} has a name of {size} bytes ({part[:40]}…); this filesystem holds names of at "
                f"most {name_max} bytes. Shorten it."
            )
    staging = max((partial_path(target, MAX_PID), suffixed_partial_path(target, MAX_PID)),
                  key=lambda p: len(os.fsencode(p.name)))
    size, own = len(os.fsencode(staging.name)), len(os.fsencode(target.name))
    if size > name_max:
        raise Pix2PixError(
            f"The {role} name {target.name[:40]}… is {own} bytes long; the engine first writes it under a hidden "
            f"temporary name ({staging.name[:12]}…{staging.name[-20:]}, {size} bytes), longer than the {name_max} "
            f"bytes this filesystem holds per name. Shorten the name by at least {size - name_max} bytes."
        )
    if len(os.fsencode(str(staging))) >= path_max:
        raise Pix2PixError(f"The {role} path {str(target)[:60]}… is too long for this system (at most {path_max} "
                           "bytes with the engine's temporary name). Choose a shorter path.")


def _probe_writable(output: _Output) -> None:
    """Create and remove what the write will create first, so an unwritable place is refused now, not after the work."""
    anchor = _existing_ancestor(output.path.parent)
    if not _is_dir(anchor):
        raise Pix2PixError(f"The {output.role} {output.path} cannot be written: {anchor} on its path is a file, "
                           "not a folder. Choose another output path.")
    missing = output.path.parent
    if missing != anchor:
        while missing.parent != anchor:
            missing = missing.parent
        try:
            missing.mkdir()
            missing.rmdir()
        except FileExistsError:  # another run just made it: writable enough
            pass
        except OSError as exc:
            raise Pix2PixError(f"Cannot create the folder {missing} for the {output.role} ({exc.strerror}). Choose "
                               "an output location you can write to.") from exc
        return
    probe = partial_path(output.path)  # the staging name: removed by the next run if this one dies right here
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except FileExistsError:
        pass
    except OSError as exc:
        raise Pix2PixError(f"The folder {anchor} cannot be written ({exc.strerror}), so the {output.role} "
                           f"{output.path} cannot be. Choose an output location you can write to.") from exc


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file" if stat.S_ISREG(mode) else "not a regular file"


def _limit(folder: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(folder, name))
    except (OSError, ValueError):
        return default


def _existing_ancestor(path: Path) -> Path:
    path = Path(path).absolute()
    while not _exists(path) and path != path.parent:
        path = path.parent
    return path


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except (OSError, ValueError):  # ENAMETOOLONG, ENOTDIR, an embedded NUL…: not there
        return False
    return True


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and folder in path.parents


def _same_file(a: Path, b: Path) -> bool:
    """Same device and inode: a hard link or the same file under another name (bind mounts included)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False
