//! Action logs: one append-only file per action execution
//! (`logs/<id>.log`) and a line index beside it (`logs/<id>.idx`: the byte
//! offset where each line ends, 8 bytes little-endian per line). Any line
//! range is read with two seeks, in O(range), without loading the file.
//!
//! The log is written before its index, so every indexed line is on disk.
//! After a crash a reader also picks up complete lines past the index.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::providers::LogSink;

pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.log"))
}

fn idx_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.idx"))
}

/// Called with the number of lines on disk after each flush.
pub type Notify = Box<dyn FnMut(u64) + Send>;

pub struct LogWriter {
    log: BufWriter<File>,
    idx: BufWriter<File>,
    end: u64,
    lines: u64,
    reported: u64,
    notify: Option<Notify>,
    failed: Option<io::Error>,
}

impl LogWriter {
    /// Creates (or continues) the log of action execution `id` in `dir`.
    pub fn create(dir: &Path, id: &str) -> io::Result<LogWriter> {
        std::fs::create_dir_all(dir)?;
        let reader = LogReader::open(dir, id).ok();
        let (end, lines) = reader
            .as_ref()
            .map_or((0, 0), |r| (r.indexed_end(), r.len()));
        // Lines a crash left past the index are indexed now.
        let (indexed, tail) = reader.map_or((0, Vec::new()), |r| (r.indexed, r.tail));
        let mut log = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(log_path(dir, id))?;
        log.set_len(end)?;
        log.seek(SeekFrom::Start(end))?;
        let mut idx = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(idx_path(dir, id))?;
        idx.set_len(indexed * 8)?;
        idx.seek(SeekFrom::Start(indexed * 8))?;
        for e in &tail {
            idx.write_all(&e.to_le_bytes())?;
        }
        Ok(LogWriter {
            log: BufWriter::with_capacity(64 * 1024, log),
            idx: BufWriter::with_capacity(16 * 1024, idx),
            end,
            lines,
            reported: lines,
            notify: None,
            failed: None,
        })
    }

    pub fn on_flush(mut self, notify: Notify) -> Self {
        self.notify = Some(notify);
        self
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The first write error, if any (the log keeps going in memory-less
    /// mode: lines are dropped, the build is not failed for it).
    pub fn error(&self) -> Option<&io::Error> {
        self.failed.as_ref()
    }

    fn append(&mut self, line: &str) -> io::Result<()> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        self.log.write_all(line.as_bytes())?;
        self.log.write_all(b"\n")?;
        self.end += line.len() as u64 + 1;
        self.idx.write_all(&self.end.to_le_bytes())?;
        self.lines += 1;
        Ok(())
    }

    /// Writes buffered lines to the OS (log first, then index) and reports
    /// the new line count.
    pub fn sync(&mut self) -> io::Result<()> {
        self.log.flush()?;
        self.idx.flush()?;
        if self.lines != self.reported {
            self.reported = self.lines;
            if let Some(n) = self.notify.as_mut() {
                n(self.lines);
            }
        }
        Ok(())
    }
}

impl LogSink for LogWriter {
    fn line(&mut self, line: &str) {
        if self.failed.is_some() {
            return;
        }
        // A line may hold embedded newlines (a message we compose): keep
        // the one-line-per-entry rule.
        let res = if line.contains('\n') {
            line.split('\n').try_for_each(|l| self.append(l))
        } else {
            self.append(line)
        };
        if let Err(e) = res {
            tracing::error!(error = %e, "log write failed");
            self.failed = Some(e);
        }
    }

    fn chunk(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        let mut idx = Vec::with_capacity(data.len() / 4);
        let mut lines = 0;
        for p in memchr::memchr_iter(b'\n', data) {
            idx.extend_from_slice(&(self.end + p as u64 + 1).to_le_bytes());
            lines += 1;
        }
        let res = self
            .log
            .write_all(data)
            .and_then(|()| self.idx.write_all(&idx));
        match res {
            Ok(()) => {
                self.end += data.len() as u64;
                self.lines += lines;
            }
            Err(e) => {
                tracing::error!(error = %e, "log write failed");
                self.failed = Some(e);
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, "log flush failed");
            self.failed.get_or_insert(e);
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

/// Random access to one action's log.
pub struct LogReader {
    log: File,
    /// Line end offsets past the on-disk index (recovered after a crash).
    tail: Vec<u64>,
    idx: File,
    indexed: u64,
    indexed_end: u64,
}

impl LogReader {
    pub fn open(dir: &Path, id: &str) -> io::Result<LogReader> {
        let mut log = File::open(log_path(dir, id))?;
        let mut idx = match File::open(idx_path(dir, id)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A log without an index: index it from scratch (tail scan).
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(idx_path(dir, id))?
            }
            Err(e) => return Err(e),
        };
        let indexed = idx.metadata()?.len() / 8;
        let indexed_end = if indexed == 0 {
            0
        } else {
            idx.seek(SeekFrom::Start((indexed - 1) * 8))?;
            let mut b = [0u8; 8];
            idx.read_exact(&mut b)?;
            u64::from_le_bytes(b)
        };
        let len = log.metadata()?.len();
        let mut tail = Vec::new();
        if len > indexed_end {
            log.seek(SeekFrom::Start(indexed_end))?;
            let mut rest = Vec::new();
            log.read_to_end(&mut rest)?;
            let mut pos = indexed_end;
            for (i, b) in rest.iter().enumerate() {
                if *b == b'\n' {
                    pos = indexed_end + i as u64 + 1;
                    tail.push(pos);
                }
            }
            let _ = pos;
        }
        Ok(LogReader {
            log,
            tail,
            idx,
            indexed,
            indexed_end,
        })
    }

    /// Complete lines in the log.
    pub fn len(&self) -> u64 {
        self.indexed + self.tail.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn indexed_end(&self) -> u64 {
        self.tail.last().copied().unwrap_or(self.indexed_end)
    }

    /// End offset of line `i` (0-based).
    fn end_of(&mut self, i: u64) -> io::Result<u64> {
        if i >= self.indexed {
            return Ok(self.tail[(i - self.indexed) as usize]);
        }
        self.idx.seek(SeekFrom::Start(i * 8))?;
        let mut b = [0u8; 8];
        self.idx.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Lines `start .. start + count` (0-based), fewer at the end.
    pub fn read(&mut self, start: u64, count: u64) -> io::Result<Vec<String>> {
        let total = self.len();
        if start >= total || count == 0 {
            return Ok(Vec::new());
        }
        let stop = (start + count).min(total);
        let mut ends = Vec::with_capacity((stop - start) as usize);
        // One read of the index for the indexed part of the range.
        let idx_stop = stop.min(self.indexed);
        if start < idx_stop {
            self.idx.seek(SeekFrom::Start(start * 8))?;
            let mut buf = vec![0u8; ((idx_stop - start) * 8) as usize];
            self.idx.read_exact(&mut buf)?;
            ends.extend(
                buf.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
            );
        }
        for i in start.max(self.indexed)..stop {
            ends.push(self.end_of(i)?);
        }
        let begin = if start == 0 {
            0
        } else {
            self.end_of(start - 1)?
        };
        let last = ends.last().copied().unwrap_or(begin);
        self.log.seek(SeekFrom::Start(begin))?;
        let mut bytes = vec![0u8; (last - begin) as usize];
        self.log.read_exact(&mut bytes)?;
        let mut out = Vec::with_capacity(ends.len());
        let mut from = 0usize;
        for e in ends {
            let to = (e - begin) as usize;
            let slice = &bytes[from..to.saturating_sub(1).max(from)];
            let slice = slice.strip_suffix(b"\r").unwrap_or(slice);
            out.push(String::from_utf8_lossy(slice).into_owned());
            from = to;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_range_reads_back_exactly_and_a_reopened_writer_appends() {
        let d = tempfile::tempdir().unwrap();
        let mut w = LogWriter::create(d.path(), "a").unwrap();
        for i in 0..10_000 {
            w.line(&format!("line {i}"));
        }
        w.line("");
        w.line("crlf\r");
        w.sync().unwrap();
        drop(w);
        let mut r = LogReader::open(d.path(), "a").unwrap();
        assert_eq!(r.len(), 10_002);
        assert_eq!(r.read(0, 2).unwrap(), ["line 0", "line 1"]);
        assert_eq!(
            r.read(5_000, 3).unwrap(),
            ["line 5000", "line 5001", "line 5002"]
        );
        assert_eq!(r.read(9_999, 10).unwrap(), ["line 9999", "", "crlf"]);
        assert!(r.read(20_000, 5).unwrap().is_empty());
        let mut w = LogWriter::create(d.path(), "a").unwrap();
        assert_eq!(w.lines(), 10_002);
        w.line("more");
        w.sync().unwrap();
        let mut r = LogReader::open(d.path(), "a").unwrap();
        assert_eq!(r.read(10_002, 1).unwrap(), ["more"]);
    }

    #[test]
    fn lines_written_past_the_index_before_a_crash_are_recovered() {
        let d = tempfile::tempdir().unwrap();
        let mut w = LogWriter::create(d.path(), "b").unwrap();
        w.line("indexed");
        w.sync().unwrap();
        drop(w);
        // A crash between the log write and the index write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(log_path(d.path(), "b"))
            .unwrap();
        f.write_all(b"unindexed 1\nunindexed 2\npartial").unwrap();
        let mut r = LogReader::open(d.path(), "b").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r.read(0, 10).unwrap(),
            ["indexed", "unindexed 1", "unindexed 2"]
        );
        // A writer continues after the last complete line.
        let mut w = LogWriter::create(d.path(), "b").unwrap();
        w.line("after");
        w.sync().unwrap();
        let mut r = LogReader::open(d.path(), "b").unwrap();
        assert_eq!(r.read(3, 1).unwrap(), ["after"]);
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn bulk_chunks_index_every_line_and_mix_with_single_lines() {
        let d = tempfile::tempdir().unwrap();
        let mut w = LogWriter::create(d.path(), "k").unwrap();
        w.line("first");
        w.chunk(b"a\nb\r\n\nc\n");
        w.line("last");
        w.sync().unwrap();
        let mut r = LogReader::open(d.path(), "k").unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r.read(0, 10).unwrap(), ["first", "a", "b", "", "c", "last"]);
        assert_eq!(r.read(2, 2).unwrap(), ["b", ""]);
    }

    #[test]
    fn flush_reports_the_line_count_once_per_change() {
        let d = tempfile::tempdir().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut w = LogWriter::create(d.path(), "c")
            .unwrap()
            .on_flush(Box::new(move |n| s2.lock().unwrap().push(n)));
        w.line("x");
        LogSink::flush(&mut w);
        LogSink::flush(&mut w);
        w.line("y");
        w.line("z");
        LogSink::flush(&mut w);
        assert_eq!(*seen.lock().unwrap(), [1, 3]);
    }
}
