"""The seccomp filter every sandboxed program runs under.

Loaded by path inside the runner (standard library only). The filter is built once
in the runner and installed in each forked child after ``no_new_privs``; see
``seccomp_program`` for what it refuses and why.
"""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
#: clone() flags that create namespaces (new mount, cgroup, UTS, IPC, user, PID, net).
CLONE_NAMESPACE_FLAGS = 0x7E020000

# (audit arch, x32 bit or None, {syscall: number}) for the architectures we filter.
_ARCHES: dict[str, tuple[int, int | None, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        0x40000000,
        {
            "socket": 41,
            "ptrace": 101,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "bpf": 321,
            "userfaultfd": 323,
            "perf_event_open": 298,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "kexec_load": 246,
            "kexec_file_load": 320,
            "init_module": 175,
            "finit_module": 313,
            "delete_module": 176,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "swapon": 167,
            "swapoff": 168,
            "reboot": 169,
            "unshare": 272,
            "setns": 308,
            "open_by_handle_at": 304,
            "name_to_handle_at": 303,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "move_mount": 429,
            "open_tree": 428,
            "mount_setattr": 442,
            "acct": 163,
            "quotactl": 179,
            "personality": 135,
            "clone": 56,
            "clone3": 435,
        },
    ),
    "aarch64": (
        0xC00000B7,
        None,
        {
            "socket": 198,
            "ptrace": 117,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "bpf": 280,
            "userfaultfd": 282,
            "perf_event_open": 241,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "kexec_load": 104,
            "kexec_file_load": 294,
            "init_module": 105,
            "finit_module": 273,
            "delete_module": 106,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "swapon": 224,
            "swapoff": 225,
            "reboot": 142,
            "unshare": 97,
            "setns": 268,
            "open_by_handle_at": 265,
            "name_to_handle_at": 264,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "move_mount": 429,
            "open_tree": 428,
            "mount_setattr": 442,
            "acct": 89,
            "quotactl": 60,
            "personality": 92,
            "clone": 220,
            "clone3": 435,
        },
    ),
}

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_EPERM = 0x00050000 | 1
_RET_ENOSYS = 0x00050000 | 38


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def seccomp_program() -> bytes | None:
    """The BPF filter for this machine's architecture, or None where we have no table.

    It refuses (EPERM) creating sockets of any family (the network namespace has no
    usable interface, and this also closes Unix sockets on the host file system such as
    a Redis or Docker socket), tracing, keyrings, BPF, io_uring, module and mount calls,
    namespace creation (``unshare``, ``setns``, ``clone`` with a namespace flag), and
    answers ``clone3`` with ENOSYS so libc falls back to ``clone`` whose flags we can
    see. Foreign-ABI system calls (i386 on x86-64, x32) kill the process.
    """
    table = _ARCHES.get(os.uname().machine)
    if table is None:
        return None
    audit_arch, x32_bit, numbers = table
    prog = [
        _insn(_BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _insn(_BPF_JEQ_K, 1, 0, audit_arch),
        _insn(_BPF_RET_K, 0, 0, _RET_KILL_PROCESS),
        _insn(_BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if x32_bit is not None:
        prog += [_insn(_BPF_JGE_K, 0, 1, x32_bit), _insn(_BPF_RET_K, 0, 0, _RET_KILL_PROCESS)]
    for name, number in numbers.items():
        if name in ("clone", "clone3"):
            continue
        prog += [_insn(_BPF_JEQ_K, 0, 1, number), _insn(_BPF_RET_K, 0, 0, _RET_EPERM)]
    prog += [
        _insn(_BPF_JEQ_K, 0, 1, numbers["clone3"]),
        _insn(_BPF_RET_K, 0, 0, _RET_ENOSYS),
        _insn(_BPF_JEQ_K, 0, 3, numbers["clone"]),
        _insn(_BPF_LD_W_ABS, 0, 0, 16),  # low 32 bits of args[0] (little-endian)
        _insn(_BPF_JSET_K, 0, 1, CLONE_NAMESPACE_FLAGS),
        _insn(_BPF_RET_K, 0, 0, _RET_EPERM),
        _insn(_BPF_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompFilter:
    """A prepared filter: built once in the runner, installed cheaply in every child."""

    def __init__(self, program: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(len(program) // 8, ctypes.addressof(self._buffer))

    def install(self) -> None:
        """Install the filter on the calling process (needs no_new_privs first)."""
        ptr = ctypes.addressof(self._fprog)
        if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ptr, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"PR_SET_SECCOMP: {os.strerror(err)}")
