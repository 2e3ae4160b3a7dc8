//! The OCI image format, written by dyno itself (no Docker daemon): layers as tar+gzip with
//! their sha256 digests (of the compressed blob) and diff ids (of the tar), the image config,
//! the manifest, the index, `oci-layout`, and the whole layout as one `oci-archive` tarball that
//! `podman load` and `skopeo` read. See the OCI image spec (image-layout.md, manifest.md).

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A content-addressed blob kept in a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Blob {
    /// `sha256:<hex>` of the file's bytes.
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// A layer: its gzipped blob and the digest of the tar inside (the config's `diff_ids`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layer {
    pub blob: Blob,
    pub diff_id: String,
    /// What made it, for the config's history.
    pub created_by: String,
}

/// Counts and hashes what passes through.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The tar builder of a layer being written to `path`; `finish` gives the [`Layer`].
pub struct LayerWriter {
    tar: tar::Builder<Hashing<GzEncoder<Hashing<BufWriter<File>>>>>,
    path: PathBuf,
}

impl LayerWriter {
    pub fn create(path: &Path) -> Result<LayerWriter> {
        let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
        let outer = Hashing {
            inner: BufWriter::with_capacity(1 << 20, f),
            hash: Sha256::new(),
            n: 0,
        };
        let gz = GzEncoder::new(outer, flate2::Compression::new(6));
        let inner = Hashing {
            inner: gz,
            hash: Sha256::new(),
            n: 0,
        };
        let mut tar = tar::Builder::new(inner);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        Ok(LayerWriter {
            tar,
            path: path.to_path_buf(),
        })
    }

    pub fn tar(&mut self) -> &mut tar::Builder<impl Write> {
        &mut self.tar
    }

    pub fn finish(self, created_by: &str) -> Result<Layer> {
        let inner = self.tar.into_inner()?;
        let diff_id = format!("sha256:{}", hex(&inner.hash.finalize()));
        let mut outer = inner.inner.finish()?;
        outer.flush()?;
        let digest = format!("sha256:{}", hex(&outer.hash.finalize()));
        outer.inner.into_inner()?.sync_all()?;
        Ok(Layer {
            blob: Blob {
                digest,
                size: outer.n,
                path: self.path,
            },
            diff_id,
            created_by: created_by.to_string(),
        })
    }
}

/// The image's runtime settings (the config's `config`, OCI names).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    pub user: String,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub exposed_ports: std::collections::BTreeMap<String, serde_json::Value>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub stop_signal: String,
}

/// A whole image: its layers (bottom first), config, and the manifest over them.
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Image {
    pub fn new(layers: Vec<Layer>, run: &RunConfig, created: &str) -> Result<Image> {
        let config = serde_json::json!({
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": run,
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            "history": layers.iter().map(|l| serde_json::json!({
                "created": created,
                "created_by": l.created_by,
            })).collect::<Vec<_>>(),
        });
        let config = serde_json::to_vec(&config)?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": CONFIG,
                "digest": format!("sha256:{}", sha256_hex(&config)),
                "size": config.len(),
            },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": LAYER,
                "digest": l.blob.digest,
                "size": l.blob.size,
            })).collect::<Vec<_>>(),
            "annotations": { "org.opencontainers.image.created": created },
        }))?;
        Ok(Image {
            layers,
            config,
            manifest,
        })
    }

    /// `sha256:<hex>` of the manifest: what a registry and `skopeo inspect` report as the
    /// image's digest.
    pub fn digest(&self) -> String {
        format!("sha256:{}", sha256_hex(&self.manifest))
    }

    pub fn config_digest(&self) -> String {
        format!("sha256:{}", sha256_hex(&self.config))
    }

    /// Writes the OCI layout as an `oci-archive` tarball: `oci-layout`, `index.json` (one
    /// manifest, named `ref_name`), `blobs/sha256/…`.
    pub fn write_archive(&self, out: &Path, ref_name: &str) -> Result<()> {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [{
                "mediaType": MANIFEST,
                "digest": self.digest(),
                "size": self.manifest.len(),
                "annotations": { "org.opencontainers.image.ref.name": ref_name },
            }],
        }))?;
        let tmp = out.with_extension("tar.part");
        let f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
        let mut put = |name: &str, data: &[u8]| -> Result<()> {
            let mut h = file_header(data.len() as u64);
            tar.append_data(&mut h, name, data)?;
            Ok(())
        };
        put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        put("index.json", &index)?;
        put(&blob_name(&self.digest()), &self.manifest)?;
        put(&blob_name(&self.config_digest()), &self.config)?;
        for layer in &self.layers {
            let mut f = File::open(&layer.blob.path)
                .with_context(|| format!("open {}", layer.blob.path.display()))?;
            let mut h = file_header(layer.blob.size);
            tar.append_data(&mut h, blob_name(&layer.blob.digest), &mut f)?;
        }
        let w = tar.into_inner()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out)?;
        Ok(())
    }
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h
}

/// Hashes a file's bytes: `sha256:<hex>`.
pub fn file_digest(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Read;

    /// The archive is a valid OCI layout: every blob is named by its digest, the index points at
    /// the manifest, the manifest at the config and layers, the config's diff ids are the
    /// digests of the uncompressed layers.
    #[test]
    fn archives_are_content_addressed_all_the_way_down() {
        let dir = std::env::temp_dir().join(format!("dyno-oci-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = LayerWriter::create(&dir.join("l.tar.gz")).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        w.tar()
            .append_data(&mut h, "app/hello", &b"hello"[..])
            .unwrap();
        let layer = w.finish("test").unwrap();
        let run = RunConfig {
            user: "47000:47000".into(),
            ..Default::default()
        };
        let img = Image::new(vec![layer], &run, "2026-12-08T00:00:00Z").unwrap();
        let out = dir.join("image.oci.tar");
        img.write_archive(&out, "localhost/t:v1").unwrap();

        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        let mut a = tar::Archive::new(File::open(&out).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = vec![];
            e.read_to_end(&mut data).unwrap();
            files.insert(name, data);
        }
        for (name, data) in &files {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(sha256_hex(data), hex, "{name}");
            }
        }
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let m = &index["manifests"][0];
        assert_eq!(m["digest"], img.digest());
        assert_eq!(
            m["annotations"]["org.opencontainers.image.ref.name"],
            "localhost/t:v1"
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&files[&blob_name(&img.digest())]).unwrap();
        let config: serde_json::Value = serde_json::from_slice(
            &files[&blob_name(manifest["config"]["digest"].as_str().unwrap())],
        )
        .unwrap();
        assert_eq!(config["config"]["User"], "47000:47000");
        let gz = &files[&blob_name(manifest["layers"][0]["digest"].as_str().unwrap())];
        let mut tar = vec![];
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", sha256_hex(&tar))
        );
        assert_eq!(manifest["layers"][0]["size"], gz.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
