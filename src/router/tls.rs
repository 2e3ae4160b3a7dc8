//! The HTTPS listener's certificates: a local certificate authority made once per `DYNO_HOME`
//! (`tls/ca.pem`, its key `tls/ca-key.pem` 0600), and a certificate per app host name
//! (`<app>.localhost`, custom domains) signed by it on the first handshake that asks for it
//! (SNI) and kept in memory. Once the user trusts `ca.pem`, `https://<app>.localhost` works.

use super::RouteTable;
use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const CA_NAME: &str = "dyno local CA";

/// The local certificate authority.
pub struct LocalCa {
    pub cert_path: PathBuf,
    /// The CA certificate, as written in `ca.pem` (DER).
    ca_der: CertificateDer<'static>,
    /// The CA re-created from its key and fixed parameters, to sign with.
    issuer: rcgen::Certificate,
    key: KeyPair,
}

fn ca_params() -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "dyno");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Fixed dates: the same key and parameters give an equivalent issuer at every start.
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2049, 12, 31);
    Ok(p)
}

impl LocalCa {
    /// Loads the CA of `dir`, making it the first time.
    pub fn load_or_create(dir: &Path) -> Result<LocalCa> {
        std::fs::create_dir_all(dir)?;
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let key = match std::fs::read_to_string(&key_path) {
            Ok(pem) if cert_path.exists() => {
                KeyPair::from_pem(&pem).with_context(|| format!("{}", key_path.display()))?
            }
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params()?.self_signed(&key)?;
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                std::fs::write(&cert_path, cert.pem())?;
                key
            }
        };
        let pem = std::fs::read(&cert_path)?;
        let ca_der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .context("ca.pem holds no certificate")??;
        let issuer = ca_params()?.self_signed(&key)?;
        Ok(LocalCa {
            cert_path,
            ca_der,
            issuer,
            key,
        })
    }

    /// A certificate for `host`, signed by the CA, with the chain rustls serves.
    pub fn issue(&self, host: &str) -> Result<CertifiedKey> {
        let mut p = CertificateParams::new(vec![host.to_string()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time_now();
        p.not_before = now - std::time::Duration::from_secs(86400);
        // Browsers refuse leaf certificates valid for more than 398 days.
        p.not_after = now + std::time::Duration::from_secs(365 * 86400);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer, &self.key)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| anyhow::anyhow!("signing key: {e}"))?;
        Ok(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signing,
        ))
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    Ok(())
}

/// Picks (and makes, once) the certificate for the name the client asks for. Only names the
/// router serves get one, so a client cannot make it sign arbitrary names or grow its cache.
pub struct Resolver {
    ca: LocalCa,
    table: RouteTable,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No SNI (an IP address, old clients): a certificate for `localhost`.
        let name = hello
            .server_name()
            .unwrap_or("localhost")
            .to_ascii_lowercase();
        if name != "localhost" && self.table.app_for_host(&name).is_none() {
            return None;
        }
        if let Some(c) = self.cache.lock().unwrap().get(&name) {
            return Some(c.clone());
        }
        match self.ca.issue(&name) {
            Ok(c) => {
                let c = Arc::new(c);
                self.cache.lock().unwrap().insert(name, c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!("router: certificate for {name}: {e:#}");
                None
            }
        }
    }
}

/// The acceptor of the HTTPS listener: HTTP/1.1, certificates from `ca` by SNI.
pub fn acceptor(ca: LocalCa, table: RouteTable) -> Result<tokio_rustls::TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver {
            ca,
            table,
            cache: Mutex::new(HashMap::new()),
        }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
