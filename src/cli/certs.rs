//! `certs`: the HTTPS listener and the local certificate authority to trust.

use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;

pub async fn show(paths: &Paths, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let r = c.call(api::certs::Get {}).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    let (Some(addr), Some(ca)) = (&r.https_addr, &r.ca_cert_path) else {
        println!("The HTTPS listener is off (DYNO_HTTPS_ADDR=off, or its port was taken: see the daemon's log).");
        return Ok(0);
    };
    let port = addr.rsplit(':').next().unwrap_or("443");
    let port = if port == "443" {
        String::new()
    } else {
        format!(":{port}")
    };
    println!("HTTPS listener:  {addr}  (https://<app>.localhost{port}/)");
    println!("Local CA:        {ca}");
    println!();
    println!(
        "Each app gets a certificate signed by this local certificate authority. Trust it once:"
    );
    println!("  Debian/Ubuntu:  sudo cp {ca} /usr/local/share/ca-certificates/dyno-local-ca.crt && sudo update-ca-certificates");
    println!("  Chrome/Firefox: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n dyno -i {ca}");
    println!(
        "                  (or import it as an authority in the browser's certificate settings)"
    );
    println!("  curl only:      curl --cacert {ca} https://<app>.localhost{port}/");
    println!(
        "The CA's key ({}) never leaves this machine; it signs only names the router serves.",
        ca.trim_end_matches("ca.pem").to_string() + "ca-key.pem"
    );
    Ok(0)
}
