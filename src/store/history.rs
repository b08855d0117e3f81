//! History reads: what the engine loads at start and the indexed
//! queries that answer for older executions (one page, one record, the
//! newest match), so nothing reads a pipeline's whole history.

use rusqlite::{OptionalExtension, params};

use super::{ExecutionRow, Store, StoreError};
use crate::api::ActionExecutionDetail;

impl Store {
    /// What the engine holds of a pipeline at start: its newest
    /// execution, every one not finished (whatever its age) and the one
    /// that most recently entered each of `stages`, oldest first. Also
    /// the highest entry order those stages have seen.
    pub fn startup_executions(
        &self,
        pipeline: &str,
        stages: &[&str],
    ) -> Result<(Vec<ExecutionRow>, u64), StoreError> {
        let mut ids: Vec<String> = Vec::new();
        let mut entry = 0u64;
        {
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT id FROM executions WHERE pipeline = ?1
                     ORDER BY seq DESC LIMIT 1",
                )
                .map_err(|e| self.err(e))?;
            let newest: Option<String> = st
                .query_row([pipeline], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))?;
            ids.extend(newest);
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT id FROM executions WHERE pipeline = ?1
                     AND status IN ('InProgress', 'Stopping')",
                )
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map([pipeline], |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?;
            for r in rows {
                ids.push(r.map_err(|e| self.err(e))?);
            }
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT execution_id, entry_seq FROM stage_executions
                     WHERE pipeline = ?1 AND stage = ?2
                     ORDER BY entry_seq DESC LIMIT 1",
                )
                .map_err(|e| self.err(e))?;
            for stage in stages {
                let latest: Option<(String, i64)> = st
                    .query_row([pipeline, *stage], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(|e| self.err(e))?;
                if let Some((id, seq)) = latest {
                    entry = entry.max(u64::try_from(seq).unwrap_or(0));
                    ids.push(id);
                }
            }
        }
        ids.sort();
        ids.dedup();
        let mut rows = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(row) = self.execution(id)? {
                rows.push(row);
            }
        }
        rows.sort_by_key(|r| r.seq);
        Ok((rows, entry))
    }

    /// One stored execution by id.
    pub fn execution(&self, id: &str) -> Result<Option<ExecutionRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, pipeline, seq, record FROM executions WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        st.query_row([id], row_of)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// A pipeline's executions older than `before` (by sequence number;
    /// all when `None`), newest first, at most `limit`: one page of
    /// ListPipelineExecutions.
    pub fn executions_before(
        &self,
        pipeline: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, pipeline, seq, record FROM executions
                 WHERE pipeline = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![pipeline, before.unwrap_or(i64::MAX), limit], row_of)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The newest STANDARD execution of `pipeline` the store records as
    /// Succeeded in `stage` for which `accept` returns something, read
    /// newest first one row at a time (a rollback's default target).
    pub fn find_succeeded_in_stage<T>(
        &self,
        pipeline: &str,
        stage: &str,
        mut accept: impl FnMut(ExecutionRow) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT e.id, e.pipeline, e.seq, e.record FROM executions e
                 JOIN stage_executions s ON s.execution_id = e.id AND s.stage = ?2
                 WHERE e.pipeline = ?1 AND e.type = 'STANDARD' AND s.status = 'Succeeded'
                 ORDER BY e.seq DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([pipeline, stage], row_of)
            .map_err(|e| self.err(e))?;
        for row in rows {
            if let Some(t) = accept(row.map_err(|e| self.err(e))?) {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// The newest decided approval of `stage.action` in `pipeline`: the
    /// execution's sequence number and the decision (status, summary,
    /// by, at).
    pub fn latest_approval_result(
        &self,
        pipeline: &str,
        stage: &str,
        action: &str,
    ) -> Result<Option<(i64, [String; 4])>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT e.seq, a.status, COALESCE(a.summary, ''), COALESCE(a.decided_by, ''),
                        COALESCE(a.decided_at, '')
                 FROM approvals a JOIN executions e ON e.id = a.execution_id
                 WHERE e.pipeline = ?1 AND a.stage = ?2 AND a.action = ?3
                   AND a.status IS NOT NULL
                 ORDER BY e.seq DESC, a.decided_at DESC LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        st.query_row([pipeline, stage, action], |r| {
            Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    pub fn action_executions(
        &self,
        execution_id: &str,
    ) -> Result<Vec<ActionExecutionDetail>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT record FROM action_executions WHERE execution_id = ?1
                 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([execution_id], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(self.decode(&row.map_err(|e| self.err(e))?)?);
        }
        Ok(out)
    }
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    Ok(ExecutionRow {
        id: r.get(0)?,
        pipeline: r.get(1)?,
        seq: r.get(2)?,
        record: r.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::MIGRATIONS;
    use super::*;

    #[test]
    fn start_up_reads_the_newest_the_unfinished_and_each_stage_s_latest() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Store::open(d.path()).unwrap();
        s.batch(|b| {
            for seq in 1..=6 {
                let status = if seq == 2 { "InProgress" } else { "Succeeded" };
                b.execution(&format!("e{seq}"), "p", seq, status, "STANDARD", "t", &seq)?;
            }
            // e3 entered Deploy last; e6 only Build.
            b.stage_execution("e3", "p", "Deploy", Some("Succeeded"), 9, &0)?;
            b.stage_execution("e1", "p", "Deploy", Some("Succeeded"), 4, &0)?;
            b.stage_execution("e6", "p", "Build", Some("Failed"), 10, &0)?;
            b.execution("q1", "other", 7, "InProgress", "STANDARD", "t", &0)?;
            b.stage_execution("q1", "other", "Deploy", Some("InProgress"), 11, &0)
        })
        .unwrap();
        let (rows, entry) = s.startup_executions("p", &["Build", "Deploy"]).unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["e2", "e3", "e6"]);
        assert_eq!(entry, 10);
        let (rows, entry) = s.startup_executions("none", &["Build"]).unwrap();
        assert!(rows.is_empty());
        assert_eq!(entry, 0);
    }

    #[test]
    fn pages_of_executions_are_newest_first_before_a_sequence_number() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Store::open(d.path()).unwrap();
        s.batch(|b| {
            for seq in 1..=5 {
                b.execution(
                    &format!("e{seq}"),
                    "p",
                    seq,
                    "Failed",
                    "STANDARD",
                    "t",
                    &seq,
                )?;
            }
            b.execution("x", "other", 9, "Failed", "STANDARD", "t", &0)
        })
        .unwrap();
        let seqs = |before, limit| -> Vec<i64> {
            s.executions_before("p", before, limit)
                .unwrap()
                .into_iter()
                .map(|r| r.seq)
                .collect()
        };
        assert_eq!(seqs(None, 2), [5, 4]);
        assert_eq!(seqs(Some(4), 2), [3, 2]);
        assert_eq!(seqs(Some(2), 10), [1]);
        assert!(seqs(Some(1), 10).is_empty());
        assert_eq!(s.execution("x").unwrap().unwrap().pipeline, "other");
        assert!(s.execution("nope").unwrap().is_none());
    }

    fn s4(a: &str, b: &str, n: i64, c: &str) -> (String, String, i64, String) {
        (a.to_owned(), b.to_owned(), n, c.to_owned())
    }

    #[test]
    fn a_schema_1_store_keeps_its_rows_and_gains_the_indexed_columns() {
        let d = tempfile::tempdir().unwrap();
        {
            let c = rusqlite::Connection::open(d.path().join("state.db")).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute_batch(
                "INSERT INTO executions VALUES ('e1', 'p', 1, 'Succeeded', 'STANDARD', 't', '{}');
                 INSERT INTO executions VALUES ('e2', 'p', 2, 'InProgress', 'STANDARD', 't', '{}');
                 INSERT INTO stage_executions VALUES ('e1', 'Build', 'Succeeded', '{\"entry_seq\":7}');
                 INSERT INTO stage_executions VALUES ('e2', 'Build', 'InProgress', '{\"entry_seq\":8}');
                 INSERT INTO stage_executions VALUES ('gone', 'Build', 'Failed', 'not json');",
            )
            .unwrap();
        }
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let rows: Vec<(String, String, i64, String)> = s
            .conn
            .prepare(
                "SELECT execution_id, pipeline, entry_seq, record FROM stage_executions
                 ORDER BY execution_id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                s4("e1", "p", 7, "{\"entry_seq\":7}"),
                s4("e2", "p", 8, "{\"entry_seq\":8}"),
                s4("gone", "", 0, "not json"),
            ]
        );
        let (rows, entry) = s.startup_executions("p", &["Build"]).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, "e2");
        assert_eq!(entry, 8);
    }
}
