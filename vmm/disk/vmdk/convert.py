"""Copying a disk of any type into a new disk of any type (``vmm disk convert``).

Only what the source may hold is copied (its ``data_ranges``), and all-zero grains are
skipped, so sparse destinations stay sparse. A delta source is copied flattened: the
result reads like the whole chain and has no parent.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator

from vmm.confine import FileScope
from vmm.disk.base import BlockDevice
from vmm.disk.open import open_disk
from vmm.disk.vmdk.create import RAW, SPLIT_EXTENT_SECTORS, create_disk, extent_paths
from vmm.disk.vmdk.descriptor import MONOLITHIC_SPARSE, STREAM_OPTIMIZED, ExtentLine, new_descriptor
from vmm.disk.vmdk.sparse import DEFAULT_GRAIN_SIZE
from vmm.disk.vmdk.stream import write_stream
from vmm.errors import DiskError, DiskIOError
from vmm.fileio import fsync_dir

CHUNK_SECTORS = 2048  # 1 MiB per read
SKIP_SECTORS = DEFAULT_GRAIN_SIZE  # zero runs this long are not written

Progress = Callable[[int, int], None]


def default_type(path: str) -> str:
    return MONOLITHIC_SPARSE if path.lower().endswith(".vmdk") else RAW


def convert(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    dst_type: str | None = None,
    progress: Progress | None = None,
    scope: FileScope | None = None,
    **options: int | str,
) -> None:
    """Copy ``src_path`` into a new disk at ``dst_path``.

    The new disk is built in a staging folder beside the destination and appears only when
    complete (extent files first, the descriptor last, each linked into place so nothing is
    replaced): a convert killed at any moment leaves the destination absent, never a
    complete-looking disk missing data. Staging folders of killed converts are removed.
    """
    src_path, dst_path = os.fspath(src_path), os.fspath(dst_path)
    dst_type = dst_type or default_type(dst_path)
    directory = os.path.dirname(os.path.abspath(dst_path))
    name = os.path.basename(dst_path)
    remove_stale_staging(directory)
    with open_disk(src_path, read_only=True, scope=scope) as src:
        extent_sectors = int(options.get("extent_sectors", SPLIT_EXTENT_SECTORS))
        extras = extent_paths(dst_path, dst_type, src.capacity, extent_sectors) if dst_type != RAW else []
        for path in [dst_path, *extras]:
            if os.path.lexists(path):
                raise DiskError(f"{path}: already exists")
        with _staging(directory, name) as staging:
            staged = os.path.join(staging, name)
            if dst_type == STREAM_OPTIMIZED:
                line = ExtentLine("RW", src.capacity, "SPARSE", name)
                adapter = str(options.get("adapter_type", "ide"))
                desc = new_descriptor(STREAM_OPTIMIZED, [line], adapter_type=adapter)
                write_stream(
                    staged,
                    src,
                    lambda: desc.render().encode(),
                    int(options.get("grain_size", DEFAULT_GRAIN_SIZE)),
                    progress,
                )
            else:
                create_disk(staged, src.capacity, dst_type, **options)
                with open_disk(staged) as dst:
                    copy_data(src, dst, progress)
            staged_extras = extent_paths(staged, dst_type, src.capacity, extent_sectors) if dst_type != RAW else []
            _publish([*zip(staged_extras, extras, strict=True), (staged, dst_path)], directory)


STAGING_SUFFIX = ".convert"
STAGING_NAME = re.compile(r"\.(.+)\.[A-Za-z0-9_]{8}\.convert")  # mkdtemp's 8 random characters


def _staging_prefix(name: str) -> str:
    return f".{name}."


@contextlib.contextmanager
def _staging(directory: str, name: str) -> Iterator[str]:
    """A fresh staging folder, held (flock on its .lock) while the convert runs, removed after."""
    try:
        staging = tempfile.mkdtemp(prefix=_staging_prefix(name), suffix=STAGING_SUFFIX, dir=directory)
    except OSError as exc:
        raise DiskError(f"{directory}: cannot create a staging folder: {exc.strerror}") from None
    lock = os.open(os.path.join(staging, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield staging
    except OSError as exc:
        raise DiskIOError(f"{os.path.join(directory, name)}: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(lock)


def remove_stale_staging(directory: str) -> list[str]:
    """Remove the staging folders in ``directory`` of converts that were killed (nobody holds their lock)."""
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        match = STAGING_NAME.fullmatch(entry)
        if match is None:
            continue
        name = match.group(1)
        folder = os.path.join(directory, entry)
        if os.path.islink(folder) or not os.path.isdir(folder):
            continue
        try:
            fd = os.open(os.path.join(folder, ".lock"), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None  # killed before its lock existed
        except OSError:
            continue
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a convert still runs there
        finally:
            if fd is not None:
                os.close(fd)
        _unpublish_unfinished(folder, directory, name)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _unpublish_unfinished(staging: str, directory: str, name: str) -> None:
    """A convert killed while linking its files into place: unless its descriptor made it, remove
    the extent files it had linked (the very same files: hard links of the staged ones)."""
    if _same_file(os.path.join(staging, name), os.path.join(directory, name)):
        return  # complete: only the staging folder was left
    for entry in os.listdir(staging):
        final = os.path.join(directory, entry)
        if entry != name and _same_file(os.path.join(staging, entry), final):
            with contextlib.suppress(OSError):
                os.unlink(final)


def _publish(moves: list[tuple[str, str]], directory: str) -> None:
    """Link finished files into place in order (the descriptor last), never replacing a file."""
    done: list[str] = []
    try:
        for staged, final in moves:
            try:
                os.link(staged, final)
            except FileExistsError:
                raise DiskError(f"{final}: already exists") from None
            except OSError:  # no hard links here: rename, after checking again
                if os.path.lexists(final):
                    raise DiskError(f"{final}: already exists") from None
                os.rename(staged, final)
            done.append(final)
        fsync_dir(directory)
    except BaseException:
        for final in done:
            with contextlib.suppress(OSError):
                os.unlink(final)
        raise


def copy_data(src: BlockDevice, dst: BlockDevice, progress: Progress | None = None) -> None:
    """Copy ``src``'s data into ``dst`` (which reads as zeros), skipping zero runs."""
    total = src.capacity
    for lba, count in src.data_ranges():
        for start in range(lba, lba + count, CHUNK_SECTORS):
            n = min(CHUNK_SECTORS, lba + count - start)
            data = src.read(start, n)
            for offset in range(0, n, SKIP_SECTORS):
                piece = data[offset * 512 : (offset + SKIP_SECTORS) * 512]
                if piece.count(0) != len(piece):
                    dst.write(start + offset, piece)
            if progress:
                progress(start + n, total)
    dst.flush()
