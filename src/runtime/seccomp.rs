//! The syscall filter of every dyno and build container (the OCI spec's `linux.seccomp`, applied
//! by libcontainer with its `libseccomp` feature right before it executes the init).
//!
//! In the spirit of Docker's default profile, as a deny list over what an unprivileged process
//! may still do (dynos have no capabilities, so most of Docker's list is refused by the kernel
//! anyway): no new namespaces (`unshare`/`clone` with any `CLONE_NEW*` flag: above all
//! `CLONE_NEWUSER`, which would give uid 0 in a user namespace and every user-namespace kernel
//! bug), no `setns`, kernel keyrings, BPF, perf events, mounts, module loading, kexec, reboot,
//! ptrace and cross-process memory access, io_uring, userfaultfd, clock and swap changes.
//! `clone3` fails with ENOSYS (its flags live in memory a filter cannot read), so glibc falls
//! back to `clone`, whose flags are filtered; EPERM would break glibc's thread creation.
//! Syscalls of another architecture (32-bit `int 0x80`) kill the process (libseccomp's default
//! for a filter of the native architecture alone).

use serde_json::{json, Value};

/// Refused with EPERM.
pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "umount2",
    "uselib",
    "userfaultfd",
    "ustat",
];

/// `CLONE_NEWNS`, `CLONE_NEWCGROUP`, `CLONE_NEWUTS`, `CLONE_NEWIPC`, `CLONE_NEWUSER`,
/// `CLONE_NEWPID`, `CLONE_NEWNET`: refused in `clone` and `unshare`.
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The `linux.seccomp` object of the OCI spec.
pub fn profile() -> Value {
    let mut syscalls = vec![
        json!({"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
    ];
    // One rule per flag: "flags & F == F" (libcontainer reads the mask from valueTwo and the
    // datum from value, runc the other way round: with both set to F either reading holds).
    for f in NAMESPACE_FLAGS {
        syscalls.push(json!({
            "names": ["clone", "unshare"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::EPERM,
            "args": [{"index": 0, "value": f, "valueTwo": f, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": syscalls,
    })
}
