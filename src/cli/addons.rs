//! `addons`, `addons:create/info/attach/detach/destroy`, `pg:psql`, `pg:info`, `redis:cli`,
//! `redis:info`: the app's add-ons, printed as Heroku's CLI prints them. Creating, attaching,
//! detaching and destroying each make a release that restarts the dynos. The `pg:` and
//! `redis:` commands run Debian's `psql` and `redis-cli` on the host, over the servers' Unix
//! sockets, with the add-on's own credentials.

use super::{resolve_app, AppArg};
use crate::api::{self, addons as ep};
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

async fn latest_version(c: &Client, name: &str) -> Result<u32> {
    let releases = c.call(api::releases::List { app: name.into() }).await?;
    Ok(releases.last().map_or(0, |r| r.version))
}

fn plan_short(plan: &str) -> &str {
    plan.split_once(':').map_or(plan, |(_, p)| p)
}

fn state(s: &str) -> &str {
    if s == "provisioned" {
        "created"
    } else {
        s
    }
}

/// Heroku's `addons` table: each add-on, then its attachments under it.
pub fn table(app: &str, list: &[api::Addon]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                format!("{} ({})", a.addon_service.name, a.name),
                plan_short(&a.plan.name).to_string(),
                "free".to_string(),
                state(&a.state).to_string(),
            ]
        })
        .collect();
    let (mut out, lines) = super::table::lines(&["Add-on", "Plan", "Price", "State"], &rows);
    for (a, l) in list.iter().zip(lines) {
        out += &l;
        for t in &a.attachments {
            if t.app.name == app {
                out += &format!(" └─ as {}\n", t.name);
            } else {
                out += &format!(" └─ as {} on {} app\n", t.name, t.app.name);
            }
        }
        out += "\n";
    }
    out += &format!(
        "The table above shows add-ons and the attachments to the current app ({app}) or other apps.\n"
    );
    out
}

pub async fn list(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(ep::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!("No add-ons for app {name}.");
    } else {
        print!("{}", table(&name, &list));
    }
    Ok(0)
}

pub async fn create(
    paths: &Paths,
    arg: AppArg,
    plan: &str,
    as_name: Option<String>,
    json: bool,
) -> Result<i32> {
    // Checked here too, so a typo costs no daemon start.
    let (svc, _) = ep::parse_plan(plan).map_err(anyhow::Error::msg)?;
    if let Some(n) = &as_name {
        ep::validate_attachment_name(n).map_err(anyhow::Error::msg)?;
    }
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    eprint!("Creating {plan} on {name}... ");
    let a = c
        .call(ep::Create {
            app: name.clone(),
            body: api::AddonCreate {
                plan: plan.to_string(),
                attachment: Some(ep::AttachmentName { name: as_name }),
            },
        })
        .await;
    let a = match a {
        Ok(a) => a,
        Err(e) => {
            eprintln!("failed");
            return Err(e);
        }
    };
    eprintln!("done, v{}", latest_version(&c, &name).await?);
    if json {
        println!("{}", serde_json::to_string_pretty(&a)?);
        return Ok(0);
    }
    match a.config_vars.first() {
        Some(var) => println!("Created {} as {var}", a.name),
        None => println!("Created {}", a.name),
    }
    if svc.name == "heroku-postgresql" {
        println!("Database has been created and is available");
    }
    println!("Use dyno addons:info {} to see it", a.name);
    Ok(0)
}

pub async fn info(paths: &Paths, arg: AppArg, addon: &str, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let a = c
        .call(ep::InfoOf {
            app: name,
            addon: addon.to_string(),
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&a)?);
        return Ok(0);
    }
    let attachments: Vec<String> = a
        .attachments
        .iter()
        .map(|t| format!("{}::{}", t.app.name, t.name))
        .collect();
    println!("=== {}\n", a.name);
    let pairs = vec![
        ("Attachments".to_string(), attachments.join(", ")),
        ("Installed at".to_string(), a.created_at.clone()),
        ("Owning app".to_string(), a.app.name.clone()),
        ("Plan".to_string(), a.plan.name.clone()),
        ("Price".to_string(), "free".to_string()),
        ("State".to_string(), state(&a.state).to_string()),
    ];
    print!("{}", super::config::styled(&pairs));
    Ok(0)
}

pub async fn attach(
    paths: &Paths,
    arg: AppArg,
    addon: &str,
    as_name: Option<String>,
) -> Result<i32> {
    if let Some(n) = &as_name {
        ep::validate_attachment_name(n).map_err(anyhow::Error::msg)?;
    }
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    eprint!("Attaching {addon} to {name}... ");
    let t = c
        .call(ep::Attach {
            body: ep::AttachmentCreate {
                app: name.clone(),
                addon: addon.to_string(),
                name: as_name,
            },
        })
        .await?;
    eprintln!("done");
    eprintln!(
        "Setting {} config vars and restarting {name}... done, v{}",
        t.name,
        latest_version(&c, &name).await?
    );
    Ok(0)
}

pub async fn detach(paths: &Paths, arg: AppArg, attachment: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    eprint!("Detaching {attachment} from {name}... ");
    let t = c
        .call(ep::Detach {
            app: name.clone(),
            attachment: attachment.to_string(),
        })
        .await?;
    eprintln!("done");
    eprintln!(
        "Unsetting {}_URL config vars and restarting {name}... done, v{}",
        t.name,
        latest_version(&c, &name).await?
    );
    Ok(0)
}

pub async fn destroy(
    paths: &Paths,
    arg: AppArg,
    addon: &str,
    confirm: Option<String>,
    force: bool,
) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let a = c
        .call(ep::InfoOf {
            app: name.clone(),
            addon: addon.to_string(),
        })
        .await?;
    if confirm.as_deref() != Some(name.as_str()) {
        if let Some(c) = confirm {
            bail!("confirmation {c:?} did not match {name}: nothing destroyed");
        }
        super::confirm_by_typing(
            &format!("This will destroy {} and its data.", a.name),
            &name,
            format!(
                "this would destroy {} and its data: confirm with --confirm {name}",
                a.name
            ),
        )?;
    }
    eprint!("Destroying {} on {name}... ", a.name);
    match c
        .call(ep::Destroy {
            app: name.clone(),
            addon: a.name.clone(),
            body: ep::AddonDelete { force },
        })
        .await
    {
        Ok(_) => {
            eprintln!("done");
            Ok(0)
        }
        Err(e) => {
            eprintln!("failed");
            Err(e)
        }
    }
}

async fn connection(
    c: &Client,
    app: &str,
    addon: Option<String>,
    default: &str,
    service: &str,
) -> Result<api::AddonConnection> {
    let conn = c
        .call(ep::Connection {
            app: app.to_string(),
            addon: addon.unwrap_or_else(|| default.to_string()),
        })
        .await?;
    if conn.service != service {
        bail!("{} is a {} add-on, not {service}", conn.addon, conn.service);
    }
    Ok(conn)
}

fn psql_command(conn: &api::AddonConnection) -> Result<std::process::Command> {
    let mut cmd = std::process::Command::new(crate::addons::pg_bin("psql")?);
    cmd.arg("-h")
        .arg(&conn.socket)
        .arg("-p")
        .arg(conn.port.to_string())
        .arg("-U")
        .arg(&conn.user)
        .arg("-d")
        .arg(&conn.database)
        .env("PGPASSWORD", &conn.password)
        .env("PGAPPNAME", "dyno pg:psql");
    Ok(cmd)
}

fn exit_code(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or(1)
}

pub async fn psql(
    paths: &Paths,
    arg: AppArg,
    database: Option<String>,
    command: Option<String>,
) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let conn = connection(&c, &name, database, "DATABASE", "heroku-postgresql").await?;
    let mut cmd = psql_command(&conn)?;
    match command {
        Some(sql) => {
            cmd.arg("-c").arg(sql);
        }
        None => eprintln!("--> Connecting to {}", conn.addon),
    }
    Ok(exit_code(cmd.status()?))
}

pub async fn pg_info(paths: &Paths, arg: AppArg, database: Option<String>) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(ep::List { app: name.clone() }).await?;
    let shown = shown_addons(&list, &name, "heroku-postgresql", database.as_deref());
    let found = !shown.is_empty();
    for (a, here) in shown {
        let conn = connection(&c, &name, Some(a.name.clone()), "", "heroku-postgresql").await?;
        let out = psql_command(&conn)?
            .args(["-X", "-A", "-t", "-F", "|", "-c"])
            .arg(
                "SELECT current_setting('server_version'), \
                 pg_size_pretty(pg_database_size(current_database())), \
                 (SELECT count(*) FROM information_schema.tables \
                  WHERE table_schema NOT IN ('pg_catalog', 'information_schema')), \
                 (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) - 1",
            )
            .output()?;
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let f: Vec<&str> = line.split('|').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("?").to_string();
        let vars: Vec<String> = here.iter().map(|t| format!("{}_URL", t.name)).collect();
        println!("=== {}\n", vars.join(", "));
        let status = if out.status.success() {
            "Available"
        } else {
            "Unavailable"
        };
        let pairs = vec![
            ("Plan".to_string(), plan_short(&a.plan.name).to_string()),
            ("Status".to_string(), status.to_string()),
            ("Connections".to_string(), format!("{}/100", get(3))),
            ("PG Version".to_string(), get(0)),
            ("Created".to_string(), a.created_at.clone()),
            ("Data Size".to_string(), get(1)),
            ("Tables".to_string(), get(2)),
            ("Add-on".to_string(), a.name.clone()),
        ];
        println!("{}", super::config::styled(&pairs));
    }
    if !found {
        match database {
            Some(d) => bail!("{name} has no Postgres database {d}"),
            None => println!("{name} has no heroku-postgresql databases."),
        }
    }
    Ok(0)
}

/// The app's add-ons of `service` for `pg:info`/`redis:info`, each with its attachments on the
/// app; `database` narrows them to one, named as the add-on (`postgresql-curved-12345`) or as
/// an attachment (`DATABASE`, `DATABASE_URL`, any case).
fn shown_addons<'a>(
    list: &'a [api::Addon],
    app: &str,
    service: &str,
    database: Option<&str>,
) -> Vec<(&'a api::Addon, Vec<&'a api::AddonAttachment>)> {
    list.iter()
        .filter(|a| a.addon_service.name == service)
        .map(|a| {
            let here = a.attachments.iter().filter(|t| t.app.name == app).collect();
            (a, here)
        })
        .filter(|(a, here): &(_, Vec<&api::AddonAttachment>)| {
            let Some(want) = database else { return true };
            let up = want.to_ascii_uppercase();
            let as_var = up.trim_end_matches("_URL");
            a.name == want || here.iter().any(|t| t.name == as_var)
        })
        .collect()
}

fn redis_command(conn: &api::AddonConnection) -> Result<std::process::Command> {
    let mut cmd = std::process::Command::new(crate::addons::redis_bin("redis-cli")?);
    cmd.arg("-s")
        .arg(&conn.socket)
        .arg("--no-auth-warning")
        .arg("-a")
        .arg(&conn.password);
    Ok(cmd)
}

pub async fn redis_cli(
    paths: &Paths,
    arg: AppArg,
    database: Option<String>,
    command: Option<String>,
) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let conn = connection(&c, &name, database, "REDIS", "heroku-redis").await?;
    let mut cmd = redis_command(&conn)?;
    match command {
        Some(line) => {
            cmd.args(line.split_whitespace());
        }
        None => eprintln!("Connecting to {}", conn.addon),
    }
    Ok(exit_code(cmd.status()?))
}

pub async fn redis_info(paths: &Paths, arg: AppArg, database: Option<String>) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(ep::List { app: name.clone() }).await?;
    let shown = shown_addons(&list, &name, "heroku-redis", database.as_deref());
    let found = !shown.is_empty();
    for (a, here) in shown {
        let conn = connection(&c, &name, Some(a.name.clone()), "", "heroku-redis").await?;
        let out = redis_command(&conn)?.arg("INFO").output()?;
        let info = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")))
                .unwrap_or("?")
                .trim()
                .to_string()
        };
        let vars: Vec<String> = here.iter().map(|t| format!("{}_URL", t.name)).collect();
        println!("=== {} ({})\n", a.name, vars.join(", "));
        let status = if out.status.success() {
            "available"
        } else {
            "unavailable"
        };
        let pairs = vec![
            ("Plan".to_string(), plan_short(&a.plan.name).to_string()),
            ("Status".to_string(), status.to_string()),
            ("Created".to_string(), a.created_at.clone()),
            ("Version".to_string(), field("redis_version")),
            ("Memory".to_string(), field("used_memory_human")),
            ("Clients".to_string(), field("connected_clients")),
            ("Keys".to_string(), {
                let k = field("db0");
                k.split(',')
                    .next()
                    .and_then(|s| s.strip_prefix("keys="))
                    .unwrap_or("0")
                    .to_string()
            }),
        ];
        println!("{}", super::config::styled(&pairs));
    }
    if !found {
        match database {
            Some(d) => bail!("{name} has no Redis add-on {d}"),
            None => println!("{name} has no heroku-redis add-ons."),
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addon(name: &str, plan: &str, atts: &[(&str, &str)]) -> api::Addon {
        let app = |n: &str| api::IdName {
            id: n.into(),
            name: n.into(),
        };
        api::Addon {
            id: name.into(),
            name: name.into(),
            addon_service: app(plan.split(':').next().unwrap()),
            plan: ep::Plan {
                id: plan.into(),
                name: plan.into(),
                price: ep::Price {
                    cents: 0,
                    unit: "month".into(),
                },
            },
            billed_price: None,
            app: app("myapp"),
            state: "provisioned".into(),
            config_vars: vec![],
            attachments: atts
                .iter()
                .map(|(a, n)| api::AddonAttachment {
                    id: n.to_string(),
                    name: n.to_string(),
                    addon: ep::AttachmentAddon {
                        id: name.into(),
                        name: name.into(),
                        app: app("myapp"),
                    },
                    app: app(a),
                    created_at: String::new(),
                    updated_at: String::new(),
                })
                .collect(),
            web_url: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_addons_table_shows_attachments_under_each_addon() {
        let t = table(
            "myapp",
            &[addon(
                "postgresql-curved-12345",
                "heroku-postgresql:essential-0",
                &[("myapp", "DATABASE"), ("other", "ANALYTICS")],
            )],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["Add-on", "Plan", "Price", "State"]
        );
        assert!(
            lines[2].starts_with(
                "heroku-postgresql (postgresql-curved-12345)  essential-0  free   created"
            ),
            "{t}"
        );
        assert_eq!(lines[3], " └─ as DATABASE");
        assert_eq!(lines[4], " └─ as ANALYTICS on other app");
    }
}
