//! `git push` over HTTPS (git's smart HTTP, push only), at the URL the Heroku CLI builds:
//! `https://<api host>/<app>.git`. Authentication happened in `api_https` (Basic, the token as
//! password, which `heroku git:credentials` hands git). `git receive-pack --stateless-rpc` runs
//! on the app's bare repository, so its `pre-receive` hook builds and releases exactly as for
//! `git push dyno`: the build's output goes back as `remote:` lines and a failed build rejects
//! the push.

use super::api_server::{self, Fail, Resp};
use super::Daemon;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A push's request body larger than this is refused (git sends packs, not slugs).
const MAX_PACK: usize = 512 * 1024 * 1024;

/// Answers the request when it is one of git's (a path `/<app>.git/…`), else hands it back.
pub async fn serve(d: &Arc<Daemon>, req: Request<Incoming>) -> Result<Resp, Request<Incoming>> {
    let Some((repo, rest)) = req
        .uri()
        .path()
        .strip_prefix('/')
        .and_then(|p| p.split_once(".git/"))
        .map(|(a, b)| (a.to_string(), b.to_string()))
    else {
        return Err(req);
    };
    let push_service = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "service=git-receive-pack");
    let advertise = match (req.method(), rest.as_str()) {
        (&Method::GET, "info/refs") if push_service => true,
        (&Method::POST, "git-receive-pack") => false,
        _ => {
            return Ok(fail(
                StatusCode::FORBIDDEN,
                "only git push (git-receive-pack) is served here",
            ))
        }
    };
    let app = match d.store.app(&repo) {
        Ok(Some(a)) => a,
        _ => return Ok(fail(StatusCode::NOT_FOUND, "Couldn't find that app.")),
    };
    let dir = crate::git::repo_path(&d.paths, &app.name);
    if !dir.is_dir() {
        return Ok(fail(StatusCode::NOT_FOUND, "the app has no repository"));
    }
    Ok(if advertise {
        advertise_refs(&dir).await
    } else {
        receive(dir, req).await
    })
}

fn fail(status: StatusCode, msg: &str) -> Resp {
    api_server::error(Fail(status, "git", msg.into()))
}

async fn advertise_refs(dir: &std::path::Path) -> Resp {
    let out = tokio::process::Command::new("git")
        .args(["receive-pack", "--stateless-rpc", "--advertise-refs"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            let mut body = pkt_line("# service=git-receive-pack\n");
            body.extend_from_slice(b"0000");
            body.extend_from_slice(&o.stdout);
            Response::builder()
                .header(
                    "content-type",
                    "application/x-git-receive-pack-advertisement",
                )
                .header("cache-control", "no-cache")
                .body(Full::new(Bytes::from(body)).boxed())
                .unwrap()
        }
        Ok(o) => fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            &String::from_utf8_lossy(&o.stderr),
        ),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, &format!("git: {e}")),
    }
}

fn pkt_line(s: &str) -> Vec<u8> {
    format!("{:04x}{s}", s.len() + 4).into_bytes()
}

/// `POST /<app>.git/git-receive-pack`: the pack into `git receive-pack --stateless-rpc`, its
/// answer (with the hook's output as side-band progress) streamed back.
async fn receive(dir: std::path::PathBuf, req: Request<Incoming>) -> Resp {
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = match http_body_util::Limited::new(req.into_body(), MAX_PACK)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return fail(StatusCode::PAYLOAD_TOO_LARGE, &format!("the push: {e}")),
    };
    let body = if gzip {
        let mut out = vec![];
        use std::io::Read;
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            return fail(StatusCode::BAD_REQUEST, &format!("the push's gzip: {e}"));
        }
        Bytes::from(out)
    } else {
        body
    };
    let mut child = match tokio::process::Command::new("git")
        .args(["receive-pack", "--stateless-rpc"])
        .arg(&dir)
        .env("DYNO_PUSH_OVER_HTTPS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(StatusCode::INTERNAL_SERVER_ERROR, &format!("git: {e}")),
    };
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let feed = async {
            let _ = stdin.write_all(&body).await;
            drop(stdin);
        };
        let relay = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        tokio::join!(feed, relay);
        let _ = child.wait().await;
    });
    Response::builder()
        .header("content-type", "application/x-git-receive-pack-result")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(api_server::ChannelBody(rx)))
        .unwrap()
}
