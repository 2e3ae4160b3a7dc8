//! Attached dynos (`dyno run`): their stdio goes to the daemon instead of the output spool.
//!
//! The daemon gives the shim one end of a socketpair as its stdin. After creating the container
//! the shim sends the dyno's stdio over it with SCM_RIGHTS — the pty master (`process.terminal`)
//! or the daemon's ends of three pipes — and closes its own copies, so the daemon holds the only
//! ones: when the daemon lets go (the client left, the daemon died), the dyno sees a hangup or
//! EOF.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// How an attached dyno's stdio is set up. Written by the daemon to `<state-dir>/attach.json`
/// (kept out of `DynoSpec`, so formation dynos and their specs are untouched).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttachOptions {
    /// A pty (`process.terminal`) instead of plain pipes.
    #[serde(default)]
    pub tty: bool,
    /// Initial window size of the pty: (cols, rows).
    #[serde(default)]
    pub size: Option<(u16, u16)>,
}

/// The daemon's side of an attached dyno's stdio.
#[derive(Debug)]
pub enum DynoStdio {
    /// The pty master: input, output and window size.
    Pty(OwnedFd),
    /// Write end of the dyno's stdin, read ends of its stdout and stderr.
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

impl DynoStdio {
    pub(super) fn from_fds(tty: bool, mut fds: Vec<OwnedFd>) -> Result<DynoStdio> {
        match (tty, fds.len()) {
            (true, 1) => Ok(DynoStdio::Pty(fds.remove(0))),
            (false, 3) => {
                let stderr = fds.pop().unwrap();
                let stdout = fds.pop().unwrap();
                let stdin = fds.pop().unwrap();
                Ok(DynoStdio::Pipes {
                    stdin,
                    stdout,
                    stderr,
                })
            }
            (_, n) => bail!("the shim handed over {n} descriptors"),
        }
    }
}

/// Sets a pty's window size (TIOCSWINSZ; the kernel signals SIGWINCH to its foreground group).
pub fn set_window_size(fd: RawFd, cols: u16, rows: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

const MAX_FDS: usize = 4;

/// Sends `fds` (and one byte, so the message is never empty) over a Unix socket.
pub(super) fn send_fds(sock: RawFd, fds: &[RawFd]) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    assert!(fds.len() <= MAX_FDS);
    let iov = [std::io::IoSlice::new(b"f")];
    let cmsg = [ControlMessage::ScmRights(fds)];
    loop {
        match sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives up to [`MAX_FDS`] descriptors sent by [`send_fds`] (close-on-exec, so no other
/// child of the daemon ever holds a dyno's stdin open). `nonblock`: fail instead of waiting.
pub(super) fn recv_fds(sock: RawFd, nonblock: bool) -> std::io::Result<Vec<OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut cbuf = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if nonblock {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let msg = loop {
        match recvmsg::<()>(sock, &mut iov, Some(&mut cbuf), flags) {
            Ok(m) => break m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = vec![];
    // A truncated message (more descriptors than we take) is an error (ENOBUFS).
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed these descriptors in our table for this message;
            // nothing else owns them.
            out.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if msg.bytes == 0 && out.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(out)
}

/// Sets O_NONBLOCK on a descriptor (for tokio's AsyncFd).
pub fn set_nonblocking(fd: &impl AsRawFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fl = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn descriptors_travel_over_a_socketpair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fds(a.as_raw_fd(), &[w.as_raw_fd(), r.as_raw_fd()]).unwrap();
        drop((r, w));
        let fds = recv_fds(b.as_raw_fd(), true).unwrap();
        assert_eq!(fds.len(), 2);
        let mut fds = fds.into_iter();
        let mut w = std::fs::File::from(fds.next().unwrap());
        let mut r = std::fs::File::from(fds.next().unwrap());
        w.write_all(b"x").unwrap();
        drop(w);
        let mut got = vec![];
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"x");
        assert!(
            recv_fds(b.as_raw_fd(), true).is_err(),
            "nothing more queued"
        );
    }

    #[test]
    fn pipes_come_in_order() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let pipes: Vec<_> = (0..3).map(|_| nix::unistd::pipe().unwrap()).collect();
        // stdin: the write end; stdout, stderr: the read ends.
        let fds = [
            pipes[0].1.as_raw_fd(),
            pipes[1].0.as_raw_fd(),
            pipes[2].0.as_raw_fd(),
        ];
        send_fds(a.as_raw_fd(), &fds).unwrap();
        let got = DynoStdio::from_fds(false, recv_fds(b.as_raw_fd(), false).unwrap()).unwrap();
        let DynoStdio::Pipes { stdout, .. } = got else {
            panic!("pipes expected")
        };
        nix::unistd::write(&pipes[1].1, b"hi").unwrap();
        let mut buf = [0u8; 2];
        std::fs::File::from(stdout).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }
}
