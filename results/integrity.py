"""What a results file is before HDF5 opens it: a look at the superblock, the one-writer lock,
and clearing the "open for writing" flags a killed writer leaves behind.

HDF5 itself waits when asked to open a damaged file for SWMR reading (it retries metadata
reads with growing pauses), so every reader first checks here, without HDF5, that the path is
a regular file holding an HDF5 superblock whose end-of-file address fits the file's size.

One writer per file: the writer holds an exclusive open-file-description lock
(``F_OFD_SETLK``, Linux) on the results file itself for the whole run. Such locks are
independent of the ``flock`` locks HDF5 takes, so other programs can still open a live file
for SWMR reading, and unlike classic POSIX locks they are not dropped when HDF5 closes its
own handle of the file. A reader finding the lock taken knows the file is live and opens it
for SWMR reading; a file flagged "open for writing" whose lock is free belongs to a writer
that died.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Offsets where HDF5 looks for the superblock (after a user block of 512 * 2^k bytes).
_SIGNATURE_OFFSETS = (0, 512, 1024, 2048, 4096)
#: Superblock status flags: opened for writing, opened by a SWMR writer.
WRITE_FLAGS = 0x01 | 0x04


class ResultsFileError(ValueError):
    """A results file that cannot be opened or written; the message is one line naming it."""


@dataclass(frozen=True)
class Superblock:
    """The parts of an HDF5 superblock a reader checks before opening."""

    offset: int  # where the superblock starts (size of the user block)
    version: int
    flags: int  # file consistency flags (write access bits; 0 for a closed file)
    eof: int  # end-of-file address stored by the library (relative to offset)
    size: int  # actual size of the file in bytes


def _ofd_lock(fd: int, kind: int) -> bool:
    """Try to take an open-file-description lock of the whole file; False if it is held."""
    arg = struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, arg)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: HDF5's metadata checksum."""
    m = 0xFFFFFFFF
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & m
    i = 0
    while length - i > 12:
        x, y, z = struct.unpack_from("<3I", data, i)
        a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
        a = (a - c) & m; a ^= _rot(c, 4); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= _rot(a, 6); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= _rot(b, 8); b = (b + a) & m  # noqa: E702
        a = (a - c) & m; a ^= _rot(c, 16); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= _rot(a, 19); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= _rot(b, 4); b = (b + a) & m  # noqa: E702
        i += 12
    tail = data[i:]
    if not tail:
        return c
    x, y, z = struct.unpack("<3I", tail.ljust(12, b"\0"))
    a, b, c = (a + x) & m, (b + y) & m, (c + z) & m
    c ^= b; c = (c - _rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & m  # noqa: E702
    return c


def _read_head(path: Path) -> tuple[bytes, int]:
    """The first bytes of a regular file and its size; ResultsFileError for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ResultsFileError(f"{path}: not a regular file")
        head = os.pread(fd, 4096 + 128, 0)
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return head, info.st_size


def superblock(path: str | Path) -> Superblock:
    """Parse the superblock of ``path``; ResultsFileError if it is not an HDF5 file."""
    path = Path(path)
    head, size = _read_head(path)
    for off in _SIGNATURE_OFFSETS:
        if head[off:off + 8] == HDF5_SIGNATURE:
            break
    else:
        raise ResultsFileError(f"{path}: not an HDF5 file")
    sb = head[off:]
    try:
        version = sb[8]
        if version in (2, 3):
            so = sb[9]
            flags = sb[11]
            addr = 12 + 2 * so
        elif version in (0, 1):
            so = sb[13]
            flags = struct.unpack_from("<I", sb, 20)[0]
            addr = 24 + (4 if version == 1 else 0) + 2 * so
        else:
            raise ResultsFileError(f"{path}: unknown HDF5 superblock version {version}")
        if so not in (2, 4, 8):
            raise ResultsFileError(f"{path}: damaged HDF5 superblock")
        eof = int.from_bytes(sb[addr:addr + so], "little")
    except (IndexError, struct.error):
        raise ResultsFileError(f"{path}: truncated: too short for an HDF5 file") from None
    return Superblock(offset=off, version=version, flags=flags, eof=eof, size=size)


def check_intact(path: str | Path) -> Superblock:
    """The superblock of ``path`` after checking the file holds every byte HDF5 expects."""
    sb = superblock(path)
    if sb.offset + sb.eof > sb.size:
        raise ResultsFileError(f"{path}: truncated: {sb.size} of {sb.offset + sb.eof} bytes")
    return sb


def clear_write_flags(path: str | Path) -> bool:
    """Reset the "open for writing" flags of a v2/v3 superblock left by a killed writer.

    The caller must hold the file's writer lock. Returns False when nothing had to be done.
    What the file then shows is its state at the writer's last flush (SWMR keeps that state
    consistent on disk)."""
    sb = check_intact(path)
    if not sb.flags & WRITE_FLAGS:
        return False
    if sb.version not in (2, 3):
        raise ResultsFileError(f"{path}: cannot clear write flags of superblock v{sb.version}")
    with open(path, "r+b") as fh:
        fh.seek(sb.offset)
        head = bytearray(fh.read(9 + 3))
        so = head[9]
        fh.seek(sb.offset)
        block = bytearray(fh.read(12 + 4 * so + 4))
        body = block[:-4]
        if struct.unpack("<I", block[-4:])[0] != lookup3(bytes(body)):
            raise ResultsFileError(f"{path}: damaged HDF5 superblock (checksum)")
        body[11] = 0
        fh.seek(sb.offset)
        fh.write(bytes(body) + struct.pack("<I", lookup3(bytes(body))))
        fh.flush()
        os.fsync(fh.fileno())
    return True


# -- the writer lock ----------------------------------------------------------------------


class WriterLock:
    """Exclusive lock on a results file, held by the one process writing it.

    Taken before anything is written (the file is opened without truncation), released by
    ``release`` or when the process ends, however it ends."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        try:
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise ResultsFileError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        try:
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):
                raise ResultsFileError(f"{self.path}: not a regular file")
            if not _ofd_lock(self._fd, fcntl.F_WRLCK):
                raise ResultsFileError(f"{self.path}: in use by another process (another "
                                       "run is writing it)")
        except OSError as exc:
            self.release()
            raise ResultsFileError(f"{self.path}: cannot lock: {exc.strerror or exc}") from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_live(path: str | Path) -> bool:
    """True if a writer holds the lock of ``path`` (the file is being written now)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return not _ofd_lock(fd, fcntl.F_RDLCK)
    except OSError:
        return False
    finally:
        os.close(fd)
