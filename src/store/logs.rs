//! Action logs: one append-only file per action execution
//! (`logs/<id>.log`) and a sparse line index beside it (`logs/<id>.idx`:
//! the byte offset where every 64th line ends, 8 bytes little-endian per
//! entry). Any line range is read with one index lookup and one sequential
//! read of at most 63 lines more than the range: O(range), without loading
//! the file, for an index 1/500 of the log's size. A log shorter than 64
//! lines has no index file (it is made with the first entry): most actions
//! print fewer, and a file made is a file the system must allocate.
//!
//! The log is written before its index, so every indexed line is on disk.
//! After a crash a reader also picks up complete lines past the index.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::providers::LogSink;

/// Lines per index entry.
pub const STRIDE: u64 = 64;

pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.log"))
}

fn idx_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.idx"))
}

fn ts_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.ts"))
}

/// When lines reached the disk: `(lines on disk, unix milliseconds)` at
/// each flush (at most every 40 ms while a build prints). A line's time is
/// that of the first flush that included it.
pub fn read_times(dir: &Path, id: &str) -> io::Result<Vec<(u64, u64)>> {
    let bytes = match std::fs::read(ts_path(dir, id)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(16)
        .map(|c| {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&c[..8]);
            b.copy_from_slice(&c[8..]);
            (u64::from_le_bytes(a), u64::from_le_bytes(b))
        })
        .collect())
}

/// The time of line `line` (0-based) from [`read_times`].
pub fn time_of(times: &[(u64, u64)], line: u64) -> Option<u64> {
    let i = times.partition_point(|(n, _)| *n <= line);
    times.get(i).map(|(_, t)| *t)
}

/// Called with the number of lines on disk after each flush.
pub type Notify = Box<dyn FnMut(u64) + Send>;

pub struct LogWriter {
    log: BufWriter<File>,
    /// Opened with its first entry.
    idx: Option<BufWriter<File>>,
    idx_path: PathBuf,
    ts: File,
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
        let (end, lines, entries, tail_base, tail, indexed) = match &reader {
            Some(r) => (
                r.complete_end(),
                r.len(),
                r.entries,
                r.entries * STRIDE,
                r.tail.clone(),
                r.idx.is_some(),
            ),
            None => (0, 0, 0, 0, Vec::new(), false),
        };
        drop(reader);
        let mut log = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(log_path(dir, id))?;
        log.set_len(end)?;
        log.seek(SeekFrom::Start(end))?;
        let idx_path = idx_path(dir, id);
        // An index on disk is cut to its valid entries now (a torn one is
        // never trusted later).
        let mut idx = None;
        if indexed {
            index(&mut idx, &idx_path, entries)?;
        }
        // Lines a crash left past the index are indexed now.
        for (i, e) in tail.iter().enumerate() {
            if (tail_base + i as u64 + 1).is_multiple_of(STRIDE) {
                index(&mut idx, &idx_path, entries)?.write_all(&e.to_le_bytes())?;
            }
        }
        let ts = OpenOptions::new()
            .create(true)
            .append(true)
            .open(ts_path(dir, id))?;
        Ok(LogWriter {
            ts,
            log: BufWriter::with_capacity(256 * 1024, log),
            idx,
            idx_path,
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

    /// The first write error, if any (later lines are dropped). The
    /// engine fails the action with it.
    pub fn error(&self) -> Option<&io::Error> {
        self.failed.as_ref()
    }

    fn line_ended(&mut self) -> io::Result<()> {
        self.lines += 1;
        if self.lines.is_multiple_of(STRIDE) {
            index(&mut self.idx, &self.idx_path, 0)?.write_all(&self.end.to_le_bytes())?;
        }
        Ok(())
    }

    fn append(&mut self, line: &str) -> io::Result<()> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        self.log.write_all(line.as_bytes())?;
        self.log.write_all(b"\n")?;
        self.end += line.len() as u64 + 1;
        self.line_ended()
    }

    fn append_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.log.write_all(data)?;
        let base = self.end;
        for p in memchr::memchr_iter(b'\n', data) {
            self.end = base + p as u64 + 1;
            self.line_ended()?;
        }
        self.end = base + data.len() as u64;
        Ok(())
    }

    /// Writes buffered lines to the OS (log first, then index) and reports
    /// the new line count.
    pub fn sync(&mut self) -> io::Result<()> {
        self.log.flush()?;
        if let Some(idx) = self.idx.as_mut() {
            idx.flush()?;
        }
        if self.lines != self.reported {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let mut rec = [0u8; 16];
            rec[..8].copy_from_slice(&self.lines.to_le_bytes());
            rec[8..].copy_from_slice(&ms.to_le_bytes());
            self.ts.write_all(&rec)?;
            self.reported = self.lines;
            if let Some(n) = self.notify.as_mut() {
                n(self.lines);
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: io::Error) {
        tracing::error!(error = %e, "log write failed");
        self.failed = Some(e);
    }
}

/// The open index, opened the first time: cut to `entries` entries and
/// positioned after them.
fn index<'a>(
    idx: &'a mut Option<BufWriter<File>>,
    path: &Path,
    entries: u64,
) -> io::Result<&'a mut BufWriter<File>> {
    if idx.is_none() {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        f.set_len(entries * 8)?;
        f.seek(SeekFrom::Start(entries * 8))?;
        *idx = Some(BufWriter::with_capacity(8 * 1024, f));
    }
    idx.as_mut()
        .ok_or_else(|| io::Error::other("the log's index cannot be opened"))
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
            self.fail(e);
        }
    }

    fn chunk(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.append_chunk(data) {
            self.fail(e);
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
    idx: Option<File>,
    /// Index entries on disk: lines `0 .. entries * STRIDE` are indexed.
    entries: u64,
    /// Where line `entries * STRIDE` starts.
    indexed_end: u64,
    /// End offsets of the complete lines after the indexed ones.
    tail: Vec<u64>,
}

impl LogReader {
    pub fn open(dir: &Path, id: &str) -> io::Result<LogReader> {
        let mut log = File::open(log_path(dir, id))?;
        // No index yet: a log shorter than one stride.
        let mut idx = match File::open(idx_path(dir, id)) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let len = log.metadata()?.len();
        let mut entries = match &idx {
            Some(f) => f.metadata()?.len() / 8,
            None => 0,
        };
        let mut indexed_end = 0;
        // The last entry must point inside the log (a torn write is ignored).
        while let Some(idx) = idx.as_mut().filter(|_| entries > 0) {
            idx.seek(SeekFrom::Start((entries - 1) * 8))?;
            let mut b = [0u8; 8];
            idx.read_exact(&mut b)?;
            let e = u64::from_le_bytes(b);
            if e <= len {
                indexed_end = e;
                break;
            }
            entries -= 1;
        }
        let mut tail = Vec::new();
        if len > indexed_end {
            log.seek(SeekFrom::Start(indexed_end))?;
            let mut rest = Vec::new();
            log.read_to_end(&mut rest)?;
            tail.extend(memchr::memchr_iter(b'\n', &rest).map(|i| indexed_end + i as u64 + 1));
        }
        Ok(LogReader {
            log,
            idx,
            entries,
            indexed_end,
            tail,
        })
    }

    /// Complete lines in the log.
    pub fn len(&self) -> u64 {
        self.entries * STRIDE + self.tail.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offset after the last complete line.
    fn complete_end(&self) -> u64 {
        self.tail.last().copied().unwrap_or(self.indexed_end)
    }

    /// Where line `i` starts, and how many lines to skip from there.
    fn seek_point(&mut self, i: u64) -> io::Result<(u64, u64)> {
        let indexed = self.entries * STRIDE;
        if i >= indexed {
            let t = (i - indexed) as usize;
            let at = if t == 0 {
                self.indexed_end
            } else {
                self.tail[t - 1]
            };
            return Ok((at, 0));
        }
        let block = i / STRIDE;
        let at = if block == 0 {
            0
        } else {
            // `block < entries`, so the index exists.
            let idx = self
                .idx
                .as_mut()
                .ok_or_else(|| io::Error::other("the log's index is missing"))?;
            idx.seek(SeekFrom::Start((block - 1) * 8))?;
            let mut b = [0u8; 8];
            idx.read_exact(&mut b)?;
            u64::from_le_bytes(b)
        };
        Ok((at, i - block * STRIDE))
    }

    /// Lines `start .. start + count` (0-based), fewer at the end.
    pub fn read(&mut self, start: u64, count: u64) -> io::Result<Vec<String>> {
        let total = self.len();
        if start >= total || count == 0 {
            return Ok(Vec::new());
        }
        let count = count.min(total - start);
        let (at, mut skip) = self.seek_point(start)?;
        let limit = self.complete_end() - at;
        self.log.seek(SeekFrom::Start(at))?;
        let mut r = BufReader::with_capacity(64 * 1024, (&self.log).take(limit));
        let mut out = Vec::with_capacity(count.min(100_000) as usize);
        let mut buf = Vec::new();
        while (out.len() as u64) < count {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let l = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            out.push(String::from_utf8_lossy(l).into_owned());
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
    fn every_range_matches_across_index_strides_and_a_crash_tail() {
        let d = tempfile::tempdir().unwrap();
        let mut model = Vec::new();
        let mut w = LogWriter::create(d.path(), "m").unwrap();
        for i in 0..200 {
            model.push(format!("l{i}"));
            w.line(&model[i]);
        }
        w.sync().unwrap();
        drop(w);
        // A crash: 100 lines reached the log, not the index.
        let mut f = OpenOptions::new()
            .append(true)
            .open(log_path(d.path(), "m"))
            .unwrap();
        for i in 200..300 {
            model.push(format!("l{i}"));
            writeln!(f, "l{i}").unwrap();
        }
        drop(f);
        let check = |model: &[String]| {
            let mut r = LogReader::open(d.path(), "m").unwrap();
            assert_eq!(r.len(), model.len() as u64);
            for start in [0, 1, 63, 64, 65, 127, 128, 190, 199, 200, 256, 299] {
                for count in [1, 2, 64, 70, 500] {
                    let want: Vec<String> = model.iter().skip(start).take(count).cloned().collect();
                    assert_eq!(
                        r.read(start as u64, count as u64).unwrap(),
                        want,
                        "{start}+{count}"
                    );
                }
            }
        };
        check(&model);
        // A writer continues: the tail gets indexed, new lines follow.
        let mut w = LogWriter::create(d.path(), "m").unwrap();
        for i in 300..330 {
            model.push(format!("l{i}"));
            w.line(&model[i]);
        }
        w.sync().unwrap();
        drop(w);
        assert_eq!(
            std::fs::metadata(d.path().join("m.idx")).unwrap().len(),
            (330 / STRIDE) * 8
        );
        check(&model);
    }

    #[test]
    fn a_short_log_has_no_index_file_until_its_first_stride() {
        let d = tempfile::tempdir().unwrap();
        let idx = d.path().join("s.idx");
        let mut w = LogWriter::create(d.path(), "s").unwrap();
        for i in 0..63 {
            w.line(&format!("l{i}"));
        }
        w.sync().unwrap();
        assert!(!idx.exists(), "63 lines need no index");
        let mut r = LogReader::open(d.path(), "s").unwrap();
        assert_eq!(r.len(), 63);
        assert_eq!(r.read(60, 10).unwrap(), vec!["l60", "l61", "l62"]);
        assert!(!idx.exists(), "reading does not make one");
        drop(w);
        // A writer that continues the short log makes it at line 64.
        let mut w = LogWriter::create(d.path(), "s").unwrap();
        for i in 63..130 {
            w.line(&format!("l{i}"));
        }
        drop(w);
        assert_eq!(std::fs::metadata(&idx).unwrap().len(), 2 * 8);
        let mut r = LogReader::open(d.path(), "s").unwrap();
        assert_eq!(r.len(), 130);
        assert_eq!(r.read(62, 3).unwrap(), vec!["l62", "l63", "l64"]);
        assert_eq!(r.read(127, 5).unwrap(), vec!["l127", "l128", "l129"]);
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
