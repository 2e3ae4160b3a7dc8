//! The daemon's state: one SQLite database in `DYNO_HOME`, with schema migrations.
//!
//! Only the daemon opens it. The release ledger is append-only: triggers refuse any change to a
//! release other than its status going once from `pending` to `succeeded`/`failed`, and refuse
//! deleting a release while its app exists.

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

mod addons;
mod routing;
mod scheduler;
pub use addons::{AddonOp, AddonRow, AttachmentRow};
pub use routing::{DomainRow, DrainRow};
pub use scheduler::JobRow;

/// Each entry moves the schema one version up; `PRAGMA user_version` records where a db is.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE dirs (
    dir TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE
);
CREATE TABLE slugs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    checksum TEXT NOT NULL,
    size INTEGER NOT NULL,
    process_types TEXT NOT NULL,
    source_version TEXT,
    buildpack TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    slug_id TEXT REFERENCES slugs(id),
    config TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (app_id, version)
);
CREATE TRIGGER releases_append_only BEFORE UPDATE ON releases
WHEN OLD.status != 'pending' OR NEW.status = 'pending'
  OR NEW.id IS NOT OLD.id OR NEW.app_id IS NOT OLD.app_id OR NEW.version IS NOT OLD.version
  OR NEW.slug_id IS NOT OLD.slug_id OR NEW.config IS NOT OLD.config
  OR NEW.description IS NOT OLD.description OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'releases are append-only'); END;
CREATE TRIGGER releases_kept BEFORE DELETE ON releases
WHEN EXISTS (SELECT 1 FROM apps WHERE id = OLD.app_id)
BEGIN SELECT RAISE(ABORT, 'releases are append-only'); END;
CREATE TABLE formation (
    id TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    command TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, type)
);
CREATE TABLE config_vars (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (app_id, key)
);
CREATE TABLE builds (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    source_dir TEXT NOT NULL,
    source_version TEXT,
    buildpack TEXT,
    slug_id TEXT,
    release_id TEXT,
    error TEXT,
    output TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#,
    // 2: the output of each release's release phase (`releases:output`).
    r#"
CREATE TABLE release_outputs (
    release_id TEXT PRIMARY KEY REFERENCES releases(id) ON DELETE CASCADE,
    output TEXT NOT NULL
);
"#,
    // Router and Logplex (issue 5): custom domains, log drains, idling. Idempotent, so the
    // entry can move in the list when branches merge.
    r#"
CREATE TABLE IF NOT EXISTS domains (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    hostname TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drains (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (app_id, url)
);
CREATE TABLE IF NOT EXISTS app_idling (
    app_id TEXT PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL
);
"#,
    // 4: buildpacks per app (`buildpacks:set`), and what a build ran and produced.
    r#"
CREATE TABLE app_buildpacks (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (app_id, ordinal)
);
ALTER TABLE builds ADD COLUMN buildpacks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE builds ADD COLUMN slug_size INTEGER;
ALTER TABLE builds ADD COLUMN dirty INTEGER NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN addons TEXT NOT NULL DEFAULT '[]';
"#,
    // 5: an app's web dynos stay idled across daemon restarts.
    r#"
ALTER TABLE app_idling ADD COLUMN idled INTEGER NOT NULL DEFAULT 0;
"#,
    // 6: add-ons (heroku-postgresql, heroku-redis), their attachments to apps, and the add-on
    // plans each release had attached (part of the append-only ledger).
    r#"
CREATE TABLE addons (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    plan TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('provisioning', 'provisioned')),
    port INTEGER NOT NULL,
    password TEXT NOT NULL,
    database TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE addon_attachments (
    id TEXT PRIMARY KEY,
    addon_id TEXT NOT NULL REFERENCES addons(id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (app_id, name)
);
ALTER TABLE releases ADD COLUMN addons TEXT NOT NULL DEFAULT '[]';
DROP TRIGGER releases_append_only;
CREATE TRIGGER releases_append_only BEFORE UPDATE ON releases
WHEN OLD.status != 'pending' OR NEW.status = 'pending'
  OR NEW.id IS NOT OLD.id OR NEW.app_id IS NOT OLD.app_id OR NEW.version IS NOT OLD.version
  OR NEW.slug_id IS NOT OLD.slug_id OR NEW.config IS NOT OLD.config
  OR NEW.description IS NOT OLD.description OR NEW.created_at IS NOT OLD.created_at
  OR NEW.addons IS NOT OLD.addons
BEGIN SELECT RAISE(ABORT, 'releases are append-only'); END;
"#,
    // 7: the scheduler's jobs (numbered per app; they go with the app).
    r#"
CREATE TABLE scheduler_jobs (
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    num INTEGER NOT NULL,
    schedule TEXT NOT NULL,
    command TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, num)
);
"#,
];

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random UUID (v4 layout), as Heroku's ids are.
pub fn new_id() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct SlugRow {
    pub id: String,
    pub checksum: String,
    pub size: u64,
    /// (type, command) in Procfile order.
    pub process_types: Vec<(String, String)>,
    pub source_version: Option<String>,
    pub buildpack: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReleaseRow {
    pub id: String,
    pub app_id: String,
    pub version: u32,
    pub slug_id: Option<String>,
    pub config: Vec<(String, String)>,
    pub description: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    /// The add-on plans attached to the app when the release was made.
    pub addons: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FormationRow {
    pub id: String,
    pub process_type: String,
    pub command: String,
    pub quantity: u32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct BuildRow {
    pub id: String,
    pub app_id: String,
    pub status: String,
    /// The directory built, or `git:<repo>` for a push.
    pub source_dir: String,
    pub source_version: Option<String>,
    /// What the last buildpack's `bin/detect` called the app (`Python`).
    pub buildpack: Option<String>,
    /// The buildpacks that ran, as written (`python`, `file:///bp.git#v2`).
    pub buildpacks: Vec<String>,
    pub slug_size: Option<u64>,
    /// The source had uncommitted changes.
    pub dirty: bool,
    /// Add-on plans `bin/release` asked for.
    pub addons: Vec<String>,
    pub slug_id: Option<String>,
    pub release_id: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        Self::from_conn(conn)
    }

    #[cfg(test)]
    pub fn memory() -> Result<Store> {
        Self::from_conn(Connection::open_in_memory()?)
    }

    fn from_conn(mut conn: Connection) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            bail!(
                "the database was written by a newer dyno (schema {version}, this one knows {}): upgrade dyno",
                MIGRATIONS.len()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)
                .with_context(|| format!("schema migration {}", i + 1))?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- apps ----

    pub fn create_app(&self, name: &str) -> Result<AppRow> {
        let t = now();
        let row = AppRow {
            id: new_id(),
            name: name.to_string(),
            created_at: t.clone(),
            updated_at: t,
        };
        self.conn().execute(
            "INSERT INTO apps (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?4)",
            params![row.id, row.name, row.created_at, row.updated_at],
        )?;
        Ok(row)
    }

    /// By name or id.
    pub fn app(&self, key: &str) -> Result<Option<AppRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, created_at, updated_at FROM apps WHERE name = ?1 OR id = ?1",
                [key],
                |r| {
                    Ok(AppRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn apps(&self) -> Result<Vec<AppRow>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT id, name, created_at, updated_at FROM apps ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(AppRow {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                updated_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn rename_app(&self, id: &str, new_name: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE apps SET name = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, new_name, now()],
        )?;
        Ok(())
    }

    pub fn delete_app(&self, id: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM apps WHERE id = ?1", [id])?;
        // The app is gone, so the append-only guard lets its ledger go with it.
        tx.execute("DELETE FROM releases WHERE app_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    // ---- directories ----

    pub fn set_dir_app(&self, dir: &str, app_id: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO dirs (dir, app_id) VALUES (?1, ?2) ON CONFLICT(dir) DO UPDATE SET app_id = ?2",
            params![dir, app_id],
        )?;
        Ok(())
    }

    pub fn dir_app(&self, dir: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT apps.name FROM dirs JOIN apps ON apps.id = dirs.app_id WHERE dir = ?1",
                [dir],
                |r| r.get(0),
            )
            .optional()?)
    }

    // ---- config vars ----

    pub fn config_vars(&self, app_id: &str) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT key, value FROM config_vars WHERE app_id = ?1 ORDER BY key")?;
        let rows = st.query_map([app_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Appends a release whose config becomes the app's config vars, both in one transaction
    /// (a config change or a rollback is recorded completely or not at all).
    pub fn create_release_with_config(
        &self,
        app_id: &str,
        slug_id: Option<&str>,
        config: &[(String, String)],
        description: &str,
        status: &str,
        addon_op: Option<&AddonOp>,
    ) -> Result<ReleaseRow> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(op) = addon_op {
            addons::apply(&tx, op)?;
        }
        tx.execute("DELETE FROM config_vars WHERE app_id = ?1", [app_id])?;
        for (k, v) in config {
            tx.execute(
                "INSERT INTO config_vars (app_id, key, value) VALUES (?1, ?2, ?3)",
                params![app_id, k, v],
            )?;
        }
        let row = insert_release(&tx, app_id, slug_id, config, description, status)?;
        tx.commit()?;
        Ok(row)
    }

    // ---- slugs ----

    pub fn insert_slug(&self, app_id: &str, slug: &SlugRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO slugs (id, app_id, checksum, size, process_types, source_version, buildpack, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                slug.id,
                app_id,
                slug.checksum,
                slug.size as i64,
                serde_json::to_string(&slug.process_types)?,
                slug.source_version,
                slug.buildpack,
                now()
            ],
        )?;
        Ok(())
    }

    pub fn slug(&self, id: &str) -> Result<Option<SlugRow>> {
        let row = self
            .conn()
            .query_row(
                "SELECT id, checksum, size, process_types, source_version, buildpack FROM slugs WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, checksum, size, pt, source_version, buildpack)| {
            Ok(SlugRow {
                id,
                checksum,
                size: size as u64,
                process_types: serde_json::from_str(&pt)?,
                source_version,
                buildpack,
            })
        })
        .transpose()
    }

    /// Checksums of slugs recorded after `since` (RFC 3339) that no release refers to yet: deploys
    /// between storing their slug and recording their release (the collector leaves them).
    pub fn unreleased_slug_checksums(&self, since: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT DISTINCT checksum FROM slugs s WHERE s.created_at > ?1
             AND NOT EXISTS (SELECT 1 FROM releases r WHERE r.slug_id = s.id)",
        )?;
        let rows = st.query_map([since], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether any slug row has this checksum (hex, with or without `SHA256:`).
    pub fn slug_checksum_known(&self, sum: &str) -> Result<bool> {
        let sum = sum.trim_start_matches("SHA256:");
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM slugs WHERE checksum = ?1 OR checksum = ?2",
            [sum.to_string(), format!("SHA256:{sum}")],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    // ---- releases ----

    /// Appends a release numbered one past the app's last. Status `succeeded` unless a release
    /// phase has to run first.
    pub fn create_release(
        &self,
        app_id: &str,
        slug_id: Option<&str>,
        config: &[(String, String)],
        description: &str,
        status: &str,
    ) -> Result<ReleaseRow> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let row = insert_release(&tx, app_id, slug_id, config, description, status)?;
        tx.commit()?;
        Ok(row)
    }

    /// The one change a release ever sees: `pending` → `succeeded` or `failed`.
    pub fn set_release_status(&self, id: &str, status: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE releases SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, status, now()],
        )?;
        Ok(())
    }

    /// Releases of every app still `pending` (their release phase died with a daemon).
    pub fn pending_releases(&self) -> Result<Vec<(String, String, u32)>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, app_id, version FROM releases WHERE status = 'pending' ORDER BY version",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A release by version number (`3`, `v3`) or id.
    pub fn release(&self, app_id: &str, key: &str) -> Result<Option<ReleaseRow>> {
        let version: Option<u32> = key.trim_start_matches(['v', 'V']).parse().ok();
        Ok(self
            .releases(app_id)?
            .into_iter()
            .find(|r| r.id == key || Some(r.version) == version))
    }

    pub fn set_release_output(&self, release_id: &str, output: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO release_outputs (release_id, output) VALUES (?1, ?2)
             ON CONFLICT(release_id) DO UPDATE SET output = ?2",
            params![release_id, output],
        )?;
        Ok(())
    }

    pub fn release_output(&self, release_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT output FROM release_outputs WHERE release_id = ?1",
                [release_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn releases(&self, app_id: &str) -> Result<Vec<ReleaseRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, app_id, version, slug_id, config, description, status, created_at, updated_at, addons
             FROM releases WHERE app_id = ?1 ORDER BY version",
        )?;
        let rows = st.query_map([app_id], |r| {
            Ok((
                ReleaseRow {
                    id: r.get(0)?,
                    app_id: r.get(1)?,
                    version: r.get(2)?,
                    slug_id: r.get(3)?,
                    config: vec![],
                    description: r.get(5)?,
                    status: r.get(6)?,
                    created_at: r.get(7)?,
                    updated_at: r.get(8)?,
                    addons: vec![],
                },
                r.get::<_, String>(4)?,
                r.get::<_, String>(9)?,
            ))
        })?;
        let mut out = vec![];
        for row in rows {
            let (mut rel, config, addons) = row?;
            rel.config = serde_json::from_str(&config)?;
            rel.addons = serde_json::from_str(&addons)?;
            out.push(rel);
        }
        Ok(out)
    }

    /// The newest succeeded release: the one dynos run.
    pub fn current_release(&self, app_id: &str) -> Result<Option<ReleaseRow>> {
        Ok(self
            .releases(app_id)?
            .into_iter()
            .rev()
            .find(|r| r.status == "succeeded"))
    }

    // ---- formation ----

    pub fn formation(&self, app_id: &str) -> Result<Vec<FormationRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, type, command, quantity, created_at, updated_at FROM formation
             WHERE app_id = ?1 ORDER BY CASE type WHEN 'web' THEN 0 ELSE 1 END, type",
        )?;
        let rows = st.query_map([app_id], |r| {
            Ok(FormationRow {
                id: r.get(0)?,
                process_type: r.get(1)?,
                command: r.get(2)?,
                quantity: r.get(3)?,
                created_at: r.get(4)?,
                updated_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Makes the formation match a new release's process types: new types get `web`=1 on the
    /// app's first deploy and 0 otherwise, known types keep their count and take the new
    /// command, types the release no longer has are scaled away. `release` is never scaled.
    pub fn sync_formation(&self, app_id: &str, types: &[(String, String)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let first_deploy: bool = tx.query_row(
            "SELECT COUNT(*) = 0 FROM formation WHERE app_id = ?1",
            [app_id],
            |r| r.get(0),
        )?;
        let t = now();
        let types: Vec<_> = types.iter().filter(|(n, _)| n != "release").collect();
        for (name, command) in &types {
            let quantity = u32::from(first_deploy && name == "web");
            tx.execute(
                "INSERT INTO formation (id, app_id, type, command, quantity, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT(app_id, type) DO UPDATE SET command = ?4, updated_at = ?6",
                params![new_id(), app_id, name, command, quantity, t],
            )?;
        }
        let keep: Vec<&str> = types.iter().map(|(n, _)| n.as_str()).collect();
        let existing: Vec<String> = {
            let mut st = tx.prepare("SELECT type FROM formation WHERE app_id = ?1")?;
            let rows = st.query_map([app_id], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for name in existing.iter().filter(|n| !keep.contains(&n.as_str())) {
            tx.execute(
                "DELETE FROM formation WHERE app_id = ?1 AND type = ?2",
                params![app_id, name],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets quantities; all or nothing. Unknown types are an error naming them.
    pub fn scale(&self, app_id: &str, updates: &[(String, u32)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let t = now();
        for (name, quantity) in updates {
            let n = tx.execute(
                "UPDATE formation SET quantity = ?3, updated_at = ?4 WHERE app_id = ?1 AND type = ?2",
                params![app_id, name, quantity, t],
            )?;
            if n == 0 {
                bail!("no such process type {name:?}");
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ---- builds ----

    pub fn create_build(&self, app_id: &str, source_dir: &str) -> Result<BuildRow> {
        let t = now();
        let row = BuildRow {
            id: new_id(),
            app_id: app_id.to_string(),
            status: "pending".into(),
            source_dir: source_dir.to_string(),
            source_version: None,
            buildpack: None,
            buildpacks: vec![],
            slug_size: None,
            dirty: false,
            addons: vec![],
            slug_id: None,
            release_id: None,
            error: None,
            created_at: t.clone(),
            updated_at: t,
        };
        self.conn().execute(
            "INSERT INTO builds (id, app_id, status, source_dir, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![row.id, row.app_id, row.status, row.source_dir, row.created_at],
        )?;
        Ok(row)
    }

    pub fn finish_build(&self, b: &BuildRow, output: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE builds SET status = ?2, source_version = ?3, buildpack = ?4, slug_id = ?5,
             release_id = ?6, error = ?7, output = ?8, updated_at = ?9, buildpacks = ?10,
             slug_size = ?11, dirty = ?12, addons = ?13 WHERE id = ?1",
            params![
                b.id,
                b.status,
                b.source_version,
                b.buildpack,
                b.slug_id,
                b.release_id,
                b.error,
                output,
                now(),
                serde_json::to_string(&b.buildpacks)?,
                b.slug_size.map(|s| s as i64),
                b.dirty,
                serde_json::to_string(&b.addons)?,
            ],
        )?;
        Ok(())
    }

    const BUILD_COLUMNS: &'static str = "id, app_id, status, source_dir, source_version, buildpack, slug_id, release_id, error, created_at, updated_at, buildpacks, slug_size, dirty, addons";

    fn build_row(r: &rusqlite::Row) -> rusqlite::Result<BuildRow> {
        let json = |i: usize| -> rusqlite::Result<Vec<String>> {
            let t: String = r.get(i)?;
            Ok(serde_json::from_str(&t).unwrap_or_default())
        };
        Ok(BuildRow {
            id: r.get(0)?,
            app_id: r.get(1)?,
            status: r.get(2)?,
            source_dir: r.get(3)?,
            source_version: r.get(4)?,
            buildpack: r.get(5)?,
            slug_id: r.get(6)?,
            release_id: r.get(7)?,
            error: r.get(8)?,
            created_at: r.get(9)?,
            updated_at: r.get(10)?,
            buildpacks: json(11)?,
            slug_size: r.get::<_, Option<i64>>(12)?.map(|s| s as u64),
            dirty: r.get(13)?,
            addons: json(14)?,
        })
    }

    pub fn build(&self, id: &str) -> Result<Option<BuildRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {} FROM builds WHERE id = ?1", Self::BUILD_COLUMNS),
                [id],
                Self::build_row,
            )
            .optional()?)
    }

    /// The app's builds, oldest first.
    pub fn builds(&self, app_id: &str) -> Result<Vec<BuildRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {} FROM builds WHERE app_id = ?1 ORDER BY created_at, rowid",
            Self::BUILD_COLUMNS
        ))?;
        let rows = st.query_map([app_id], Self::build_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The output a finished build left.
    pub fn build_output(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT output FROM builds WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Builds a previous daemon left unfinished (it stopped or died meanwhile): failed.
    pub fn fail_unfinished_builds(&self) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE builds SET status = 'failed', error = 'the daemon stopped during the build',
             updated_at = ?1 WHERE status = 'pending'",
            [now()],
        )?)
    }

    // ---- buildpacks ----

    /// The app's buildpacks (`buildpacks:set`), in order.
    pub fn app_buildpacks(&self, app_id: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT url FROM app_buildpacks WHERE app_id = ?1 ORDER BY ordinal")?;
        let rows = st.query_map([app_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the app's buildpacks (empty clears them).
    pub fn set_app_buildpacks(&self, app_id: &str, urls: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM app_buildpacks WHERE app_id = ?1", [app_id])?;
        for (i, u) in urls.iter().enumerate() {
            tx.execute(
                "INSERT INTO app_buildpacks (app_id, ordinal, url) VALUES (?1, ?2, ?3)",
                params![app_id, i as i64, u],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Inserts a release numbered one past the app's last, inside the caller's transaction.
fn insert_release(
    tx: &rusqlite::Transaction<'_>,
    app_id: &str,
    slug_id: Option<&str>,
    config: &[(String, String)],
    description: &str,
    status: &str,
) -> Result<ReleaseRow> {
    let version: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app_id = ?1",
        [app_id],
        |r| r.get(0),
    )?;
    let t = now();
    let row = ReleaseRow {
        id: new_id(),
        app_id: app_id.to_string(),
        version,
        slug_id: slug_id.map(str::to_string),
        config: config.to_vec(),
        description: description.to_string(),
        status: status.to_string(),
        created_at: t.clone(),
        updated_at: t,
        addons: addons::plans_attached(tx, app_id)?,
    };
    tx.execute(
        "INSERT INTO releases (id, app_id, version, slug_id, config, description, status, created_at, updated_at, addons)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            row.id,
            row.app_id,
            row.version,
            row.slug_id,
            serde_json::to_string(&row.config)?,
            row.description,
            row.status,
            row.created_at,
            row.updated_at,
            serde_json::to_string(&row.addons)?
        ],
    )?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::config::validate_key as validate_config_key;

    fn store_with_app() -> (Store, AppRow) {
        let s = Store::memory().unwrap();
        let a = s.create_app("hello").unwrap();
        (s, a)
    }

    #[test]
    fn app_names_are_unique_and_renamable() {
        let (s, a) = store_with_app();
        assert!(s.create_app("hello").is_err());
        s.rename_app(&a.id, "world").unwrap();
        assert!(s.app("hello").unwrap().is_none());
        assert_eq!(s.app("world").unwrap().unwrap().id, a.id);
        assert_eq!(s.app(&a.id).unwrap().unwrap().name, "world");
    }

    #[test]
    fn releases_are_numbered_and_append_only() {
        let (s, a) = store_with_app();
        let r1 = s
            .create_release(&a.id, None, &[], "Initial", "succeeded")
            .unwrap();
        let r2 = s
            .create_release(&a.id, None, &[("A".into(), "b".into())], "Set A", "pending")
            .unwrap();
        assert_eq!((r1.version, r2.version), (1, 2));
        let conn = s.conn();
        // a succeeded release never changes
        assert!(conn
            .execute(
                "UPDATE releases SET status = 'failed' WHERE id = ?1",
                [&r1.id]
            )
            .is_err());
        assert!(conn
            .execute(
                "UPDATE releases SET description = 'x' WHERE id = ?1",
                [&r2.id]
            )
            .is_err());
        // pending → succeeded once
        conn.execute(
            "UPDATE releases SET status = 'succeeded' WHERE id = ?1",
            [&r2.id],
        )
        .unwrap();
        assert!(conn
            .execute(
                "UPDATE releases SET status = 'failed' WHERE id = ?1",
                [&r2.id]
            )
            .is_err());
        assert!(conn
            .execute("DELETE FROM releases WHERE id = ?1", [&r1.id])
            .is_err());
        drop(conn);
        assert_eq!(s.current_release(&a.id).unwrap().unwrap().version, 2);
        assert_eq!(
            s.releases(&a.id).unwrap()[1].config,
            vec![("A".into(), "b".into())]
        );
        // destroying the app takes its ledger with it
        s.delete_app(&a.id).unwrap();
        assert!(s.releases(&a.id).unwrap().is_empty());
    }

    #[test]
    fn formation_follows_process_types() {
        let (s, a) = store_with_app();
        let types = |v: &[&str]| -> Vec<(String, String)> {
            v.iter()
                .map(|n| (n.to_string(), format!("run {n}")))
                .collect()
        };
        s.sync_formation(&a.id, &types(&["web", "worker", "release"]))
            .unwrap();
        let f = s.formation(&a.id).unwrap();
        let q: Vec<_> = f
            .iter()
            .map(|r| (r.process_type.as_str(), r.quantity))
            .collect();
        assert_eq!(q, vec![("web", 1), ("worker", 0)]);
        s.scale(&a.id, &[("web".into(), 3), ("worker".into(), 2)])
            .unwrap();
        assert!(s
            .scale(&a.id, &[("web".into(), 1), ("nope".into(), 1)])
            .is_err());
        s.sync_formation(&a.id, &types(&["web", "clock"])).unwrap();
        let f = s.formation(&a.id).unwrap();
        let q: Vec<_> = f
            .iter()
            .map(|r| (r.process_type.as_str(), r.quantity))
            .collect();
        assert_eq!(q, vec![("web", 3), ("clock", 0)]);
    }

    #[test]
    fn migrations_are_idempotent_and_refuse_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        Store::open(&p).unwrap().create_app("abc").unwrap();
        assert!(Store::open(&p).unwrap().app("abc").unwrap().is_some());
        Connection::open(&p)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = Store::open(&p).err().unwrap().to_string();
        assert!(e.contains("newer dyno"), "{e}");
    }

    #[test]
    fn buildpacks_and_builds_are_recorded() {
        let (s, a) = store_with_app();
        assert!(s.app_buildpacks(&a.id).unwrap().is_empty());
        s.set_app_buildpacks(&a.id, &["nodejs".into(), "python".into()])
            .unwrap();
        assert_eq!(s.app_buildpacks(&a.id).unwrap(), vec!["nodejs", "python"]);
        s.set_app_buildpacks(&a.id, &[]).unwrap();
        assert!(s.app_buildpacks(&a.id).unwrap().is_empty());

        let mut b = s.create_build(&a.id, "/src/x").unwrap();
        let pending = s.create_build(&a.id, "/src/x").unwrap();
        b.status = "succeeded".into();
        b.buildpacks = vec!["python".into()];
        b.slug_size = Some(1234);
        b.dirty = true;
        b.addons = vec!["heroku-postgresql".into()];
        s.finish_build(&b, "-----> done\n").unwrap();
        let got = s.build(&b.id).unwrap().unwrap();
        assert_eq!(got.buildpacks, vec!["python"]);
        assert_eq!(got.slug_size, Some(1234));
        assert!(got.dirty);
        assert_eq!(got.addons, vec!["heroku-postgresql"]);
        assert_eq!(s.build_output(&b.id).unwrap().unwrap(), "-----> done\n");
        assert_eq!(s.builds(&a.id).unwrap().len(), 2);
        assert_eq!(s.fail_unfinished_builds().unwrap(), 1);
        assert_eq!(s.build(&pending.id).unwrap().unwrap().status, "failed");
    }

    #[test]
    fn config_releases_are_atomic_and_keys_validated() {
        let (s, a) = store_with_app();
        let cfg = vec![("A".to_string(), "x\ny".to_string())];
        let r = s
            .create_release_with_config(&a.id, None, &cfg, "Set A config vars", "pending", None)
            .unwrap();
        assert_eq!(s.config_vars(&a.id).unwrap(), cfg);
        assert_eq!(s.release(&a.id, "v1").unwrap().unwrap().id, r.id);
        assert_eq!(s.pending_releases().unwrap().len(), 1);
        s.set_release_status(&r.id, "failed").unwrap();
        assert!(s.set_release_status(&r.id, "succeeded").is_err());
        assert!(s.pending_releases().unwrap().is_empty());
        s.set_release_output(&r.id, "out").unwrap();
        assert_eq!(s.release_output(&r.id).unwrap().as_deref(), Some("out"));
        for good in ["FOO", "_x", "a1_B"] {
            assert!(validate_config_key(good).is_ok(), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", "A=B"] {
            assert!(validate_config_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dirs_map_to_apps() {
        let (s, a) = store_with_app();
        s.set_dir_app("/src/hello", &a.id).unwrap();
        assert_eq!(s.dir_app("/src/hello").unwrap().as_deref(), Some("hello"));
        assert_eq!(s.dir_app("/src/other").unwrap(), None);
    }
}
