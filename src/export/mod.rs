//! `dyno export`: a release as an OCI image and Kubernetes manifests, so an app that outgrows
//! one machine moves onto a real engine unchanged. The CLI does the work from what the API hands
//! out (the release, its config snapshot, the formation, the slug's tarball through its
//! `blob.url`); nothing here reads `DYNO_HOME`'s state or talks to a container engine.
//!
//! - `stack.rs`: the stack layer (mmdebstrap, cached under `DYNO_STACK_CACHE`).
//! - `oci.rs`: layers, config, manifest, index and the `oci-archive` tarball.
//! - `kube.rs`: `kubernetes.yaml`, `release.yaml`, `podman/kube.yaml`, `podman/configmap.yaml`.
//! - `push.rs`: the OCI distribution API (`--push`).

pub mod kube;
pub mod oci;
pub mod push;
pub mod stack;

use anyhow::{bail, Context, Result};
use oci::{Layer, LayerWriter};
use std::path::{Path, PathBuf};

/// The image's entrypoint: dyno's init, which sources `.profile.d` and runs its argument (the
/// Procfile command) with bash, forwarding signals, as in every dyno.
pub const INIT: &str = "/.dyno/init";

/// The layer holding dyno's init at `/.dyno/init` (its own layer: a new dyno binary does not
/// invalidate the cached stack). Debug symbols are stripped when `objcopy` is there.
pub fn init_layer(exe: &Path, work: &Path) -> Result<Layer> {
    let stripped = work.join("init");
    let ok = std::process::Command::new("objcopy")
        .arg("--strip-debug")
        .arg(exe)
        .arg(&stripped)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        std::fs::copy(exe, &stripped)?;
    }
    let mut w = LayerWriter::create(&work.join("init.tar.gz"))?;
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    w.tar().append_data(&mut dir, ".dyno", std::io::empty())?;
    let len = std::fs::metadata(&stripped)?.len();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(len);
    w.tar().append_data(
        &mut h,
        INIT.trim_start_matches('/'),
        std::fs::File::open(&stripped)?,
    )?;
    let layer = w.finish(&format!("dyno export: init (dyno {})", crate::api::VERSION))?;
    std::fs::remove_file(&stripped)?;
    Ok(layer)
}

/// The slug's tarball (`app/…`, owned by root in dyno's store) as the `/app` layer, owned by
/// the dyno user as Heroku's `/app` is.
pub fn slug_layer(slug_tgz: &Path, work: &Path, created_by: &str) -> Result<Layer> {
    let (uid, gid) = (crate::runtime::DYNO_UID, crate::runtime::DYNO_GID);
    let f = std::fs::File::open(slug_tgz)?;
    let mut src = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let mut w = LayerWriter::create(&work.join("slug.tar.gz"))?;
    for e in src.entries()? {
        let mut e = e?;
        let path = e.path()?.into_owned();
        if !path.starts_with("app") {
            bail!("the slug has an entry outside app/: {}", path.display());
        }
        let mut h = e.header().clone();
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        let _ = h.set_username("dyno");
        let _ = h.set_groupname("dyno");
        match e.header().entry_type() {
            tar::EntryType::Symlink => {
                let target = e
                    .link_name()?
                    .context("a link without a target")?
                    .into_owned();
                h.set_size(0);
                w.tar().append_link(&mut h, &path, target)?;
            }
            tar::EntryType::Directory | tar::EntryType::Regular => {
                w.tar().append_data(&mut h, &path, &mut e)?;
            }
            t => bail!("the slug has an entry of kind {t:?}: {}", path.display()),
        }
    }
    w.finish(created_by)
}

/// Where an export's files go, and its scratch space (removed at the end).
pub struct OutDir {
    pub dir: PathBuf,
    pub work: PathBuf,
}

impl OutDir {
    pub fn create(dir: &Path) -> Result<OutDir> {
        if dir.exists() && !dir.is_dir() {
            bail!("{} exists and is not a directory", dir.display());
        }
        std::fs::create_dir_all(dir.join("podman"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let work = dir.join(".dyno-export");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        Ok(OutDir {
            dir: dir.to_path_buf(),
            work,
        })
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The slug's entries (root's in dyno's store) belong to the dyno user in the image, links
    /// stay links, and an entry outside `app/` is refused.
    #[test]
    fn the_slug_layer_is_the_dyno_users() {
        let dir = std::env::temp_dir().join(format!("dyno-slug-layer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tgz = |entries: &[(&str, Option<&str>)]| {
            let p = dir.join("slug.tgz");
            let f = std::fs::File::create(&p).unwrap();
            let mut t = tar::Builder::new(flate2::write::GzEncoder::new(f, Default::default()));
            for (name, link) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o700);
                match link {
                    Some(l) => {
                        h.set_entry_type(tar::EntryType::Symlink);
                        h.set_size(0);
                        t.append_link(&mut h, name, l).unwrap();
                    }
                    None => {
                        h.set_size(2);
                        t.append_data(&mut h, name, &b"hi"[..]).unwrap();
                    }
                }
            }
            t.into_inner().unwrap().finish().unwrap();
            p
        };
        let p = tgz(&[("app/run", None), ("app/py", Some("/usr/bin/python3"))]);
        let layer = slug_layer(&p, &dir, "t").unwrap();
        let f = std::fs::File::open(&layer.blob.path).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut seen = 0;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 47000);
            assert_eq!(e.header().gid().unwrap(), 47000);
            if e.path().unwrap().ends_with("py") {
                assert_eq!(
                    e.link_name().unwrap().unwrap().to_string_lossy(),
                    "/usr/bin/python3"
                );
            } else {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                assert_eq!(s, "hi");
            }
            seen += 1;
        }
        assert_eq!(seen, 2);
        let p = tgz(&[("etc/passwd", None)]);
        let e = slug_layer(&p, &dir, "t").unwrap_err().to_string();
        assert!(e.contains("outside app/"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
