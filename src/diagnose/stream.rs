//! Diagnosing a log as it is read (a file, a pipe), without holding it.
//!
//! One pass over the lines ([`Scan`]) runs every rule's patterns and keeps
//! the findings; a command's output is taken back when the command turns
//! out to have succeeded. Beside it, [`Keep`] holds what the handlers and
//! the fallback read afterwards, so memory does not grow with the log:
//!
//! - the lines before and after each line that starts a finding
//!   ([`BEFORE`] from a ring of the last lines, [`AFTER`]), and each line
//!   of evidence;
//! - every framing line (anything with `[Container]`);
//! - at a failed command's end and at the end of the log, the ring (the
//!   fallback's window), the command's last output line, the lines a
//!   format checker listed, and the few lines further back the fallback
//!   would still score ([`Best`]);
//! - the lines tool reports are looked up by anywhere in the log: pytest
//!   section headers and their sections, cargo's `---- test stdout ----`,
//!   node's `test at FILE`, Go's `=== RUN` and the first `file.go:N:` after
//!   it, the last `[Deploy] … % of traffic on` line.
//!
//! The rest of the diagnosis then runs over that excerpt, in which one
//! [`fallback::GAP`] line stands for each run of lines left out (its
//! count keeps the fallback's distances those of the file), and line
//! numbers are mapped back to the file's.
//!
//! Limits (none is reached by an ordinary build log): a line is read up
//! to [`MAX_LINE`] bytes; the ring holds at most [`BEFORE_BYTES`]; context
//! is kept for at most [`MAX_KEPT`] lines in all (further findings keep
//! their own lines only); at most [`MAX_FRAMING`] framing lines and
//! [`MAX_REPORT`] lines of each tool-report kind are kept.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead};
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::framing::{self, Outcome};
use super::{
    Acc, Catalogue, Evidence, Finding, Hit, Input, apply, clean_line, conclude, fallback, handlers,
    needs_cleaning,
};

/// Longest line read, in bytes: the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 << 10;
/// Lines kept before a line that starts a finding, a failed command's end
/// and the end of the log: the fallback's window.
const BEFORE: usize = fallback::SCORED_WINDOW;
/// The most bytes those lines hold.
const BEFORE_BYTES: usize = 16 << 20;
/// Lines kept after a line that starts a finding (the handlers read at
/// most 400 ahead).
const AFTER: usize = 401;
/// Lines kept as context at most.
const MAX_KEPT: usize = 200_000;
const MAX_FRAMING: usize = 100_000;
const MAX_REPORT: usize = 10_000;
/// Earlier lines kept per range the fallback may score (it shows 3).
const BEST: usize = 8;

static CONTAINER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"[Container]"));

/// A diagnosis of a log read from a reader.
#[derive(Debug)]
pub struct Streamed {
    pub findings: Vec<Finding>,
    /// The log's lines.
    pub lines: usize,
    /// Of them, those held for the rules.
    pub kept: usize,
}

/// Diagnoses the log `r` gives, a line at a time (lossy UTF-8, `\n` or
/// `\r\n`, as `str::lines` splits the text); `input` gives the rest (its
/// `log` is not read). The findings are those [`super::diagnose`] gives for
/// the same lines, with the file's line numbers.
pub fn diagnose_reader(
    r: impl BufRead,
    input: &Input,
    catalogue: &Catalogue,
) -> io::Result<Streamed> {
    let mut reader = Lines { r };
    let mut scan = Scan::new(catalogue);
    let mut keep = Keep::default();
    let mut raw = Vec::new();
    let mut n = 0;
    while reader.next(&mut raw)? {
        // Valid UTF-8 (nearly every line) is checked by the faster
        // validator; only a line with invalid bytes is decoded lossily.
        let text = match std::str::from_utf8(&raw) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(&raw),
        };
        let cleaned;
        let text: &str = if needs_cleaning(&text) {
            cleaned = clean_line(&text);
            &cleaned
        } else {
            &text
        };
        let step = scan.line(n, text);
        keep.line(n, text, &step);
        n += 1;
    }
    let (log, real) = keep.finish(n);
    let mut acc = scan.finish();
    let to_excerpt = |i: usize| real.partition_point(|&r| r < i);
    for g in &mut acc.groups {
        g.first = to_excerpt(g.first);
        if let Some(p) = g.vars.get_mut("_pos")
            && let Ok(i) = p.parse::<usize>()
        {
            *p = to_excerpt(i).to_string();
        }
        for e in &mut g.evidence {
            if let Evidence::LogLine { line, .. } = e {
                *line = to_excerpt(*line - 1) + 1;
            }
        }
    }
    let mut findings = conclude(
        &Input {
            log: &log,
            ..*input
        },
        catalogue,
        acc,
    );
    for f in &mut findings {
        for e in &mut f.evidence {
            if let Evidence::LogLine { line, .. } = e
                && let Some(r) = real.get(*line - 1)
            {
                *line = r + 1;
            }
        }
    }
    Ok(Streamed {
        findings,
        lines: n,
        kept: real.len(),
    })
}

/// Lines of at most [`MAX_LINE`] bytes, without their `\n` (and the `\r`
/// before it).
struct Lines<R> {
    r: R,
}

impl<R: BufRead> Lines<R> {
    /// The next line into `buf`; `false` at the end.
    fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        let mut any = false;
        let mut cut = false;
        loop {
            let avail = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(any);
            }
            any = true;
            let (chunk, used, end) = match memchr::memchr(b'\n', avail) {
                Some(k) => (&avail[..k], k + 1, true),
                None => (avail, avail.len(), false),
            };
            let room = MAX_LINE - buf.len();
            cut |= chunk.len() > room;
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.r.consume(used);
            if end {
                if !cut && buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(true);
            }
        }
    }
}

/// What a line did: to the findings, and to the framing.
pub(crate) struct Step {
    hit: Hit,
    /// It ended the running command, so.
    closed: Option<Outcome>,
    /// It starts a command (`Running command C`).
    opened: bool,
}

/// The pass over the log's lines: the findings every rule's patterns give.
/// The output of a command that succeeded did not fail the build: its
/// alarming lines (a retried download, a test that checks an error path)
/// are taken back when its end is read.
pub(crate) struct Scan<'c> {
    cat: &'c Catalogue,
    acc: Acc,
    cands: Vec<(usize, usize)>,
    open: bool,
    /// The findings before the first match in the running command's output.
    before: Option<Acc>,
}

impl<'c> Scan<'c> {
    pub(crate) fn new(cat: &'c Catalogue) -> Scan<'c> {
        Scan {
            cat,
            acc: Acc::default(),
            cands: Vec::new(),
            open: false,
            before: None,
        }
    }

    /// Line `i` (0-based), in order.
    pub(crate) fn line(&mut self, i: usize, line: &str) -> Step {
        let mut closed = None;
        let mut opened = false;
        if line.starts_with("[Container] ")
            && let Some(body) = framing::container(line)
        {
            if self.open {
                let o = framing::outcome(line, body);
                if o == Outcome::Succeeded
                    && let Some(b) = self.before.take()
                {
                    self.acc = b;
                }
                self.before = None;
                self.open = false;
                closed = Some(o);
            }
            opened = body.starts_with("Running command ");
        }
        self.cat.candidates(line, &mut self.cands);
        let mut hit = Hit::None;
        if !self.cands.is_empty() {
            if self.open && self.before.is_none() {
                self.before = Some(self.acc.clone());
            }
            hit = apply(
                self.cat,
                &mut self.acc,
                line,
                i,
                || Evidence::LogLine {
                    line: i + 1,
                    text: line.to_owned(),
                },
                &self.cands,
            );
        }
        if opened {
            self.open = true;
        }
        Step {
            hit,
            closed,
            opened,
        }
    }

    pub(crate) fn finish(self) -> Acc {
        self.acc
    }
}

/// The lines of a range, further back than the fallback's window, that it
/// would still score (a strong error word, outside a boxed warning): the
/// best few of distinct text, best first. Out there the nearness to the
/// failure adds less than 0.0025 and scores differ by 0.003 at least, so
/// the score and then the later line decide, wherever the failure is.
#[derive(Default)]
struct Best {
    top: Vec<(f32, usize, String)>,
}

impl Best {
    fn offer(&mut self, score: f32, i: usize, text: &str) {
        let t = text.trim();
        // The later of two equal lines is nearer the failure.
        self.top.retain(|(_, _, x)| x.trim() != t);
        let at = self
            .top
            .iter()
            .position(|(s, j, _)| score > s + 1e-4 || ((score - s).abs() <= 1e-4 && i > *j))
            .unwrap_or(self.top.len());
        if at < BEST {
            self.top.insert(at, (score, i, text.to_owned()));
            self.top.truncate(BEST);
        }
    }

    fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.top.iter().map(|(_, i, t)| (*i, t.as_str()))
    }
}

struct Held {
    i: usize,
    text: String,
    /// Inside a boxed warning (`│ Warning:` …), which the fallback skips.
    boxed: bool,
}

/// What the diagnosis reads once the log has been read (module comment).
#[derive(Default)]
struct Keep {
    /// The last [`BEFORE`] lines.
    ring: VecDeque<Held>,
    ring_bytes: usize,
    spare: Vec<String>,
    kept: BTreeMap<usize, String>,
    /// Kept for findings in the running command's output: dropped with
    /// them when it succeeds.
    pending: BTreeMap<usize, String>,
    in_cmd: bool,
    cmd_run: usize,
    /// Lines before this one are kept (after a finding's first line);
    /// before `until_kept` for findings that stay whatever the running
    /// command does.
    until: usize,
    until_kept: usize,
    boxed: bool,
    all_best: Best,
    cmd_best: Best,
    /// The running command's last `$ cmd` / `> cmd` line (a package.json
    /// script's echo) and the lines under it.
    script: Option<(usize, String)>,
    script_best: Best,
    /// The last output line (not blank, not framing) of the log and of
    /// the running command; its text once it left the ring.
    last_out: Option<usize>,
    last_out_text: Option<(usize, String)>,
    cmd_last_out: Option<usize>,
    cmd_last_out_text: Option<(usize, String)>,
    traffic: Option<(usize, String)>,
    /// The running command checks formatting; the paths it listed.
    cmd_format: bool,
    cmd_paths: usize,
    framing: usize,
    /// pytest headers, cargo test headers, node test locations, Go runs.
    reports: [usize; 4],
    /// Lines still kept of a pytest section, of a cargo test's output.
    section_left: usize,
    cargo_left: usize,
    node_next: bool,
    go_want: bool,
}

impl Keep {
    fn room(&self) -> bool {
        self.kept.len() + self.pending.len() < MAX_KEPT
    }

    /// Keeps line `i` for the findings in the running command's output, or
    /// for good outside one.
    fn hold(&mut self, i: usize, text: &str) {
        if self.kept.contains_key(&i) {
            return;
        }
        let to = if self.in_cmd {
            &mut self.pending
        } else {
            &mut self.kept
        };
        to.entry(i).or_insert_with(|| text.to_owned());
    }

    fn keep(&mut self, i: usize, text: &str) {
        self.pending.remove(&i);
        self.kept.entry(i).or_insert_with(|| text.to_owned());
    }

    fn hold_ring(&mut self, good: bool) {
        let ring = std::mem::take(&mut self.ring);
        for h in &ring {
            if good {
                self.keep(h.i, &h.text);
            } else {
                self.hold(h.i, &h.text);
            }
        }
        self.ring = ring;
    }

    fn keep_best(&mut self, which: fn(&Keep) -> &Best) {
        let lines: Vec<(usize, String)> = which(self)
            .lines()
            .map(|(i, t)| (i, t.to_owned()))
            .collect();
        for (i, t) in lines {
            self.keep(i, &t);
        }
    }

    fn line(&mut self, i: usize, text: &str, step: &Step) {
        if let Some(o) = step.closed {
            self.in_cmd = false;
            if o == Outcome::Succeeded {
                self.pending.clear();
                self.until = self.until_kept;
            } else {
                for (k, v) in std::mem::take(&mut self.pending) {
                    self.kept.entry(k).or_insert(v);
                }
                self.until_kept = self.until;
            }
            if matches!(o, Outcome::Failed(_)) {
                // What the fallback reads of the failed command's output.
                self.hold_ring(true);
                self.keep_best(|k| &k.cmd_best);
                if let Some((j, t)) = self.cmd_last_out_text.take() {
                    self.keep(j, &t);
                }
            }
        }
        if step.hit == Hit::First && self.room() {
            self.hold_ring(false);
            if self.in_cmd {
                let lines: Vec<(usize, String)> = self
                    .cmd_best
                    .lines()
                    .chain(self.script_best.lines())
                    .map(|(j, t)| (j, t.to_owned()))
                    .chain(self.script.clone())
                    .collect();
                for (j, t) in lines {
                    self.hold(j, &t);
                }
            }
            if let Some((j, t)) = self.traffic.clone() {
                self.keep(j, &t);
            }
            self.until = self.until.max(i + 1 + AFTER);
            if !self.in_cmd {
                self.until_kept = self.until;
            }
        }
        let listed =
            self.in_cmd && self.cmd_format && self.cmd_paths < 5 && fallback::path_line(text) && {
                self.cmd_paths += 1;
                true
            };
        if i < self.until_kept {
            self.keep(i, text);
        } else if step.hit != Hit::None || i < self.until || listed {
            self.hold(i, text);
        }
        self.reports(i, text);
        self.push(i, text);
        if step.opened {
            self.in_cmd = true;
            self.cmd_run = i;
            self.cmd_best = Best::default();
            self.script = None;
            self.script_best = Best::default();
            self.cmd_last_out = None;
            self.cmd_last_out_text = None;
            self.cmd_format = framing::container(text)
                .and_then(|b| b.strip_prefix("Running command "))
                .is_some_and(|c| fallback::format_cmd(c.trim()));
            self.cmd_paths = 0;
        }
    }

    /// The lines tool reports are looked up by anywhere in the log.
    fn reports(&mut self, i: usize, text: &str) {
        let mut keep = false;
        if self.section_left > 0 {
            self.section_left -= 1;
            keep = true;
            if text.starts_with("____") || text.starts_with("====") {
                self.section_left = 0;
            }
        }
        if self.cargo_left > 0 {
            self.cargo_left -= 1;
            keep = true;
        }
        if self.node_next {
            self.node_next = false;
            keep = true;
        }
        let t = text.trim();
        if text.starts_with('_') && self.reports[0] < MAX_REPORT && self.room() {
            // A pytest section: the handlers read up to 300 lines of it.
            self.reports[0] += 1;
            self.section_left = 300;
            keep = true;
        } else if t.starts_with("---- ")
            && t.ends_with(" stdout ----")
            && self.reports[1] < MAX_REPORT
        {
            self.reports[1] += 1;
            self.cargo_left = 12;
            keep = true;
        } else if text.starts_with("test at ") && self.reports[2] < MAX_REPORT {
            self.reports[2] += 1;
            self.node_next = true;
            keep = true;
        } else if text.starts_with("=== RUN   ") && self.reports[3] < MAX_REPORT {
            self.reports[3] += 1;
            self.go_want = true;
            keep = true;
        } else if self.go_want
            && text.starts_with(char::is_whitespace)
            && text.contains(".go:")
            && super::parsers::GO_LOC.is_match(text)
        {
            self.go_want = false;
            keep = true;
        }
        if text.starts_with("[Deploy] ") && handlers::traffic_group(text).is_some() {
            self.traffic = Some((i, text.to_owned()));
        }
        if self.framing < MAX_FRAMING && CONTAINER.find(text.as_bytes()).is_some() {
            self.framing += 1;
            keep = true;
        }
        if keep {
            self.keep(i, text);
        }
    }

    /// Line `i` into the ring; a line leaving it may still be scored.
    fn push(&mut self, i: usize, text: &str) {
        let boxed = if text.starts_with('│') || text.starts_with('╷') {
            if text.starts_with("│ Warning:") {
                self.boxed = true;
            }
            self.boxed
        } else {
            self.boxed = false;
            false
        };
        while self.ring.len() >= BEFORE
            || (!self.ring.is_empty() && self.ring_bytes + text.len() > BEFORE_BYTES)
        {
            let Some(h) = self.ring.pop_front() else {
                break;
            };
            self.ring_bytes -= h.text.len();
            self.leave(&h);
            self.spare.push(h.text);
        }
        if self.in_cmd
            && (text.starts_with("$ ") || (text.starts_with("> ") && !text.starts_with("> [")))
        {
            self.script = Some((i, text.to_owned()));
            self.script_best = Best::default();
        }
        if !text.trim().is_empty() && !text.starts_with("[Container]") {
            self.last_out = Some(i);
            if self.in_cmd {
                self.cmd_last_out = Some(i);
            }
        }
        let mut s = self.spare.pop().unwrap_or_default();
        s.clear();
        s.push_str(text);
        self.ring_bytes += s.len();
        self.ring.push_back(Held { i, text: s, boxed });
    }

    fn leave(&mut self, h: &Held) {
        if self.last_out == Some(h.i) {
            self.last_out_text = Some((h.i, h.text.clone()));
        }
        if self.cmd_last_out == Some(h.i) {
            self.cmd_last_out_text = Some((h.i, h.text.clone()));
        }
        if h.boxed || !fallback::strong(&h.text) {
            return;
        }
        let s = fallback::score(&h.text);
        if s <= 0.0 {
            return;
        }
        self.all_best.offer(s, h.i, &h.text);
        if self.in_cmd && h.i > self.cmd_run {
            self.cmd_best.offer(s, h.i, &h.text);
            if self.script.as_ref().is_some_and(|(e, _)| h.i > *e) {
                self.script_best.offer(s, h.i, &h.text);
            }
        }
    }

    /// The excerpt (a gap line for each run of lines left out) and, for
    /// each of its lines, the file's line index (a gap: its first line).
    fn finish(mut self, n: usize) -> (Vec<String>, Vec<usize>) {
        for (k, v) in std::mem::take(&mut self.pending) {
            self.kept.entry(k).or_insert(v);
        }
        self.hold_ring(true);
        self.keep_best(|k| &k.all_best);
        if let Some((j, t)) = self.last_out_text.take() {
            self.keep(j, &t);
        }
        if let Some((j, t)) = self.traffic.take() {
            self.keep(j, &t);
        }
        let mut log = Vec::with_capacity(self.kept.len() + 16);
        let mut real = Vec::with_capacity(self.kept.len() + 16);
        let mut next = 0;
        for (i, text) in std::mem::take(&mut self.kept) {
            if i > next {
                log.push(format!("{}{}", fallback::GAP, i - next));
                real.push(next);
            }
            log.push(text);
            real.push(i);
            next = i + 1;
        }
        if next < n {
            log.push(format!("{}{}", fallback::GAP, n - next));
            real.push(next);
        }
        (log, real)
    }
}
