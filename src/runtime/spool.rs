//! A dyno's bounded output spool, `<state-dir>/output.jsonl`, written by its shim and read by
//! the daemon (which records how far it has read in `daemon.offset`).
//!
//! The file only grows (offsets stay valid for the daemon, also across a daemon restart), but
//! what it holds on disk is bounded: at most [`SPOOL_CAP`] bytes may be written past the
//! daemon's offset; lines that would go beyond are held back, the newest 64 kB of them, and
//! older ones are dropped and counted (the dyno is never blocked). A full spool takes lines
//! again once the daemon has read half of it ([`RESUME_AT`] free): then a record says how many
//! were lost ([`OutputLine::dropped`], shown as Heroku's L10), the held lines follow, and so
//! does a run of at least `RESUME_AT` bytes of new lines, so reports stay rare without pacing
//! the stream by a clock (a once-a-second report limit capped a flood at ~70k lines/s, one
//! spool a second). What the daemon has read is given back to
//! the filesystem with `FALLOC_FL_PUNCH_HOLE` once more than [`PUNCH_AT`] bytes of it pile up,
//! so the file is sparse and its blocks stay under `SPOOL_CAP + PUNCH_AT`.

use super::OutputLine;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Most bytes a spool holds that the daemon has not read yet.
pub const SPOOL_CAP: u64 = 8 << 20;
/// Bytes already read that are kept before they are punched out (a short spool is never
/// punched: a release phase's whole output stays readable).
pub const PUNCH_AT: u64 = 4 << 20;
/// Room a full spool waits for before it takes lines again.
pub const RESUME_AT: u64 = SPOOL_CAP / 2;
/// How often a full spool re-reads the daemon's offset.
const RECHECK: Duration = Duration::from_millis(10);

/// `stream` of the record that reports dropped lines.
pub const DROPPED_STREAM: &str = "dropped";

pub struct Spool {
    w: std::io::BufWriter<File>,
    offset_file: PathBuf,
    /// Bytes written (buffered included) since the file was empty.
    written: u64,
    /// The daemon's offset when last read.
    consumed: u64,
    /// Everything below this is a hole.
    punched: u64,
    checked: Option<Instant>,
    /// Set when a line did not fit; cleared once [`RESUME_AT`] bytes are free again.
    full: bool,
    dropped: u64,
    dropped_since: Option<String>,
    /// The newest lines that did not fit, oldest first, with their time and stream.
    held: VecDeque<(Rc<str>, &'static str, Vec<u8>)>,
    held_bytes: usize,
    held_ts: Option<Rc<str>>,
    line: Vec<u8>,
}

/// Bytes of the newest lines held back while the spool is full.
pub const KEEP_NEWEST: usize = 64 * 1024;
/// What a held line costs besides its bytes (bounds their number too).
const HELD_OVERHEAD: usize = 64;

/// A generous estimate of a line's record (JSON escaping may grow it), with room for a report.
fn record_estimate(ts: &str, line: &[u8], dropped: u64) -> u64 {
    line.len() as u64 + ts.len() as u64 + 64 + if dropped > 0 { 128 } else { 0 }
}

impl Spool {
    pub fn open(state_dir: &Path) -> std::io::Result<Spool> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join("output.jsonl"))?;
        let written = f.metadata()?.len();
        let mut s = Spool {
            w: std::io::BufWriter::with_capacity(64 * 1024, f),
            offset_file: state_dir.join("daemon.offset"),
            written,
            consumed: 0,
            punched: 0,
            checked: None,
            full: false,
            dropped: 0,
            dropped_since: None,
            held: VecDeque::new(),
            held_bytes: 0,
            held_ts: None,
            line: Vec::with_capacity(256),
        };
        s.read_offset();
        Ok(s)
    }

    fn read_offset(&mut self) {
        self.checked = Some(Instant::now());
        if let Some(n) = std::fs::read_to_string(&self.offset_file)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            self.consumed = n.min(self.written);
        }
        // Give back what has been read, a page-aligned range at a time.
        let end = self.consumed & !4095;
        if end >= self.punched + PUNCH_AT {
            // SAFETY: fallocate(2) on our own file; a failure only leaves the blocks in place.
            let r = unsafe {
                libc::fallocate(
                    self.w.get_ref().as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    self.punched as libc::off_t,
                    (end - self.punched) as libc::off_t,
                )
            };
            if r == 0 {
                self.punched = end;
            }
        }
    }

    /// Whether `len` more bytes fit under the cap (re-reading the daemon's offset, at most every
    /// [`RECHECK`], when they seem not to). A spool that was full needs [`RESUME_AT`] free.
    fn fits(&mut self, len: u64) -> bool {
        let room = |s: &Self| {
            let cap = if s.full {
                SPOOL_CAP - RESUME_AT
            } else {
                SPOOL_CAP
            };
            s.written + len <= s.consumed + cap
        };
        if !room(self) && self.checked.is_none_or(|t| t.elapsed() >= RECHECK) {
            self.read_offset();
        }
        let fits = room(self);
        self.full = !fits;
        fits
    }

    fn write_record(&mut self, rec: &OutputLine) {
        self.line.clear();
        if serde_json::to_writer(&mut self.line, rec).is_err() {
            return;
        }
        self.line.push(b'\n');
        if self.w.write_all(&self.line).is_ok() {
            self.written += self.line.len() as u64;
        }
    }

    /// Appends one line of the dyno's `stream` (`out`/`err`). When the daemon is too far
    /// behind, the line is held back with the newest others (up to [`KEEP_NEWEST`] bytes) and
    /// older held ones are dropped and counted: after a flood, its last lines (a final message,
    /// a crash's trace) still reach the log.
    pub fn line(&mut self, ts: &str, stream: &'static str, line: &[u8]) {
        if !self.held.is_empty() {
            self.release();
        }
        if self.held.is_empty() && self.fits(record_estimate(ts, line, self.dropped)) {
            if self.dropped > 0 {
                self.report(ts);
            }
            self.write_line(ts, stream, line);
            return;
        }
        let ts = match &self.held_ts {
            Some(t) if **t == *ts => t.clone(),
            _ => {
                let t: Rc<str> = ts.into();
                self.held_ts = Some(t.clone());
                t
            }
        };
        self.held_bytes += line.len() + HELD_OVERHEAD;
        self.held.push_back((ts, stream, line.to_vec()));
        while self.held_bytes > KEEP_NEWEST && self.held.len() > 1 {
            let (ts, _, l) = self.held.pop_front().expect("not empty");
            self.held_bytes -= l.len() + HELD_OVERHEAD;
            self.dropped += 1;
            if self.dropped_since.is_none() {
                self.dropped_since = Some(ts.to_string());
            }
        }
    }

    /// Whether lines are held back (the shim then calls [`Spool::release`] now and then).
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Writes the held lines that fit now (after the report of the dropped ones).
    pub fn release(&mut self) {
        while let Some((ts, _, l)) = self.held.front() {
            if !self.fits(record_estimate(ts, l, self.dropped)) {
                return;
            }
            let (ts, stream, l) = self.held.pop_front().expect("not empty");
            self.held_bytes -= l.len() + HELD_OVERHEAD;
            if self.dropped > 0 {
                self.report(&ts);
            }
            self.write_line(&ts, stream, &l);
        }
    }

    fn write_line(&mut self, ts: &str, stream: &str, line: &[u8]) {
        let rec = OutputLine {
            ts: ts.to_string(),
            stream: stream.to_string(),
            line: String::from_utf8_lossy(line).into_owned(),
            dropped: 0,
        };
        self.write_record(&rec);
    }

    pub fn flush(&mut self) {
        let _ = self.w.flush();
    }

    /// At the dyno's end: the count of dropped lines, then the held ones, whatever the cap
    /// (at most [`KEEP_NEWEST`] bytes more).
    pub fn finish(&mut self, ts: &str) {
        if self.dropped > 0 {
            self.report(ts);
        }
        while let Some((ts, stream, l)) = self.held.pop_front() {
            self.write_line(&ts, stream, &l);
        }
        self.held_bytes = 0;
        self.flush();
    }

    /// The stream always says what it lost before it goes on: called before the first line
    /// written after drops.
    fn report(&mut self, ts: &str) {
        let rec = OutputLine {
            ts: ts.to_string(),
            stream: DROPPED_STREAM.into(),
            line: self.dropped_since.take().unwrap_or_default(),
            dropped: std::mem::take(&mut self.dropped),
        };
        self.write_record(&rec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn bounded_on_disk_drops_counted_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        let ts = "2026-12-07T00:00:00.000000Z";
        for _ in 0..400_000 {
            s.line(ts, "out", b"y");
        }
        s.flush();
        let path = dir.path().join("output.jsonl");
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= SPOOL_CAP, "{len}");
        assert!(s.dropped > 0);
        // The daemon reads everything: the next line reports the drops, the space comes back.
        std::fs::write(dir.path().join("daemon.offset"), len.to_string()).unwrap();
        s.checked = None;
        for _ in 0..400_000 {
            s.line(ts, "out", b"y");
        }
        s.finish(ts);
        let text = std::fs::read(&path).unwrap();
        let reports: Vec<OutputLine> = text
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice::<OutputLine>(l).ok())
            .filter(|l| l.stream == DROPPED_STREAM)
            .collect();
        assert_eq!(
            reports.len(),
            2,
            "one report after catching up, one at the end"
        );
        assert!(reports.iter().all(|r| r.dropped > 0 && r.line == ts));
        let m = std::fs::metadata(&path).unwrap();
        assert!(m.len() > SPOOL_CAP);
        assert!(
            m.blocks() * 512 <= SPOOL_CAP + PUNCH_AT + (1 << 20),
            "{}",
            m.blocks()
        );
    }

    /// A full spool waits for half of it to be read, then takes lines at once (no clock):
    /// one report per resumption, however fast the daemon reads.
    #[test]
    fn full_spool_resumes_at_half_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        let ts = "2026-12-07T00:00:00.000000Z";
        let line = [b'x'; 100];
        let offset = |s: &mut Spool, n: u64| {
            std::fs::write(dir.path().join("daemon.offset"), n.to_string()).unwrap();
            s.checked = None;
        };
        while !s.full {
            s.line(ts, "out", &line);
        }
        let full_at = s.written;
        // A quarter read: still full, everything new is held or dropped.
        offset(&mut s, full_at / 4);
        for _ in 0..1000 {
            s.line(ts, "out", &line);
        }
        assert_eq!(s.written, full_at);
        assert!(s.dropped > 0);
        // Past half: the report, then lines, right away and repeatedly (what was read is
        // punched out, so each round's records are read back from where it began).
        for round in 1..=5u64 {
            let to = s.written - RESUME_AT / 2;
            offset(&mut s, to);
            let before = s.written;
            for _ in 0..200_000 {
                s.line(ts, "out", &line);
            }
            assert!(s.written - before >= RESUME_AT, "round {round}");
            s.flush();
            let text = std::fs::read(dir.path().join("output.jsonl")).unwrap();
            let records: Vec<OutputLine> = text[before as usize..]
                .split(|b| *b == b'\n')
                .filter_map(|l| serde_json::from_slice::<OutputLine>(l).ok())
                .collect();
            assert_eq!(records[0].stream, DROPPED_STREAM, "round {round}");
            assert!(records[0].dropped > 0);
            let reports = records.iter().filter(|r| r.stream == DROPPED_STREAM);
            assert_eq!(reports.count(), 1, "round {round}");
        }
    }
}
