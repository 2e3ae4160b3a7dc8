//! The router's and Logplex's rows: custom domains, log drains, per-app idling.

use super::{new_id, now, Store};
use anyhow::Result;
use rusqlite::{params, OptionalExtension};

#[derive(Debug, Clone, PartialEq)]
pub struct DomainRow {
    pub id: String,
    pub app_id: String,
    pub hostname: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrainRow {
    pub id: String,
    pub app_id: String,
    pub url: String,
    /// Heroku's `d.<uuid>` drain token, sent with every batch.
    pub token: String,
    pub created_at: String,
}

impl Store {
    // ---- domains ----

    /// Adds a custom domain; fails if any app already has it.
    pub fn add_domain(&self, app_id: &str, hostname: &str) -> Result<DomainRow> {
        let row = DomainRow {
            id: new_id(),
            app_id: app_id.into(),
            hostname: hostname.into(),
            created_at: now(),
        };
        self.conn().execute(
            "INSERT INTO domains (id, app_id, hostname, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![row.id, row.app_id, row.hostname, row.created_at],
        )?;
        Ok(row)
    }

    /// Domains of one app, or of every app with `None`.
    pub fn domains(&self, app_id: Option<&str>) -> Result<Vec<DomainRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, app_id, hostname, created_at FROM domains
             WHERE ?1 IS NULL OR app_id = ?1 ORDER BY hostname",
        )?;
        let rows = st.query_map([app_id], |r| {
            Ok(DomainRow {
                id: r.get(0)?,
                app_id: r.get(1)?,
                hostname: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The domain by hostname (any app).
    pub fn domain(&self, hostname: &str) -> Result<Option<DomainRow>> {
        Ok(self
            .domains(None)?
            .into_iter()
            .find(|d| d.hostname == hostname))
    }

    /// Removes an app's domain (by hostname or id); whether it existed.
    pub fn remove_domain(&self, app_id: &str, key: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM domains WHERE app_id = ?1 AND (hostname = ?2 OR id = ?2)",
            params![app_id, key],
        )?;
        Ok(n > 0)
    }

    // ---- drains ----

    pub fn add_drain(&self, app_id: &str, url: &str) -> Result<DrainRow> {
        let row = DrainRow {
            id: new_id(),
            app_id: app_id.into(),
            url: url.into(),
            token: format!("d.{}", new_id()),
            created_at: now(),
        };
        self.conn().execute(
            "INSERT INTO drains (id, app_id, url, token, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row.id, row.app_id, row.url, row.token, row.created_at],
        )?;
        Ok(row)
    }

    /// Drains of one app, or of every app with `None`.
    pub fn drains(&self, app_id: Option<&str>) -> Result<Vec<DrainRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, app_id, url, token, created_at FROM drains
             WHERE ?1 IS NULL OR app_id = ?1 ORDER BY created_at, url",
        )?;
        let rows = st.query_map([app_id], |r| {
            Ok(DrainRow {
                id: r.get(0)?,
                app_id: r.get(1)?,
                url: r.get(2)?,
                token: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes an app's drain (by URL, id or token); the removed row.
    pub fn remove_drain(&self, app_id: &str, key: &str) -> Result<Option<DrainRow>> {
        let found = self
            .drains(Some(app_id))?
            .into_iter()
            .find(|d| d.url == key || d.id == key || d.token == key);
        if let Some(d) = &found {
            self.conn()
                .execute("DELETE FROM drains WHERE id = ?1", [&d.id])?;
        }
        Ok(found)
    }

    // ---- idling ----

    pub fn idling(&self, app_id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT enabled FROM app_idling WHERE app_id = ?1",
                [app_id],
                |r| r.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    pub fn set_idling(&self, app_id: &str, enabled: bool) -> Result<()> {
        self.conn().execute(
            "INSERT INTO app_idling (app_id, enabled) VALUES (?1, ?2)
             ON CONFLICT(app_id) DO UPDATE SET enabled = ?2",
            params![app_id, enabled],
        )?;
        Ok(())
    }

    /// Records whether an app's web dynos are idled (kept across daemon restarts).
    pub fn set_idled(&self, app_id: &str, idled: bool) -> Result<()> {
        self.conn().execute(
            "INSERT INTO app_idling (app_id, enabled, idled) VALUES (?1, 1, ?2)
             ON CONFLICT(app_id) DO UPDATE SET idled = ?2",
            params![app_id, idled],
        )?;
        Ok(())
    }

    /// Ids of the apps whose web dynos are idled (idling on, and idled when last seen).
    pub fn idled_apps(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT app_id FROM app_idling WHERE enabled AND idled")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_drains_and_idling() {
        let s = Store::memory().unwrap();
        let a = s.create_app("one").unwrap();
        let b = s.create_app("two").unwrap();
        s.add_domain(&a.id, "www.example.test").unwrap();
        assert!(
            s.add_domain(&b.id, "www.example.test").is_err(),
            "a hostname belongs to one app"
        );
        assert_eq!(s.domain("www.example.test").unwrap().unwrap().app_id, a.id);
        assert!(!s.remove_domain(&b.id, "www.example.test").unwrap());
        assert!(s.remove_domain(&a.id, "www.example.test").unwrap());
        assert!(s.domains(None).unwrap().is_empty());

        let d = s.add_drain(&a.id, "syslog+tcp://127.0.0.1:1").unwrap();
        assert!(d.token.starts_with("d."));
        assert!(s.add_drain(&a.id, "syslog+tcp://127.0.0.1:1").is_err());
        assert_eq!(s.drains(Some(&a.id)).unwrap(), vec![d.clone()]);
        assert_eq!(s.remove_drain(&a.id, &d.url).unwrap(), Some(d));
        assert!(s.drains(None).unwrap().is_empty());

        assert!(!s.idling(&a.id).unwrap());
        s.set_idling(&a.id, true).unwrap();
        assert!(s.idling(&a.id).unwrap());
        assert!(s.idled_apps().unwrap().is_empty());
        s.set_idled(&a.id, true).unwrap();
        assert_eq!(s.idled_apps().unwrap(), vec![a.id.clone()]);
        s.set_idled(&a.id, false).unwrap();
        assert!(s.idled_apps().unwrap().is_empty());
        s.set_idling(&a.id, false).unwrap();
        assert!(!s.idling(&a.id).unwrap());
        s.add_domain(&b.id, "b.example.test").unwrap();
        s.delete_app(&b.id).unwrap();
        assert!(
            s.domains(None).unwrap().is_empty(),
            "domains go with the app"
        );
    }
}
