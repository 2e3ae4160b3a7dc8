//! Add-ons and their attachments. An add-on belongs to one app (the one that created it) and is
//! attached to it and maybe to others; each attachment is a config var `<NAME>_URL` in its app.
//! Attaching and detaching happen in the transaction of the release that sets or unsets that
//! config var ([`AddonOp`], applied by `Store::create_release_with_config`), so no config var
//! exists without its attachment, nor an attachment without its release.

use super::{now, Store};
use anyhow::Result;
use rusqlite::{params, OptionalExtension};

#[derive(Debug, Clone, PartialEq)]
pub struct AddonRow {
    pub id: String,
    /// `postgresql-curved-12345`.
    pub name: String,
    /// The app that created it (and is billed for it, on Heroku).
    pub app_id: String,
    /// `heroku-postgresql`, `heroku-redis`.
    pub service: String,
    /// `heroku-postgresql:essential-0`.
    pub plan: String,
    /// `provisioning` until its first attachment's release is recorded, then `provisioned`.
    pub state: String,
    pub port: u16,
    pub password: String,
    /// The database, also the role's name (Postgres); empty for Redis.
    pub database: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    pub id: String,
    pub addon_id: String,
    pub app_id: String,
    /// `DATABASE`, `HEROKU_POSTGRESQL_COPPER`, `REDIS`, `ANALYTICS`: the config var is `<name>_URL`.
    pub name: String,
    pub created_at: String,
}

/// What a release does to add-ons, in its own transaction.
#[derive(Debug, Clone)]
pub enum AddonOp {
    /// Inserts the attachment; a `provisioning` add-on becomes `provisioned`.
    Attach(AttachmentRow),
    /// Removes the attachment (by id).
    Detach(String),
}

const ADDON_COLUMNS: &str =
    "id, name, app_id, service, plan, state, port, password, database, created_at, updated_at";

fn addon_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AddonRow> {
    Ok(AddonRow {
        id: r.get(0)?,
        name: r.get(1)?,
        app_id: r.get(2)?,
        service: r.get(3)?,
        plan: r.get(4)?,
        state: r.get(5)?,
        port: r.get(6)?,
        password: r.get(7)?,
        database: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

fn attachment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttachmentRow> {
    Ok(AttachmentRow {
        id: r.get(0)?,
        addon_id: r.get(1)?,
        app_id: r.get(2)?,
        name: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn apply(tx: &rusqlite::Transaction<'_>, op: &AddonOp) -> Result<()> {
    match op {
        AddonOp::Attach(a) => {
            tx.execute(
                "INSERT INTO addon_attachments (id, addon_id, app_id, name, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![a.id, a.addon_id, a.app_id, a.name, a.created_at],
            )?;
            tx.execute(
                "UPDATE addons SET state = 'provisioned', updated_at = ?2
                 WHERE id = ?1 AND state = 'provisioning'",
                params![a.addon_id, now()],
            )?;
        }
        AddonOp::Detach(id) => {
            tx.execute("DELETE FROM addon_attachments WHERE id = ?1", [id])?;
        }
    }
    Ok(())
}

/// The plans attached to an app (a release records them).
pub(super) fn plans_attached(tx: &rusqlite::Transaction<'_>, app_id: &str) -> Result<Vec<String>> {
    let mut st = tx.prepare(
        "SELECT DISTINCT addons.plan FROM addon_attachments
         JOIN addons ON addons.id = addon_attachments.addon_id
         WHERE addon_attachments.app_id = ?1 ORDER BY addons.plan",
    )?;
    let rows = st.query_map([app_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Records a new add-on (`provisioning` until its first attachment).
    pub fn insert_addon(&self, a: &AddonRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO addons ({ADDON_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                a.id,
                a.name,
                a.app_id,
                a.service,
                a.plan,
                a.state,
                a.port,
                a.password,
                a.database,
                a.created_at,
                a.updated_at
            ],
        )?;
        Ok(())
    }

    /// By name or id.
    pub fn addon(&self, key: &str) -> Result<Option<AddonRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {ADDON_COLUMNS} FROM addons WHERE name = ?1 OR id = ?1"),
                [key],
                addon_row,
            )
            .optional()?)
    }

    /// Every add-on, by name.
    pub fn addons(&self) -> Result<Vec<AddonRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("SELECT {ADDON_COLUMNS} FROM addons ORDER BY name"))?;
        let rows = st.query_map([], addon_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn delete_addon(&self, id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM addons WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Attachments to an app, or of an add-on, or all.
    pub fn attachments(
        &self,
        app_id: Option<&str>,
        addon_id: Option<&str>,
    ) -> Result<Vec<AttachmentRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, addon_id, app_id, name, created_at FROM addon_attachments
             WHERE (?1 IS NULL OR app_id = ?1) AND (?2 IS NULL OR addon_id = ?2)
             ORDER BY created_at, name",
        )?;
        let rows = st.query_map(params![app_id, addon_id], attachment_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::new_id;

    #[test]
    fn attaching_is_part_of_the_release() {
        let s = Store::memory().unwrap();
        let a = s.create_app("one").unwrap();
        let t = now();
        let addon = AddonRow {
            id: new_id(),
            name: "postgresql-round-12345".into(),
            app_id: a.id.clone(),
            service: "heroku-postgresql".into(),
            plan: "heroku-postgresql:essential-0".into(),
            state: "provisioning".into(),
            port: 5432,
            password: "pw".into(),
            database: "d1".into(),
            created_at: t.clone(),
            updated_at: t.clone(),
        };
        s.insert_addon(&addon).unwrap();
        let att = AttachmentRow {
            id: new_id(),
            addon_id: addon.id.clone(),
            app_id: a.id.clone(),
            name: "DATABASE".into(),
            created_at: t,
        };
        let cfg = vec![("DATABASE_URL".to_string(), "postgres://x".to_string())];
        let r = s
            .create_release_with_config(
                &a.id,
                None,
                &cfg,
                "Attach DATABASE (@ref:postgresql-round-12345)",
                "succeeded",
                Some(&AddonOp::Attach(att.clone())),
            )
            .unwrap();
        assert_eq!(r.addons, vec!["heroku-postgresql:essential-0"]);
        assert_eq!(s.addon(&addon.name).unwrap().unwrap().state, "provisioned");
        assert_eq!(s.attachments(Some(&a.id), None).unwrap(), vec![att.clone()]);
        // A second attachment under the same name is refused, and nothing of that release stays.
        let mut dup = att.clone();
        dup.id = new_id();
        assert!(s
            .create_release_with_config(
                &a.id,
                None,
                &[],
                "x",
                "succeeded",
                Some(&AddonOp::Attach(dup))
            )
            .is_err());
        assert_eq!(s.releases(&a.id).unwrap().len(), 1);
        assert_eq!(s.config_vars(&a.id).unwrap(), cfg);
        let r = s
            .create_release_with_config(
                &a.id,
                None,
                &[],
                "Detach",
                "succeeded",
                Some(&AddonOp::Detach(att.id)),
            )
            .unwrap();
        assert!(r.addons.is_empty());
        assert_eq!(s.releases(&a.id).unwrap()[0].addons.len(), 1);
        // Destroying the app takes its add-ons along.
        s.delete_app(&a.id).unwrap();
        assert!(s.addons().unwrap().is_empty());
    }
}
