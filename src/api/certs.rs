//! Certificates (dyno extension): `GET /certs`.

use super::endpoint;
use serde::{Deserialize, Serialize};

/// `GET /certs` (dyno extension): the HTTPS listener and its local certificate authority.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certs {
    pub https_addr: Option<String>,
    pub ca_cert_path: Option<String>,
    pub ca_cert_pem: Option<String>,
}

endpoint! {
    /// `GET /certs`.
    Get {} => GET ["certs"] -> Certs;
}
