//! Heroku's rendezvous for `heroku run` over the HTTPS API: a one-off dyno created over HTTPS
//! gets `attach_url = rendezvous://<host>:<port>/<secret>`. The Heroku CLI connects with TLS
//! (verifying the local CA), sends `<secret>\r\n`, throws away the first chunk it receives (our
//! greeting, written on its own), then raw bytes flow both ways: the dyno's output to the
//! client, the client's keys (or piped input, ended by one `0x04`) to the dyno. `run -x`
//! appends an `echo` of the exit status to the command itself, so nothing more is sent. When
//! the dyno ends the connection closes; when the client goes the dyno is stopped
//! (`run::relay`, fed through an in-memory pipe speaking `crate::attach`'s frames).

use super::run;
use super::Daemon;
use crate::attach::Frame;
use crate::runtime::DynoStdio;
use bytes::BytesMut;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A secret not used within this time is forgotten (the dyno stops by itself after
/// `run::ATTACH_TIMEOUT`).
const SECRET_TTL: Duration = Duration::from_secs(120);

#[derive(Default)]
pub struct Rendezvous {
    /// Where the listener is, once bound.
    pub addr: Mutex<Option<SocketAddr>>,
    /// Secret → (app id, dyno name), each used once.
    secrets: Mutex<HashMap<String, (String, String, Instant)>>,
}

impl Rendezvous {
    /// The `attach_url` of an attached one-off dyno, when the listener runs.
    pub fn url_for(&self, app_id: &str, dyno: &str) -> Option<String> {
        let addr = (*self.addr.lock().unwrap())?;
        let bytes: [u8; 24] = rand::random();
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.secrets.lock().unwrap();
        map.retain(|_, (_, _, made)| made.elapsed() < SECRET_TTL);
        map.insert(
            secret.clone(),
            (app_id.to_string(), dyno.to_string(), Instant::now()),
        );
        let host = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        Some(format!("rendezvous://{host}:{}/{secret}", addr.port()))
    }

    fn take(&self, secret: &str) -> Option<(String, String)> {
        let (app, dyno, made) = self.secrets.lock().unwrap().remove(secret)?;
        (made.elapsed() < SECRET_TTL).then_some((app, dyno))
    }
}

/// Binds next to the HTTPS API (same address, a port of its own).
pub async fn bind(api_addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::new(api_addr.ip(), 0)).await
}

pub async fn serve(
    d: Arc<Daemon>,
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (d, acceptor) = (d.clone(), acceptor.clone());
        tokio::spawn(async move {
            let Ok(Ok(mut tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            // `<secret>[?query]\r\n`, bounded in size and time.
            let mut line = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), async {
                let mut b = [0u8; 1];
                while line.len() < 512 && !line.ends_with(b"\r\n") {
                    if tls.read(&mut b).await.ok()? == 0 {
                        return None;
                    }
                    line.push(b[0]);
                }
                Some(())
            })
            .await;
            if !matches!(read, Ok(Some(()))) || !line.ends_with(b"\r\n") {
                return;
            }
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let secret = text.split('?').next().unwrap_or("");
            let Some((app_id, name)) = d.rendezvous.take(secret) else {
                let _ = tls
                    .write_all(b"unknown or used rendezvous secret\r\n")
                    .await;
                let _ = tls.shutdown().await;
                return;
            };
            let claimed = d
                .store
                .app(&app_id)
                .ok()
                .flatten()
                .ok_or(())
                .and_then(|app| run::claim(&d, &app, &name).map_err(|_| ()));
            let Ok((id, handle, stdio, exit)) = claimed else {
                let _ = tls.write_all(b"no such dyno\r\n").await;
                let _ = tls.shutdown().await;
                return;
            };
            // The greeting goes out alone: the CLI discards the first chunk it reads.
            if tls.write_all(b"rendezvous\r\n").await.is_err() || tls.flush().await.is_err() {
                drop(stdio);
                let _ = d.runtime.stop(&handle);
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            let tty = matches!(stdio, DynoStdio::Pty(_));
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tokio::spawn(run::relay(d.clone(), id, handle, theirs, stdio, exit));
            bridge(tls, ours, tty).await;
        });
    }
}

/// How long a session whose dyno ended waits for the client's end of input before closing.
const EOT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Raw bytes of the client ↔ frames of `run::relay`. On a pty, `0x04` is a key like any other
/// (the terminal's own end of input); on pipes it ends the dyno's stdin.
async fn bridge<C>(client: C, frames: tokio::io::DuplexStream, tty: bool)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut crd, mut cwr) = tokio::io::split(client);
    let (mut frd, mut fwr) = tokio::io::split(frames);
    // Whether the client sent its end of input (0x04): the Heroku CLI writes it when its stdin
    // ends, and crashes (EPIPE) if our end of the connection came first.
    let (eot_tx, mut eot_rx) = tokio::sync::watch::channel(false);
    let to_dyno = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut ended = false;
        loop {
            let n = match crd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if ended {
                continue;
            }
            let mut data = &buf[..n];
            let mut eof = false;
            if data.contains(&0x04) {
                let _ = eot_tx.send(true);
            }
            if !tty {
                if let Some(i) = data.iter().position(|&b| b == 0x04) {
                    data = &data[..i];
                    eof = true;
                }
            }
            if !data.is_empty()
                && fwr
                    .write_all(&Frame::Stdin(data.to_vec()).encode())
                    .await
                    .is_err()
            {
                return;
            }
            if eof {
                ended = true;
                if fwr.write_all(&Frame::StdinEof.encode()).await.is_err() {
                    return;
                }
            }
        }
    };
    let to_client = async {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            loop {
                match Frame::decode(&mut buf) {
                    Ok(Some(Frame::Stdout(b))) | Ok(Some(Frame::Stderr(b))) => {
                        if cwr.write_all(&b).await.is_err() || cwr.flush().await.is_err() {
                            return;
                        }
                    }
                    Ok(Some(Frame::Exit(_))) | Ok(Some(Frame::Error(_))) | Err(_) => return,
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                }
            }
            match frd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    // Either side ending ends the session: the dyno's end closes the client's connection; the
    // client's end drops the pipe, and `relay` stops the dyno. When the dyno ends first, the
    // client's 0x04 may still be on its way (a run with piped or no input): it gets a moment
    // (EOT_GRACE) before the connection closes. An interactive client never sends one.
    let mut to_dyno = std::pin::pin!(to_dyno);
    tokio::select! {
        _ = &mut to_dyno => {}
        _ = to_client => {
            if !*eot_rx.borrow() {
                let _ = tokio::time::timeout(EOT_GRACE, async {
                    tokio::select! {
                        _ = &mut to_dyno => {}
                        _ = eot_rx.wait_for(|sent| *sent) => {}
                    }
                })
                .await;
            }
        }
    }
    let _ = cwr.shutdown().await;
}
