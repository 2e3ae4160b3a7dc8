//! The scheduler's jobs: a schedule (checked by `api::scheduler::parse_schedule` before it is
//! stored) and a command, numbered per app. They go with the app (`ON DELETE CASCADE`) and with
//! its scheduler add-on (`delete_jobs`).

use super::{now, Store};
use anyhow::Result;
use rusqlite::params;

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub app_id: String,
    pub num: u32,
    pub schedule: String,
    pub command: String,
    pub created_at: String,
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        app_id: r.get(0)?,
        num: r.get(1)?,
        schedule: r.get(2)?,
        command: r.get(3)?,
        created_at: r.get(4)?,
    })
}

const COLUMNS: &str = "app_id, num, schedule, command, created_at";

impl Store {
    /// Adds a job with the app's next number (never reusing a number still in use).
    pub fn insert_job(&self, app_id: &str, schedule: &str, command: &str) -> Result<JobRow> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let num: u32 = tx.query_row(
            "SELECT COALESCE(MAX(num), 0) + 1 FROM scheduler_jobs WHERE app_id = ?1",
            [app_id],
            |r| r.get(0),
        )?;
        let row = JobRow {
            app_id: app_id.to_string(),
            num,
            schedule: schedule.to_string(),
            command: command.to_string(),
            created_at: now(),
        };
        tx.execute(
            &format!("INSERT INTO scheduler_jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![
                row.app_id,
                row.num,
                row.schedule,
                row.command,
                row.created_at
            ],
        )?;
        tx.commit()?;
        Ok(row)
    }

    /// An app's jobs (every app's with `None`), by app then number.
    pub fn jobs(&self, app_id: Option<&str>) -> Result<Vec<JobRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM scheduler_jobs WHERE ?1 IS NULL OR app_id = ?1 ORDER BY app_id, num"
        ))?;
        let rows = st.query_map([app_id], job_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes one job; whether it was there.
    pub fn delete_job(&self, app_id: &str, num: u32) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM scheduler_jobs WHERE app_id = ?1 AND num = ?2",
            params![app_id, num],
        )? > 0)
    }

    /// Removes every job of an app (its scheduler add-on is destroyed).
    pub fn delete_jobs(&self, app_id: &str) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM scheduler_jobs WHERE app_id = ?1", [app_id])?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn jobs_are_numbered_per_app_and_go_with_it() {
        let s = Store::memory().unwrap();
        let a = s.create_app("one").unwrap();
        let b = s.create_app("two").unwrap();
        assert_eq!(s.insert_job(&a.id, "* * * * *", "echo a1").unwrap().num, 1);
        assert_eq!(s.insert_job(&a.id, "@daily", "echo a2").unwrap().num, 2);
        assert_eq!(s.insert_job(&b.id, "* * * * *", "echo b1").unwrap().num, 1);
        assert!(s.delete_job(&a.id, 1).unwrap());
        assert!(!s.delete_job(&a.id, 1).unwrap());
        assert_eq!(s.insert_job(&a.id, "* * * * *", "echo a3").unwrap().num, 3);
        assert_eq!(s.jobs(Some(&a.id)).unwrap().len(), 2);
        assert_eq!(s.jobs(None).unwrap().len(), 3);
        s.delete_app(&a.id).unwrap();
        assert_eq!(s.jobs(None).unwrap().len(), 1);
        assert_eq!(s.delete_jobs(&b.id).unwrap(), 1);
    }
}
