//! `dyno export`: a release as an OCI image archive and Kubernetes manifests (`crate::export`
//! does the building; this reads the release through the API and prints what it wrote).

use super::{resolve_app, AppArg};
use crate::api;
use crate::build::human_size;
use crate::client::Client;
use crate::export::{self, kube, oci, push, stack, OutDir};
use crate::paths::Paths;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

pub struct Options {
    pub release: Option<String>,
    pub out: Option<PathBuf>,
    /// `registry/repository[:tag]` to push the image to.
    pub push: Option<String>,
    /// `user:password` for the registry.
    pub creds: Option<String>,
}

pub async fn export(paths: &Paths, arg: AppArg, o: Options) -> Result<i32> {
    let started = Instant::now();
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let release = match &o.release {
        Some(k) => {
            c.call(api::releases::Info {
                app: name.clone(),
                release: k.clone(),
            })
            .await?
        }
        None => c
            .call(api::releases::List { app: name.clone() })
            .await?
            .into_iter()
            .find(|r| r.current)
            .ok_or_else(|| anyhow!("{name} has no succeeded release yet: deploy it first"))?,
    };
    if release.status != "succeeded" {
        bail!(
            "v{} of {name} is {}: only a succeeded release can be exported",
            release.version,
            release.status
        );
    }
    // Checked before anything is written or sent: bad input changes nothing.
    let target = match &o.push {
        Some(p) => {
            let r = push::Reference::parse(p, &format!("v{}", release.version))?;
            let creds = push::credentials(o.creds.as_deref(), &r.registry)?;
            Some((r, creds))
        }
        None if o.creds.is_some() => bail!("--creds is for --push"),
        None => None,
    };
    let slug_id = release.slug.as_ref().map(|s| s.id.clone()).ok_or_else(|| {
        anyhow!(
            "v{} of {name} has no slug (nothing deployed yet)",
            release.version
        )
    })?;
    let slug = c
        .call(api::slugs::Info {
            app: name.clone(),
            slug: slug_id,
        })
        .await?;
    let config: BTreeMap<String, String> = c
        .call(api::releases::ConfigVarsOf {
            app: name.clone(),
            release: release.id.clone(),
        })
        .await?
        .into_iter()
        .collect();
    let formation: BTreeMap<String, u32> = c
        .call(api::formation::List { app: name.clone() })
        .await?
        .into_iter()
        .map(|f| (f.process_type, f.quantity))
        .collect();
    let mut addon_vars = BTreeMap::new();
    for a in c.call(api::addons::List { app: name.clone() }).await? {
        for att in a.attachments.iter().filter(|t| t.app.name == name) {
            addon_vars.insert(format!("{}_URL", att.name), a.name.clone());
        }
    }

    // The scheduler's jobs become CronJobs (an app without the scheduler add-on has none).
    let has_scheduler = c
        .call(api::addons::List { app: name.clone() })
        .await?
        .iter()
        .any(|a| a.addon_service.name == "scheduler");
    let cron_jobs = if has_scheduler {
        c.call(api::scheduler::List { app: name.clone() })
            .await?
            .into_iter()
            .map(|j| (j.id, j.schedule, j.command))
            .collect()
    } else {
        vec![]
    };

    let out = OutDir::create(
        &o.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{name}-k8s"))),
    )?;
    println!(
        "-----> Exporting {name} v{} (slug {}, stack {})",
        release.version,
        human_size(slug.size),
        slug.stack.name
    );

    // The slug, checked against its checksum: the image must hold exactly the released code.
    let tgz = out.work.join("slug.tgz");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tgz)?);
        c.download(&slug.blob.url, &mut f).await?;
        std::io::Write::flush(&mut f)?;
    }
    let sum = oci::file_digest(&tgz)?;
    if sum != slug.checksum {
        bail!(
            "the slug's tarball does not match its checksum ({sum} ≠ {})",
            slug.checksum
        );
    }

    let exe = std::env::current_exe()?;
    let cache = stack::cache_dir(&paths.home);
    let work = out.work.clone();
    let version = release.version;
    let app_name = name.clone();
    let (stack_layer, init, slug_layer) = tokio::task::spawn_blocking(move || -> Result<_> {
        let s = stack::ensure(&cache, &exe, &mut |m| println!("       {m}"))?;
        let init = export::init_layer(&exe, &work)?;
        let sl = export::slug_layer(
            &tgz,
            &work,
            &format!("dyno export: slug of {app_name} v{version}"),
        )?;
        Ok((s, init, sl))
    })
    .await??;
    println!(
        "       stack layer {} ({} unpacked, {}): {}",
        human_size(stack_layer.layer.blob.size),
        human_size(stack_layer.unpacked),
        if stack_layer.built { "built" } else { "cached" },
        stack_layer
            .runtimes
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The name the manifests run: the pushed one, else the one `podman load` gives it.
    let image_ref = match &target {
        Some((r, _)) => r.full(),
        None => format!("localhost/{name}:v{}", release.version),
    };
    let web_cmd = slug
        .process_types
        .iter()
        .find(|(t, _)| t == "web")
        .or_else(|| slug.process_types.first())
        .map(|(_, c)| c.clone());
    let mut labels = BTreeMap::new();
    labels.insert("org.opencontainers.image.title".into(), name.clone());
    labels.insert(
        "org.opencontainers.image.version".into(),
        format!("v{}", release.version),
    );
    labels.insert("dyno.app".into(), name.clone());
    labels.insert("dyno.release".into(), format!("v{}", release.version));
    labels.insert("dyno.slug".into(), slug.id.clone());
    labels.insert("dyno.stack".into(), slug.stack.name.clone());
    if let Some(c) = &slug.commit {
        labels.insert("org.opencontainers.image.revision".into(), c.clone());
    }
    let run = oci::RunConfig {
        user: format!("{}:{}", crate::runtime::DYNO_UID, crate::runtime::DYNO_GID),
        // No config var here: they go in the Secret/ConfigMap, never in the image.
        env: vec![
            "PATH=/app/bin:/usr/local/bin:/usr/bin:/bin".into(),
            "HOME=/app".into(),
            format!("PORT={}", kube::PORT),
        ],
        entrypoint: vec![export::INIT.into(), "init".into(), "--".into()],
        cmd: web_cmd.into_iter().collect(),
        working_dir: "/app".into(),
        exposed_ports: [(format!("{}/tcp", kube::PORT), serde_json::json!({}))].into(),
        labels,
        stop_signal: "SIGTERM".into(),
    };
    let image = oci::Image::new(
        vec![stack_layer.layer.clone(), init, slug_layer],
        &run,
        &release.created_at,
    )?;
    let archive = out.dir.join("image.oci.tar");
    image.write_archive(&archive, &image_ref)?;

    let app = kube::App {
        name: name.clone(),
        app_id: release.app.id.clone(),
        version: release.version,
        image: image_ref.clone(),
        commit: slug.commit.clone(),
        process_types: slug.process_types.clone(),
        formation,
        config,
        addon_vars,
        cron_jobs,
    };
    let write = |rel: &str, text: String, mode: u32| -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let p = out.dir.join(rel);
        std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    // The files holding config values are the user's alone, like `dyno config --shell` output.
    write("kubernetes.yaml", app.kubernetes_yaml(), 0o600)?;
    let release_yaml = app.release_yaml();
    let has_release = release_yaml.is_some();
    match release_yaml {
        Some(y) => write("release.yaml", y, 0o644)?,
        None => {
            let _ = std::fs::remove_file(out.dir.join("release.yaml"));
        }
    }
    write("podman/kube.yaml", app.podman_kube_yaml(), 0o644)?;
    write("podman/configmap.yaml", app.podman_configmap_yaml(), 0o600)?;

    let d = out.dir.display();
    let size = std::fs::metadata(&archive)?.len();
    println!(
        "       {d}/image.oci.tar           OCI image archive ({}, {image_ref}, {})",
        human_size(size),
        image.digest()
    );
    println!("       {d}/kubernetes.yaml         Deployments, Service, Secret (for a cluster)");
    if has_release {
        println!("       {d}/release.yaml            the release phase as a Job");
    }
    println!("       {d}/podman/kube.yaml        the same app for `podman kube play`");
    println!("       {d}/podman/configmap.yaml   its config for podman (--configmap)");
    if let Some((r, creds)) = target {
        print!("-----> Pushing {} ...", r.full());
        std::io::Write::flush(&mut std::io::stdout())?;
        let digest = push::push(&image, &r, creds).await?;
        println!(" done, {digest}");
    }
    println!("-----> Done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(0)
}
