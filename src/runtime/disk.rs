//! A dyno's disk limit: its writable overlay layer (`upper`/`work`) lives on an ext4 of
//! `DYNO_DISK_LIMIT` bytes in a sparse file (`<state-dir>/disk/disk.img`) mounted through a
//! loop device at `<state-dir>/disk/mnt`. Writes past it fail with ENOSPC inside the dyno, and the host
//! grows by at most the limit (files deleted in the dyno give their blocks back: the mount
//! uses `discard`, which punches holes in the image).
//!
//! Project quotas are not available on these kernels and a tmpfs upper layer would be charged to
//! the dyno's memory, hence the loop device. Formatting (~9 ms) and mounting (~8 ms) stay off
//! the start path: the daemon keeps a few spares in `run/disks` ([`Pool`]), each a directory
//! holding the image and its mount point `mnt` (a loop device attached with `LOOP_CONFIGURE`
//! and autoclear, so it goes away with the last unmount), and renames one to
//! `<state-dir>/disk` before spawning the dyno's shim (the mount moves with its directory).
//! Spares are unmounted and removed when the daemon stops and when it starts.

use anyhow::{bail, Context, Result};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Formatted spares the pool keeps ready.
const SPARES: usize = 2;
/// A dyno's disk in its state dir: a directory holding the image and its mount point.
pub const DIR: &str = "disk";
const IMAGE: &str = "disk.img";
pub const MNT: &str = "mnt";

/// Formatted spare images of one size, refilled in the background.
#[derive(Clone)]
pub struct Pool {
    dir: PathBuf,
    size: u64,
    spares: Arc<Mutex<Vec<PathBuf>>>,
    refilling: Arc<AtomicBool>,
}

impl Pool {
    /// A pool in `dir` (emptied: spares of an earlier daemon may be of another size) of images
    /// of `size` bytes; starts formatting its spares in the background.
    pub fn new(dir: &Path, size: u64) -> Result<Pool> {
        clean(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
        // Private like the rest of DYNO_HOME (an older daemon, or a hand, may have loosened it).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let pool = Pool {
            dir: dir.to_path_buf(),
            size,
            spares: Arc::default(),
            refilling: Arc::default(),
        };
        pool.refill();
        Ok(pool)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Moves a mounted disk to `dest` (a spare, or one made now if none is ready) and starts
    /// replacing it.
    pub fn take(&self, dest: &Path) -> Result<()> {
        let spare = self.spares.lock().unwrap().pop();
        let r = match spare {
            Some(s) => std::fs::rename(&s, dest)
                .with_context(|| format!("moving {} to {}", s.display(), dest.display())),
            None => prepare(dest, self.size),
        };
        self.refill();
        r
    }

    /// Formats spares until there are [`SPARES`], in a thread of its own (one at a time).
    fn refill(&self) {
        if self.refilling.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("disk-spares".into())
            .spawn(move || {
                while pool.spares.lock().unwrap().len() < SPARES {
                    let path = pool
                        .dir
                        .join(format!("spare-{:016x}", rand::random::<u64>()));
                    if let Err(e) = prepare(&path, pool.size) {
                        tracing::warn!("preparing a spare dyno disk: {e:#}");
                        break;
                    }
                    pool.spares.lock().unwrap().push(path);
                }
                pool.refilling.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.refilling.store(false, Ordering::SeqCst);
        }
    }

    /// Removes the spares (daemon stop).
    pub fn clean(&self) {
        self.spares.lock().unwrap().clear();
        clean(&self.dir);
    }
}

fn clean(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            remove(&e.path());
        }
    }
}

/// Unmounts and removes one disk directory (a spare's, or a dyno's).
pub fn remove(disk: &Path) {
    super::host::unmount_all(&disk.join(MNT));
    let _ = std::fs::remove_dir_all(disk);
}

/// Makes `dir` a disk of `size` bytes: the image formatted and mounted at `dir/mnt`.
pub fn prepare(dir: &Path, size: u64) -> Result<()> {
    std::fs::create_dir(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let r = format(&dir.join(IMAGE), size).and_then(|()| mount(&dir.join(IMAGE), &dir.join(MNT)));
    if r.is_err() {
        remove(dir);
    }
    r
}

/// Whether `disk`'s mount point is mounted (in the shim, before using it).
pub fn is_mounted(disk: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(disk), std::fs::metadata(disk.join(MNT))) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// A sparse file of `size` bytes holding a fresh ext4 (no journal: a dyno's disk does not
/// outlive it; inode tables initialized lazily, never zeroed: they would cost host blocks).
fn format(path: &Path, size: u64) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(size)?;
    drop(f);
    let out = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0", "-O", "^has_journal", "-E"])
        .arg("lazy_itable_init=1,lazy_journal_init=1,nodiscard")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running mkfs.ext4 (Debian package e2fsprogs)")?;
    if !out.status.success() {
        bail!(
            "mkfs.ext4 {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Attaches `image` to a free loop device (autoclear) and mounts it at `target`.
fn mount(image: &Path, target: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("opening {}", image.display()))?;
    let ctl = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .context("opening /dev/loop-control")?;
    std::fs::create_dir_all(target)?;
    for _ in 0..32 {
        // SAFETY: ioctl(2) on /dev/loop-control; returns a device number or -1.
        let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("LOOP_CTL_GET_FREE");
        }
        let dev = PathBuf::from(format!("/dev/loop{n}"));
        let loopdev = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&dev)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // No devtmpfs node yet: make it.
                let c = std::ffi::CString::new(dev.as_os_str().as_encoded_bytes())?;
                // SAFETY: mknod(2) of a block device node with a valid path.
                unsafe {
                    libc::mknod(
                        c.as_ptr(),
                        libc::S_IFBLK | 0o660,
                        libc::makedev(7, n as u32),
                    )
                };
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&dev)
                    .with_context(|| format!("opening {}", dev.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", dev.display())),
        };
        // SAFETY: an all-zero loop_config is valid; we set the fields we need.
        let mut cfg: LoopConfig = unsafe { std::mem::zeroed() };
        cfg.fd = file.as_raw_fd() as u32;
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        // SAFETY: ioctl(2) with a pointer to a live, correctly laid out loop_config.
        let r = unsafe { libc::ioctl(loopdev.as_raw_fd(), LOOP_CONFIGURE, &cfg) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EBUSY) {
                continue; // taken between GET_FREE and CONFIGURE
            }
            return Err(e).with_context(|| format!("LOOP_CONFIGURE {}", dev.display()));
        }
        let mounted = nix::mount::mount(
            Some(&dev),
            target,
            Some("ext4"),
            nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NOATIME,
            Some("discard,noinit_itable"),
        );
        // Our descriptors go now; the mount holds the device, autoclear frees it on unmount.
        drop(loopdev);
        return mounted
            .with_context(|| format!("mounting {} ({})", dev.display(), image.display()));
    }
    bail!("no free loop device")
}

/// Loop devices whose backing file is under `prefix` (tests, clean-up checks).
pub fn loop_devices_under(prefix: &Path) -> Vec<String> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir("/sys/block") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("loop") {
                continue;
            }
            if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
                if Path::new(b.trim().trim_end_matches(" (deleted)")).starts_with(prefix) {
                    out.push(name);
                }
            }
        }
    }
    out
}
