//! The workspace's durable state: SQLite (executions, approvals, audit
//! trail), append-only log files with a line index, and the
//! content-addressed artifact store.
//!
//! SQLite runs in WAL mode with `synchronous = NORMAL`: a committed write
//! survives the process being killed (the OS holds it), which is the crash
//! model the engine promises (`kill -9`, not power loss). Rows carry the
//! columns the engine queries by and the full record as JSON, so the API
//! shape and the stored shape are one type.

pub mod artifacts;
mod history;
pub mod log_query;
pub mod logs;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{ActionExecutionDetail, AuditEvent, TransitionState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state store {path}: a record does not decode: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("state store {path}: {message}")]
    Io { path: PathBuf, message: String },
}

/// Versioned migrations: entry `i` takes the schema from version `i` to
/// `i + 1` (`PRAGMA user_version`). Append only; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE pipeline_versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        hash TEXT NOT NULL,
        definition TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (name, version)
     );
     CREATE TABLE executions (
        id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        type TEXT NOT NULL,
        start_time TEXT NOT NULL,
        record TEXT NOT NULL
     );
     CREATE INDEX executions_by_pipeline ON executions (pipeline, seq);
     CREATE TABLE stage_executions (
        execution_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        status TEXT,
        record TEXT NOT NULL,
        PRIMARY KEY (execution_id, stage)
     );
     CREATE TABLE action_executions (
        id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        action TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL
     );
     CREATE INDEX action_executions_by_execution ON action_executions (execution_id);
     CREATE TABLE approvals (
        token TEXT PRIMARY KEY,
        action_execution_id TEXT NOT NULL,
        pipeline TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        action TEXT NOT NULL,
        expires TEXT NOT NULL,
        status TEXT,
        summary TEXT,
        decided_by TEXT,
        decided_at TEXT
     );
     CREATE TABLE variables (
        execution_id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (execution_id, namespace, name)
     );
     CREATE TABLE artifacts (
        id TEXT PRIMARY KEY,
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        created TEXT NOT NULL
     );
     CREATE TABLE execution_artifacts (
        execution_id TEXT NOT NULL,
        name TEXT NOT NULL,
        artifact_id TEXT NOT NULL,
        action_execution_id TEXT NOT NULL,
        PRIMARY KEY (execution_id, name)
     );
     CREATE TABLE transitions (
        pipeline TEXT NOT NULL,
        stage TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (pipeline, stage)
     );
     CREATE TABLE audit (
        event_id TEXT PRIMARY KEY,
        event_time TEXT NOT NULL,
        event_name TEXT NOT NULL,
        username TEXT,
        error_code TEXT,
        record TEXT NOT NULL
     );
     CREATE INDEX audit_by_time ON audit (event_time);
     CREATE TABLE trigger_refs (
        pipeline TEXT NOT NULL,
        action TEXT NOT NULL,
        ref TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        PRIMARY KEY (pipeline, action, ref)
     );",
    // 2: history by indexed queries. Stage rows carry their pipeline and
    // entry order (backfilled from the rows' records), so the latest
    // execution of each stage is one index probe; unfinished executions
    // and approvals by action execution are indexed too.
    "ALTER TABLE stage_executions ADD COLUMN pipeline TEXT NOT NULL DEFAULT '';
     ALTER TABLE stage_executions ADD COLUMN entry_seq INTEGER NOT NULL DEFAULT 0;
     UPDATE stage_executions SET
        pipeline = COALESCE(
            (SELECT e.pipeline FROM executions e WHERE e.id = stage_executions.execution_id), ''),
        entry_seq = CASE WHEN json_valid(record)
            THEN COALESCE(json_extract(record, '$.entry_seq'), 0) ELSE 0 END;
     CREATE INDEX stage_executions_latest ON stage_executions (pipeline, stage, entry_seq);
     CREATE INDEX executions_unfinished ON executions (pipeline, seq)
        WHERE status IN ('InProgress', 'Stopping');
     CREATE INDEX approvals_by_action_execution ON approvals (action_execution_id);",
];

pub struct Store {
    conn: Connection,
    path: PathBuf,
    pub dir: PathBuf,
}

/// A stored execution row: the engine's own record type, opaque here.
pub struct ExecutionRow {
    pub id: String,
    pub pipeline: String,
    pub seq: i64,
    pub record: String,
}

impl Store {
    /// Opens (creating) the store in `state_dir` and migrates it.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join("state.db");
        create_private_dir(state_dir).map_err(|e| StoreError::Io {
            path: state_dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let mut store = Store {
            conn,
            path: path.clone(),
            dir: state_dir.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let current: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let current = usize::try_from(current).unwrap_or(0);
        if current > MIGRATIONS.len() {
            return Err(StoreError::Io {
                path: self.path.clone(),
                message: format!(
                    "schema version {current} is newer than this pipedeck knows ({}); \
                     use a newer pipedeck",
                    MIGRATIONS.len()
                ),
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = self.conn.transaction().map_err(|e| StoreError::Sql {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(m).map_err(|e| StoreError::Sql {
                path: self.path.clone(),
                source: e,
            })?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| StoreError::Sql {
                    path: self.path.clone(),
                    source: e,
                })?;
            tx.commit().map_err(|e| StoreError::Sql {
                path: self.path.clone(),
                source: e,
            })?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Runs `f` in one transaction: every write of one engine step lands
    /// together or not at all.
    pub fn batch<T>(
        &mut self,
        f: impl FnOnce(&Batch<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let sql = move |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&sql)?;
        let out = f(&Batch { tx: &tx }).map_err(&sql)?;
        tx.commit().map_err(&sql)?;
        Ok(out)
    }

    /// The latest stored version of a pipeline: (version, hash).
    pub fn latest_pipeline_version(&self, name: &str) -> Result<Option<(u32, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT version, hash FROM pipeline_versions WHERE name = ?1
                 ORDER BY version DESC LIMIT 1",
                [name],
                |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn transitions(
        &self,
        pipeline: &str,
    ) -> Result<Vec<(String, TransitionState)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT stage, record FROM transitions WHERE pipeline = ?1")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([pipeline], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (stage, rec) = row.map_err(|e| self.err(e))?;
            out.push((stage, self.decode(&rec)?));
        }
        Ok(out)
    }

    /// The stage rows of execution `id`: (stage name, JSON record).
    pub fn stage_records(&self, id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT stage, record FROM stage_executions WHERE execution_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Audit events, newest first, at most `limit`.
    pub fn audit(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT record FROM audit ORDER BY event_time DESC, rowid DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([limit], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(self.decode(&row.map_err(|e| self.err(e))?)?);
        }
        Ok(out)
    }

    /// Audit events older than the event `before` (newest first, at most
    /// `limit`): one page of LookupEvents. `None` when `before` is not a
    /// stored event.
    pub fn audit_before(
        &self,
        limit: u32,
        before: &str,
    ) -> Result<Option<Vec<AuditEvent>>, StoreError> {
        let known: Option<i64> = self
            .conn
            .query_row(
                "SELECT rowid FROM audit WHERE event_id = ?1",
                [before],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if known.is_none() {
            return Ok(None);
        }
        let mut st = self
            .conn
            .prepare(
                "SELECT record FROM audit
                 WHERE (event_time, rowid) < (SELECT event_time, rowid FROM audit WHERE event_id = ?2)
                 ORDER BY event_time DESC, rowid DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![limit, before], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(self.decode(&row.map_err(|e| self.err(e))?)?);
        }
        Ok(Some(out))
    }

    /// A stored version of a pipeline: its definition (JSON), when that
    /// version was stored, and when the first version was.
    pub fn pipeline_definition(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT definition, created,
                        (SELECT MIN(created) FROM pipeline_versions WHERE name = ?1)
                 FROM pipeline_versions WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn trigger_refs(
        &self,
        pipeline: &str,
        action: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT ref, commit_id FROM trigger_refs WHERE pipeline = ?1 AND action = ?2")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([pipeline, action], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn decode<T: DeserializeOwned>(&self, text: &str) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Decode {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }
}

/// The write side of one transaction.
pub struct Batch<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"encodeError\":\"{e}\"}}"))
}

/// A record as the store writes it (JSON).
pub fn to_json<T: Serialize>(v: &T) -> String {
    json(v)
}

impl Batch<'_> {
    pub fn pipeline_version(
        &self,
        name: &str,
        version: u32,
        hash: &str,
        definition: &str,
        created: &str,
    ) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT OR IGNORE INTO pipeline_versions (name, version, hash, definition, created)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, version, hash, definition, created],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn execution<T: Serialize>(
        &self,
        id: &str,
        pipeline: &str,
        seq: i64,
        status: &str,
        kind: &str,
        start_time: &str,
        record: &T,
    ) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT INTO executions (id, pipeline, seq, status, type, start_time, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, record = excluded.record",
            params![id, pipeline, seq, status, kind, start_time, json(record)],
        )?;
        Ok(())
    }

    /// A stage of an execution: `entry_seq` is the engine's order of
    /// entries into stages (the latest execution of a stage has the
    /// highest).
    #[allow(clippy::too_many_arguments)]
    pub fn stage_execution<T: Serialize>(
        &self,
        execution_id: &str,
        pipeline: &str,
        stage: &str,
        status: Option<&str>,
        entry_seq: u64,
        record: &T,
    ) -> Result<(), rusqlite::Error> {
        self.stage_execution_json(
            execution_id,
            pipeline,
            stage,
            status,
            entry_seq,
            &json(record),
        )
    }

    /// [`stage_execution`](Self::stage_execution) of a record already in
    /// JSON ([`to_json`]).
    pub fn stage_execution_json(
        &self,
        execution_id: &str,
        pipeline: &str,
        stage: &str,
        status: Option<&str>,
        entry_seq: u64,
        record: &str,
    ) -> Result<(), rusqlite::Error> {
        self.tx
            .prepare_cached(
                "INSERT INTO stage_executions
                 (execution_id, stage, status, record, pipeline, entry_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(execution_id, stage) DO UPDATE
                 SET status = excluded.status, record = excluded.record,
                     pipeline = excluded.pipeline, entry_seq = excluded.entry_seq",
            )?
            .execute(params![
                execution_id,
                stage,
                status,
                record,
                pipeline,
                i64::try_from(entry_seq).unwrap_or(i64::MAX)
            ])?;
        Ok(())
    }

    pub fn action_execution(&self, a: &ActionExecutionDetail) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT INTO action_executions (id, execution_id, stage, action, attempt, status, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, record = excluded.record",
            params![
                a.action_execution_id,
                a.pipeline_execution_id,
                a.stage_name,
                a.action_name,
                a.attempt,
                a.status.as_str(),
                json(a)
            ],
        )?;
        if let (Some(token), Some(ap)) = (&a.token, &a.approval) {
            self.tx.execute(
                "INSERT OR IGNORE INTO approvals
                 (token, action_execution_id, pipeline, execution_id, stage, action, expires)
                 VALUES (?1, ?2, '', ?3, ?4, ?5, ?6)",
                params![
                    token,
                    a.action_execution_id,
                    a.pipeline_execution_id,
                    a.stage_name,
                    a.action_name,
                    ap.expires
                ],
            )?;
        }
        if let Some(ap) = &a.approval
            && let Some(r) = &ap.result
        {
            self.tx.execute(
                "UPDATE approvals SET status = ?1, summary = ?2, decided_by = ?3, decided_at = ?4
                 WHERE action_execution_id = ?5",
                params![r.status, r.summary, r.by, r.at, a.action_execution_id],
            )?;
        }
        for (k, v) in &a.output_variables {
            self.tx.execute(
                "INSERT OR REPLACE INTO variables (execution_id, namespace, name, value)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    a.pipeline_execution_id,
                    format!("{}.{}", a.stage_name, a.action_name),
                    k,
                    v
                ],
            )?;
        }
        Ok(())
    }

    pub fn variable(
        &self,
        execution_id: &str,
        namespace: &str,
        name: &str,
        value: &str,
    ) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT OR REPLACE INTO variables (execution_id, namespace, name, value)
             VALUES (?1, ?2, ?3, ?4)",
            params![execution_id, namespace, name, value],
        )?;
        Ok(())
    }

    pub fn artifact(
        &self,
        id: &str,
        files: u64,
        bytes: u64,
        created: &str,
    ) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT OR IGNORE INTO artifacts (id, files, bytes, created) VALUES (?1, ?2, ?3, ?4)",
            params![id, files as i64, bytes as i64, created],
        )?;
        Ok(())
    }

    pub fn execution_artifact(
        &self,
        execution_id: &str,
        name: &str,
        artifact_id: &str,
        action_execution_id: &str,
    ) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT OR REPLACE INTO execution_artifacts
             (execution_id, name, artifact_id, action_execution_id) VALUES (?1, ?2, ?3, ?4)",
            params![execution_id, name, artifact_id, action_execution_id],
        )?;
        Ok(())
    }

    pub fn transition(
        &self,
        pipeline: &str,
        stage: &str,
        state: &TransitionState,
    ) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT OR REPLACE INTO transitions (pipeline, stage, record) VALUES (?1, ?2, ?3)",
            params![pipeline, stage, json(state)],
        )?;
        Ok(())
    }

    pub fn audit(&self, e: &AuditEvent) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT INTO audit (event_id, event_time, event_name, username, error_code, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.event_id,
                e.event_time,
                e.event_name,
                e.user_identity.user_name,
                e.error_code,
                json(e)
            ],
        )?;
        Ok(())
    }

    pub fn trigger_ref(
        &self,
        pipeline: &str,
        action: &str,
        refname: &str,
        commit: &str,
    ) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "INSERT OR REPLACE INTO trigger_refs (pipeline, action, ref, commit_id)
             VALUES (?1, ?2, ?3, ?4)",
            params![pipeline, action, refname, commit],
        )?;
        Ok(())
    }
}

/// Creates `dir` (and parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Now, as RFC 3339 with milliseconds (`2026-11-26T19:21:13.123Z`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_is_migrated_to_the_latest_schema_and_reopens() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(s);
        let mut s = Store::open(d.path()).unwrap();
        s.batch(|b| b.pipeline_version("p", 1, "h", "{}", "t"))
            .unwrap();
        drop(s);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(
            s.latest_pipeline_version("p").unwrap(),
            Some((1, "h".to_owned()))
        );
        let mode: String = s
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_store_from_a_newer_pipedeck_is_refused_with_a_clear_message() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        s.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(s);
        let err = Store::open(d.path()).err().unwrap().to_string();
        assert!(err.contains("newer than this pipedeck knows"), "{err}");
    }
}
