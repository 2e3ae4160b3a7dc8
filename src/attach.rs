//! The attach protocol between `dyno run` and the daemon, spoken on the daemon's Unix socket after
//! an HTTP Upgrade (`Upgrade: dyno-attach`) of `POST /apps/{app}/dynos/{name}/attach`.
//!
//! Every message is a frame: one type byte, a big-endian `u32` payload length, the payload.
//! Client → daemon: [`STDIN`] bytes, [`STDIN_EOF`], [`RESIZE`] (`cols: u16, rows: u16`, BE).
//! Daemon → client: [`STDOUT`] and [`STDERR`] bytes, then one [`EXIT`] (`i32` BE, the dyno's
//! status) or [`ERROR`] (UTF-8 message), after which the daemon closes the connection.
//! A client that goes away ends the dyno: there is nobody left to see it.

use bytes::{Buf, BufMut, BytesMut};

/// The `Upgrade` protocol name.
pub const PROTOCOL: &str = "dyno-attach";

pub const STDIN: u8 = 0x00;
pub const STDIN_EOF: u8 = 0x01;
pub const RESIZE: u8 = 0x02;
pub const STDOUT: u8 = 0x10;
pub const STDERR: u8 = 0x11;
pub const EXIT: u8 = 0x12;
pub const ERROR: u8 = 0x13;

/// Largest payload accepted; bigger frames mean a confused peer.
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdin(Vec<u8>),
    StdinEof,
    Resize { cols: u16, rows: u16 },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
    Error(String),
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, Vec<u8>) = match self {
            Frame::Stdin(b) => (STDIN, b.clone()),
            Frame::StdinEof => (STDIN_EOF, vec![]),
            Frame::Resize { cols, rows } => {
                let mut p = Vec::with_capacity(4);
                p.put_u16(*cols);
                p.put_u16(*rows);
                (RESIZE, p)
            }
            Frame::Stdout(b) => (STDOUT, b.clone()),
            Frame::Stderr(b) => (STDERR, b.clone()),
            Frame::Exit(code) => (EXIT, code.to_be_bytes().to_vec()),
            Frame::Error(m) => (ERROR, m.as_bytes().to_vec()),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(kind);
        out.put_u32(payload.len() as u32);
        out.extend_from_slice(&payload);
        out
    }

    /// Takes one whole frame off the front of `buf`; `Ok(None)` when more bytes are needed.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, String> {
        if buf.len() < 5 {
            return Ok(None);
        }
        let kind = buf[0];
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("attach frame of {len} bytes is too large"));
        }
        if buf.len() < 5 + len {
            return Ok(None);
        }
        buf.advance(5);
        let p = buf.split_to(len).to_vec();
        let short = || format!("attach frame {kind:#04x} has a short payload");
        Ok(Some(match kind {
            STDIN => Frame::Stdin(p),
            STDIN_EOF => Frame::StdinEof,
            RESIZE if p.len() == 4 => Frame::Resize {
                cols: u16::from_be_bytes([p[0], p[1]]),
                rows: u16::from_be_bytes([p[2], p[3]]),
            },
            RESIZE => return Err(short()),
            STDOUT => Frame::Stdout(p),
            STDERR => Frame::Stderr(p),
            EXIT if p.len() == 4 => Frame::Exit(i32::from_be_bytes([p[0], p[1], p[2], p[3]])),
            EXIT => return Err(short()),
            ERROR => Frame::Error(String::from_utf8_lossy(&p).into_owned()),
            k => return Err(format!("unknown attach frame type {k:#04x}")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_partial_reads() {
        let frames = vec![
            Frame::Stdin(b"ls\r".to_vec()),
            Frame::StdinEof,
            Frame::Resize {
                cols: 120,
                rows: 40,
            },
            Frame::Stdout(vec![0, 1, 2, 255]),
            Frame::Stderr(vec![]),
            Frame::Exit(-1),
            Frame::Error("gone".into()),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut buf = BytesMut::new();
        let mut got = vec![];
        for b in wire {
            buf.put_u8(b);
            while let Some(f) = Frame::decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn rejects_garbage() {
        let mut buf = BytesMut::from(&[0x7f, 0, 0, 0, 0][..]);
        assert!(Frame::decode(&mut buf).is_err());
        let mut buf = BytesMut::from(&[STDIN, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(Frame::decode(&mut buf).is_err());
    }
}
