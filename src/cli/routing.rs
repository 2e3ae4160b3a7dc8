//! `domains`, `drains`, `ps:idle` and `certs`: the router's and Logplex's settings of an app.

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

pub async fn domains(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(api::domains::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    println!("=== {name} Heroku Domain");
    for d in list.iter().filter(|d| d.kind == "heroku") {
        println!("{}", d.hostname);
    }
    let custom: Vec<_> = list.iter().filter(|d| d.kind == "custom").collect();
    if !custom.is_empty() {
        println!();
        println!("=== {name} Custom Domains");
        let rows: Vec<Vec<String>> = custom
            .iter()
            .map(|d| {
                vec![
                    d.hostname.clone(),
                    "CNAME".into(),
                    d.cname.clone().unwrap_or_default(),
                ]
            })
            .collect();
        super::table(&["Domain Name", "DNS Record Type", "DNS Target"], &rows);
    }
    Ok(0)
}

pub async fn domains_add(paths: &Paths, arg: AppArg, hostname: &str, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::domains::Create {
            app: name.clone(),
            body: api::DomainCreate {
                hostname: hostname.to_string(),
            },
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(0);
    }
    println!("Adding {} to {name}... done", d.hostname);
    println!(
        " ▸    The router answers for {} now: point its DNS (or /etc/hosts) at this machine.",
        d.hostname
    );
    Ok(0)
}

pub async fn domains_remove(paths: &Paths, arg: AppArg, hostname: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::domains::Delete {
            app: name.clone(),
            domain: hostname.to_string(),
        })
        .await?;
    println!("Removing {} from {name}... done", d.hostname);
    Ok(0)
}

pub async fn drains(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(api::drains::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!("{name} has no drains.");
    }
    for d in list {
        println!("{} ({})", d.url, d.token);
    }
    Ok(0)
}

pub async fn drains_add(paths: &Paths, arg: AppArg, url: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::drains::Create {
            app: name.clone(),
            body: api::LogDrainCreate {
                url: url.to_string(),
            },
        })
        .await?;
    println!("Successfully added drain {}", d.url);
    Ok(0)
}

pub async fn drains_remove(paths: &Paths, arg: AppArg, url: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::drains::Delete {
            app: name.clone(),
            drain: url.to_string(),
        })
        .await?;
    println!("Successfully removed drain {}", d.url);
    Ok(0)
}

pub async fn idle(paths: &Paths, arg: AppArg, state: Option<&str>, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let r = match state {
        None => c.call(api::idling::Get { app: name.clone() }).await?,
        Some(s) => {
            let enabled = match s {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                other => bail!("ps:idle takes `on` or `off`, not {other:?}"),
            };
            c.call(api::idling::Update {
                app: name.clone(),
                body: api::AppIdling {
                    enabled,
                    ..Default::default()
                },
            })
            .await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    let mins = r.idle_after_secs as f64 / 60.0;
    match (r.enabled, r.idle) {
        (false, _) => println!("Idling is off for {name}: its web dynos run until scaled down."),
        (true, false) => println!(
            "Idling is on for {name}: web dynos sleep after {mins} min without requests; the next request wakes them."
        ),
        (true, true) => println!("Idling is on for {name}, and it sleeps now: the next request wakes it."),
    }
    Ok(0)
}

pub async fn certs(paths: &Paths, json: bool) -> Result<i32> {
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
