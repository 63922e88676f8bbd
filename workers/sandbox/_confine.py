"""Kernel confinement for the sandbox runner: namespaces, the file system view, privileges.

The runner (``_server.py``) loads this file by path inside a bare ``python -I``
interpreter, so it may import the standard library only (never the ``workers``
package, whose ``__init__`` starts Celery). Everything goes through libc with
``ctypes`` because Python 3.11 has no ``os.unshare``, ``mount`` or ``prctl``.

Each helper raises ``OSError`` with the failing call in its message, so that the
runner can report why a tier is not available instead of half-confining a program.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 0x2

_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NOSUID = 0x2
_SYS_MOUNT_SETATTR = 442  # the same number on every architecture (added in Linux 5.12)

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT (+locked): exec never grants capabilities to uid 0; no ambient raise (+locked).
_SECUREBITS = (1 << 0) | (1 << 1) | (1 << 6) | (1 << 7)
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, arg2: int = 0, arg3: int = 0, what: str = "prctl") -> None:
    if _libc.prctl(option, arg2, arg3, 0, 0) != 0:
        raise _fail(what)


# --- Namespaces and mounts ------------------------------------------------------------


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (PID: its next child is PID 1)."""
    if _libc.unshare(flags) != 0:
        raise _fail(f"unshare({flags:#x})")


def map_user_to_root(uid: int, gid: int) -> None:
    """In a fresh user namespace, map root inside to ``uid``/``gid`` outside (one id each)."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    """``mount(2)``."""
    if _libc.mount(_bytes(source), target.encode(), _bytes(fstype), flags, _bytes(data)) != 0:
        raise _fail(f"mount {fstype or source or ''} on {target}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def umount(target: str) -> None:
    """Lazily detach the topmost mount at ``target``."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        raise _fail(f"umount {target}")


def make_mounts_private() -> None:
    """Stop mount events propagating to the host (else our tmpfs mounts would appear there)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def make_tree_readonly() -> str:
    """Make every mount visible in this namespace read-only and nosuid; return the method.

    ``mount_setattr(2)`` with ``AT_RECURSIVE`` does it atomically for the whole tree.
    On kernels before 5.12 every mount point is bind-remounted read-only one by one,
    keeping the flags a user namespace may not clear; any mount that refuses makes the
    whole call fail (a writable host mount must never be left behind silently).
    """
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID, 0, 0, 0)
    ret = _libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(b"/"),
        ctypes.c_uint(_AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if ret == 0:
        return "mount_setattr"
    _remount_each_readonly()
    return "bind-remount"


_KEEP_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` for a space)."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


def _remount_each_readonly() -> None:
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    failed = []
    for row in rows:
        point = _unescape(row[4])
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        for option in row[5].split(","):
            flags |= _KEEP_FLAGS.get(option, 0)
        try:
            mount(None, point, None, flags)
        except OSError as exc:
            if exc.errno != 2:  # ENOENT: a mount point hidden below another mount
                failed.append(f"{point} ({exc.strerror})")
    if failed:
        raise OSError(1, "could not make these mounts read-only: " + ", ".join(failed))


def hide_path(path: str) -> None:
    """Cover ``path`` with an empty read-only tmpfs (a directory) or /dev/null (a file)."""
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if os.path.isdir(path):
        mount("tmpfs", path, "tmpfs", flags | MS_RDONLY, "size=4k,nr_inodes=1,mode=0555")
    else:
        mount("/dev/null", path, None, MS_BIND)
        mount(None, path, None, flags | MS_REMOUNT | MS_BIND | MS_RDONLY)


def set_hostname(name: str) -> None:
    """Give the new UTS namespace its own host name (the host's is no business of a program)."""
    raw = name.encode()
    if _libc.sethostname(raw, len(raw)) != 0:
        raise _fail("sethostname")


# --- The file system a program sees ----------------------------------------------------

#: The only device nodes programs see (``minimal_dev``).
_DEVICES = ("null", "zero", "full", "random", "urandom")


def mount_proc() -> str:
    """A /proc of the new PID namespace; if the kernel refuses, an empty one instead."""
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        mount("proc", "/proc", "proc", flags)
        return "fresh"
    except OSError:
        # Never leave the host's /proc (other processes' environ, fds) visible.
        mount("tmpfs", "/proc", "tmpfs", flags | MS_RDONLY, "size=4k")
        return "hidden"


def python_dirs() -> list[str]:
    """Directories a program needs to import modules and start ``sys.executable``."""
    stdlib = os.path.dirname(os.__file__)
    found = {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    found |= {
        os.path.dirname(stdlib),  # LIBDIR: the stdlib and libpython
        os.path.dirname(os.path.realpath(sys.executable)),
        os.path.dirname(os.path.abspath(sys.executable)),
    }
    found = {p for p in found if os.path.isdir(p)}
    return sorted(
        p for p in found if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in found)
    )


def other_uid_blocked(path: str) -> str | None:
    """The topmost directory a uid with no account (``other`` bits only) cannot enter."""
    parts = os.path.realpath(path).split("/")[1:]
    current = ""
    for part in parts:
        current += "/" + part
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def reveal(dirs: list[str], blocked_by: Callable[[str], str | None]) -> list[str]:
    """Make ``dirs`` reachable although an ancestor is closed to the program's uid.

    Python is often installed under a private home (pyenv under ``/root``). The closed
    ancestor is covered with a small tmpfs (so the rest of it stays out of reach) in
    which the path down to each directory is recreated (mode 0755) and the directory
    bind-mounted back, from a file descriptor opened before the cover went on.
    """
    groups: dict[str, list[str]] = {}
    for path in dirs:
        ancestor = blocked_by(path)
        if ancestor is not None and ancestor != os.path.realpath(path):
            groups.setdefault(ancestor, []).append(os.path.realpath(path))
    revealed: list[str] = []
    old_umask = os.umask(0o022)
    try:
        for ancestor, paths in groups.items():
            fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in paths}
            mount(
                "tmpfs",
                ancestor,
                "tmpfs",
                MS_NOSUID | MS_NODEV,
                "size=64k,mode=0755",
            )
            for path, fd in fds.items():
                os.makedirs(path, mode=0o755, exist_ok=True)
                mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
                os.close(fd)
                revealed.append(path)
    finally:
        os.umask(old_umask)
    return revealed


def minimal_dev() -> list[str]:
    """Replace /dev by a tmpfs holding only the harmless devices; return their names.

    The host's /dev may hold world-accessible nodes a program has no business with
    (GPUs, /dev/fuse, /dev/net/tun, misconfigured disks); bind-mounting the few
    devices a Python program needs back onto an empty tmpfs keeps only those.
    """
    devices = [name for name in _DEVICES if os.path.exists(f"/dev/{name}")]
    fds = {name: os.open(f"/dev/{name}", os.O_PATH) for name in devices}
    old_umask = os.umask(0)
    try:
        mount(
            "tmpfs",
            "/dev",
            "tmpfs",
            MS_NOSUID | MS_NOEXEC,
            "size=64k,nr_inodes=64,mode=0755",
        )
        for name, fd in fds.items():
            os.close(os.open(f"/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
            mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)
            os.close(fd)
        for name, target in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ):
            os.symlink(target, f"/dev/{name}")
        os.mkdir("/dev/shm", 0o755)
    finally:
        os.umask(old_umask)
    return devices


def pristine(path: str, owner: tuple[int | None, int | None]) -> bool:
    """Whether a scratch tmpfs is exactly as mounted: empty, same mode, owner, no xattrs."""
    try:
        st = os.stat(path)
        return (
            st.st_mode == 0o40700
            and (st.st_uid, st.st_gid) == owner
            and not os.listdir(path)
            and not os.listxattr(path)
        )
    except OSError:
        return False


# --- Process attributes ---------------------------------------------------------------


def set_parent_death_signal(signum: int) -> None:
    """Receive ``signum`` when the parent (thread) that forked us exits."""
    _prctl(_PR_SET_PDEATHSIG, signum, what="PR_SET_PDEATHSIG")


def set_dumpable(dumpable: bool) -> None:
    """Non-dumpable: no same-uid ptrace, no /proc/<pid>/mem or fd access by others."""
    _prctl(_PR_SET_DUMPABLE, int(dumpable), what="PR_SET_DUMPABLE")


def set_child_subreaper() -> None:
    """Become the reaper of orphaned descendants (so setsid escapees stay findable)."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1, what="PR_SET_CHILD_SUBREAPER")


def set_no_new_privs() -> None:
    """exec() can never grant privileges again (setuid binaries, file capabilities)."""
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, what="PR_SET_NO_NEW_PRIVS")


def drop_bounding_set() -> None:
    """Empty the capability bounding set and lock root out of exec-granted capabilities."""
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == 22:  # EINVAL: past the last capability
                break
            raise _fail(f"PR_CAPBSET_DROP {cap}")
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, what="PR_CAP_AMBIENT_CLEAR_ALL")
    _prctl(_PR_SET_SECUREBITS, _SECUREBITS, what="PR_SET_SECUREBITS")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def clear_capabilities() -> None:
    """Drop every capability of the calling process (for uid 0 of a user namespace)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        raise _fail("capset")
