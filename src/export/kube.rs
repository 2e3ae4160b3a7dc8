//! The Kubernetes manifests of an export: `kubernetes.yaml` (one Deployment per process type,
//! a Service for web, the config vars in a Secret, a CronJob per scheduler job), `release.yaml` (the release phase as a Job),
//! and the podman variant (`podman kube play` 4.3 ignores Job, CronJob and Service and cannot
//! take a Secret as env: its Deployments read a ConfigMap instead).

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The port every dyno listens on in the image (`PORT`); Heroku's local default.
pub const PORT: u16 = 5000;

/// What the manifests are made from: the release as the API describes it.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub app_id: String,
    pub version: u32,
    pub image: String,
    pub commit: Option<String>,
    /// (process type, command) in Procfile order.
    pub process_types: Vec<(String, String)>,
    /// process type → quantity.
    pub formation: BTreeMap<String, u32>,
    pub config: BTreeMap<String, String>,
    /// Config vars set by add-ons (→ their add-on's name), which are not exported.
    pub addon_vars: BTreeMap<String, String>,
    /// The scheduler's jobs: (id, 5-field schedule in UTC, command).
    pub cron_jobs: Vec<(u32, String, String)>,
}

impl App {
    fn labels(&self, ptype: Option<&str>) -> Value {
        let mut l = json!({
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/managed-by": "dyno",
        });
        if let Some(t) = ptype {
            l["dyno/process-type"] = json!(t);
        }
        l
    }

    fn config_name(&self) -> String {
        format!("{}-config", self.name)
    }

    /// `DYNO`-style env of a process type (as `daemon::launch` gives a dyno), without config vars.
    fn env(&self, ptype: &str, cluster: bool) -> Value {
        let dyno = if cluster {
            // A pod of a Deployment has no index: its name keeps `web.` first and unique.
            json!([
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "DYNO", "value": format!("{ptype}.$(POD_NAME)")},
            ])
        } else {
            // podman runs one pod per Deployment and does not expand `$(VAR)`.
            json!([{"name": "DYNO", "value": format!("{ptype}.1")}])
        };
        let mut env = dyno.as_array().cloned().unwrap_or_default();
        env.extend([
            json!({"name": "PORT", "value": PORT.to_string()}),
            json!({"name": "HOME", "value": "/app"}),
            json!({"name": "PATH", "value": "/app/bin:/usr/local/bin:/usr/bin:/bin"}),
            json!({"name": "HEROKU_APP_ID", "value": self.app_id}),
            json!({"name": "HEROKU_APP_NAME", "value": self.name}),
            json!({"name": "HEROKU_RELEASE_VERSION", "value": format!("v{}", self.version)}),
        ]);
        if let Some(c) = &self.commit {
            env.push(json!({"name": "HEROKU_SLUG_COMMIT", "value": c}));
        }
        Value::Array(env)
    }

    /// `cluster`: for Kubernetes (probes, the port declared); else for podman 4.3, which
    /// publishes a declared `containerPort` on the host (two apps would fight over 5000).
    fn container(&self, ptype: &str, command: &str, env_from: Value, cluster: bool) -> Value {
        let mut c = json!({
            "name": k8s_name(ptype),
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            // The image's entrypoint is dyno's init (`.profile.d`, signals); the Procfile command
            // is its argument.
            "args": [command],
            "env": self.env(ptype, cluster),
            "envFrom": [env_from],
            // A dyno's size: 512 MB quota, killed at 1 GB (R15).
            "resources": {
                "requests": {"memory": "512Mi"},
                "limits": {"memory": "1Gi"},
            },
        });
        if ptype == "web" && cluster {
            c["ports"] = json!([{"name": "http", "containerPort": PORT, "protocol": "TCP"}]);
            // Heroku's boot timeout (R10): 60 s for the port to accept connections.
            c["startupProbe"] =
                json!({"tcpSocket": {"port": PORT}, "periodSeconds": 5, "failureThreshold": 12});
            c["readinessProbe"] = json!({"tcpSocket": {"port": PORT}, "periodSeconds": 5});
            c["livenessProbe"] =
                json!({"tcpSocket": {"port": PORT}, "periodSeconds": 10, "failureThreshold": 3});
        }
        c
    }

    fn deployment(&self, ptype: &str, command: &str, env_from: Value, cluster: bool) -> Value {
        let name = format!("{}-{}", self.name, k8s_name(ptype));
        let replicas = self.formation.get(ptype).copied().unwrap_or(0);
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "labels": self.labels(Some(ptype)),
                "annotations": {"dyno/release": format!("v{}", self.version)},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": self.labels(Some(ptype))},
                "template": {
                    "metadata": {"labels": self.labels(Some(ptype))},
                    "spec": {
                        // Heroku's stop: SIGTERM, then SIGKILL after 30 s.
                        "terminationGracePeriodSeconds": 30,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": crate::runtime::DYNO_UID, "runAsGroup": crate::runtime::DYNO_GID},
                        "containers": [self.container(ptype, command, env_from, cluster)],
                    },
                },
            },
        })
    }

    /// The process types that run as Deployments (the release phase is a Job).
    fn running_types(&self) -> impl Iterator<Item = &(String, String)> {
        self.process_types.iter().filter(|(t, _)| t != "release")
    }

    fn secret_ref(&self) -> Value {
        json!({"secretRef": {"name": self.config_name()}})
    }

    fn configmap_ref(&self) -> Value {
        json!({"configMapRef": {"name": self.config_name()}})
    }

    /// The header comment of a config document: which keys come from add-ons.
    fn addon_comment(&self) -> String {
        let mut s = String::new();
        for (k, addon) in &self.addon_vars {
            if self.config.contains_key(k) {
                s.push_str(&format!(
                    "# {k} was set by the add-on {addon}. Add-ons are not exported: it still \
                     points at this machine; set it to your cluster's service.\n"
                ));
            }
        }
        s
    }

    /// `kubernetes.yaml`: the Secret, a Deployment per process type, the web Service.
    pub fn kubernetes_yaml(&self) -> String {
        let mut docs = vec![];
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.config_name(), "labels": self.labels(None)},
            "type": "Opaque",
            "stringData": self.config,
        });
        docs.push(format!(
            "# The config vars of {} v{}: kept out of the image.\n{}{}",
            self.name,
            self.version,
            self.addon_comment(),
            yaml(&secret)
        ));
        for (t, cmd) in self.running_types() {
            docs.push(yaml(&self.deployment(t, cmd, self.secret_ref(), true)));
        }
        if self.process_types.iter().any(|(t, _)| t == "web") {
            let svc = json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": format!("{}-web", self.name), "labels": self.labels(Some("web"))},
                "spec": {
                    "selector": self.labels(Some("web")),
                    "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
                },
            });
            docs.push(yaml(&svc));
        }
        for (id, schedule, cmd) in &self.cron_jobs {
            docs.push(yaml(&self.cron_job(*id, schedule, cmd)));
        }
        docs.join("---\n")
    }

    /// A scheduler job as a CronJob: the same schedule in UTC (as Heroku Scheduler's and dyno's),
    /// a run skipped while the previous one still runs (dyno's choice too), one try per run.
    fn cron_job(&self, id: u32, schedule: &str, cmd: &str) -> Value {
        let mut c = self.container("scheduler", cmd, self.secret_ref(), true);
        c["name"] = json!("scheduler");
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {
                "name": format!("{}-scheduler-{id}", self.name),
                "labels": self.labels(Some("scheduler")),
            },
            "spec": {
                "schedule": schedule,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"labels": self.labels(Some("scheduler"))},
                            "spec": {
                                "restartPolicy": "Never",
                                "securityContext": {"runAsNonRoot": true, "runAsUser": crate::runtime::DYNO_UID, "runAsGroup": crate::runtime::DYNO_GID},
                                "containers": [c],
                            },
                        },
                    },
                },
            },
        })
    }

    /// `release.yaml`: the release phase as a Job (None when the Procfile has no `release`).
    pub fn release_yaml(&self) -> Option<String> {
        let (_, cmd) = self.process_types.iter().find(|(t, _)| t == "release")?;
        let mut c = self.container("release", cmd, self.secret_ref(), true);
        c["name"] = json!("release");
        let job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": format!("{}-release-v{}", self.name, self.version),
                "labels": self.labels(Some("release")),
            },
            "spec": {
                // A failed release phase fails the release, once (Heroku does not retry it).
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": self.labels(Some("release"))},
                    "spec": {
                        "restartPolicy": "Never",
                        "securityContext": {"runAsNonRoot": true, "runAsUser": crate::runtime::DYNO_UID, "runAsGroup": crate::runtime::DYNO_GID},
                        "containers": [c],
                    },
                },
            },
        });
        Some(format!(
            "# The release phase of {} v{}: apply, wait for it to complete, then apply\n\
             # kubernetes.yaml (a single apply cannot order them).\n{}",
            self.name,
            self.version,
            yaml(&job)
        ))
    }

    /// `podman/kube.yaml`: the Deployments of the types the formation runs, config from the
    /// ConfigMap; no Service, no Job (podman 4.3 ignores them).
    pub fn podman_kube_yaml(&self) -> String {
        let docs: Vec<String> = self
            .running_types()
            .filter(|(t, _)| self.formation.get(t).copied().unwrap_or(0) > 0)
            .map(|(t, cmd)| {
                let mut d = self.deployment(t, cmd, self.configmap_ref(), false);
                // podman runs one pod per Deployment.
                d["spec"]["replicas"] = json!(1);
                yaml(&d)
            })
            .collect();
        format!(
            "# For `podman kube play --configmap configmap.yaml kube.yaml`; the release phase is\n\
             # `podman run` of the image with the release command.\n{}",
            docs.join("---\n")
        )
    }

    /// `podman/configmap.yaml`: the config vars for podman, which cannot read a Secret as env.
    pub fn podman_configmap_yaml(&self) -> String {
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.config_name(), "labels": self.labels(None)},
            "data": self.config,
        });
        format!(
            "# The config vars of {} v{} (secrets: keep this file private).\n{}{}",
            self.name,
            self.version,
            self.addon_comment(),
            yaml(&cm)
        )
    }
}

fn yaml(v: &Value) -> String {
    serde_norway::to_string(v).unwrap_or_default()
}

/// A process type as a DNS-1123 label (`worker_high` → `worker-high`).
pub fn k8s_name(ptype: &str) -> String {
    let s: String = ptype
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App {
            name: "shop".into(),
            app_id: "id".into(),
            version: 3,
            image: "localhost/shop:v3".into(),
            commit: None,
            process_types: vec![
                ("web".into(), "python3 app.py".into()),
                ("worker_high".into(), "python3 w.py".into()),
                ("release".into(), "python3 migrate.py".into()),
            ],
            formation: [("web".into(), 2), ("worker_high".into(), 0)].into(),
            config: [
                ("GREETING".into(), "hi".into()),
                ("DATABASE_URL".into(), "postgres://x".into()),
            ]
            .into(),
            addon_vars: [("DATABASE_URL".into(), "postgresql-curved-1".into())].into(),
            cron_jobs: vec![(2, "*/10 * * * *".into(), "python3 digest.py".into())],
        }
    }

    #[test]
    fn scheduler_jobs_become_cron_jobs() {
        let docs: Vec<Value> = app()
            .kubernetes_yaml()
            .split("---\n")
            .map(|d| serde_norway::from_str(d).unwrap())
            .collect();
        let cj = docs.iter().find(|d| d["kind"] == "CronJob").unwrap();
        assert_eq!(cj["metadata"]["name"], "shop-scheduler-2");
        assert_eq!(cj["spec"]["schedule"], "*/10 * * * *");
        assert_eq!(cj["spec"]["timeZone"], "Etc/UTC");
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid");
        let c = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"][0], "python3 digest.py");
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "shop-config");
        assert!(c.get("ports").is_none() && c.get("startupProbe").is_none());
    }

    #[test]
    fn config_stays_in_the_secret_and_types_become_deployments() {
        let a = app();
        let k = a.kubernetes_yaml();
        let docs: Vec<Value> = k
            .split("---\n")
            .map(|d| serde_norway::from_str(d).unwrap())
            .collect();
        assert_eq!(docs[0]["kind"], "Secret");
        assert_eq!(docs[0]["stringData"]["GREETING"], "hi");
        assert!(k.contains("# DATABASE_URL was set by the add-on postgresql-curved-1"));
        // The value appears once: in the Secret, nowhere in the Deployments.
        assert_eq!(k.matches("hi\n").count(), 1, "{k}");
        let web = &docs[1];
        assert_eq!(web["metadata"]["name"], "shop-web");
        assert_eq!(web["spec"]["replicas"], 2);
        let c = &web["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"][0], "python3 app.py");
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "shop-config");
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
        assert!(c["readinessProbe"].is_object());
        assert_eq!(docs[2]["metadata"]["name"], "shop-worker-high");
        assert_eq!(docs[2]["spec"]["replicas"], 0);
        assert_eq!(docs[3]["kind"], "Service");
        assert_eq!(docs[4]["kind"], "CronJob");
        assert_eq!(docs.len(), 5, "no Deployment for the release phase");
        let job: Value = serde_norway::from_str(&a.release_yaml().unwrap()).unwrap();
        assert_eq!(job["kind"], "Job");
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["args"][0],
            "python3 migrate.py"
        );
        // podman: only what the formation runs, config from the ConfigMap.
        let p = a.podman_kube_yaml();
        assert!(p.contains("configMapRef") && !p.contains("secretRef"));
        assert!(
            p.contains("value: web.1") && !p.contains("containerPort"),
            "{p}"
        );
        assert!(!p.contains("worker-high"));
        assert!(a.podman_configmap_yaml().contains("GREETING: hi"));
    }

    #[test]
    fn process_types_become_dns_labels() {
        assert_eq!(k8s_name("worker_high"), "worker-high");
        assert_eq!(k8s_name("Web"), "web");
    }
}
