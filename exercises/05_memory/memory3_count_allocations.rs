// memory3_count_allocations: measure allocations, then remove them
//
// Profile before you optimise. A `#[global_allocator]` sees every heap allocation the program
// makes, so a small counting wrapper around the system allocator is a profiler that a test can
// assert on. Here it shows that `BufRead::lines()` allocates a new `String` for every line.
// Reading with `read_line` into one `String` that you `clear()` each time reuses one buffer.
//
// Why it matters: a log shipper parses a few GB of access logs an hour. One allocation per line
// is millions of malloc/free calls and a fragmented heap; the same code with one reused buffer
// makes a handful. Real profilers (heaptrack, dhat, jemalloc's stats) count the same things.
//
// What to do: in `summarize`, replace the `lines()` loop with a `read_line` loop over one
// reused `String`. The allocator below is given: read it, do not change it.
// Run `backlings hint` if you are stuck.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, BufRead};

// ---- The profiler (given) -------------------------------------------------------------------

thread_local! {
    // Per-thread counters: tests run in parallel threads, and each test must see only its own
    // allocations. Plain `Cell`s with const initialisers never allocate, which matters inside an
    // allocator.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn record_alloc(size: usize) {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = LIVE_BYTES.try_with(|live| {
        live.set(live.get() + size as i64);
        let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

fn record_free(size: usize) {
    let _ = LIVE_BYTES.try_with(|live| live.set(live.get() - size as i64));
}

/// The system allocator, plus counters.
pub struct CountingAlloc;

// The one place in this workspace where `unsafe` is allowed: implementing `GlobalAlloc` is
// unsafe by definition.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record_alloc(layout.size());
        // SAFETY: we forward the caller's arguments unchanged, under the same contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record_free(layout.size());
        // SAFETY: `ptr` came from `System` through `alloc` or `realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A grow or shrink counts as one allocation (it may move the data).
        record_alloc(new_size);
        record_free(layout.size());
        // SAFETY: as in `dealloc`; `new_size` is checked by the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// What `f` did to the heap of the current thread.
#[derive(Debug)]
pub struct AllocStats {
    /// Calls to `alloc` and `realloc`.
    pub allocations: u64,
    /// The most bytes held at once, above what was held before `f` started.
    pub peak_bytes: i64,
}

/// Runs `f` and reports the allocations it made on this thread.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, AllocStats) {
    let allocations_before = ALLOCATIONS.with(Cell::get);
    let live_before = LIVE_BYTES.with(Cell::get);
    PEAK_BYTES.with(|peak| peak.set(live_before));
    let out = f();
    let stats = AllocStats {
        allocations: ALLOCATIONS.with(Cell::get) - allocations_before,
        peak_bytes: PEAK_BYTES.with(Cell::get) - live_before,
    };
    (out, stats)
}

// ---- The code under test --------------------------------------------------------------------

/// Totals over an access log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub requests: u64,
    pub server_errors: u64,
    pub total_ms: u64,
    pub slowest_ms: u64,
    pub bad_lines: u64,
}

impl Summary {
    /// Records one line such as `GET /api/users 200 12` (method, path, status, milliseconds).
    /// Blank lines are skipped. This function does not allocate.
    fn record(&mut self, line: &str) {
        let mut fields = line.split_whitespace();
        let (Some(_method), Some(_path), Some(status), Some(ms), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            if !line.trim().is_empty() {
                self.bad_lines += 1;
            }
            return;
        };
        let (Ok(status), Ok(ms)) = (status.parse::<u16>(), ms.parse::<u64>()) else {
            self.bad_lines += 1;
            return;
        };
        self.requests += 1;
        if status >= 500 {
            self.server_errors += 1;
        }
        self.total_ms += ms;
        self.slowest_ms = self.slowest_ms.max(ms);
    }
}

/// Reads an access log line by line and totals it.
pub fn summarize(input: impl BufRead) -> io::Result<Summary> {
    let mut summary = Summary::default();
    // TODO: `lines()` allocates a new `String` for every line. Read each line into one
    // `String` with `read_line` instead, and `clear()` it before the next line.
    for line in input.lines() {
        summary.record(&line?);
    }
    Ok(summary)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// `count` log lines: every 10th is a 500, and the latency is `i % 100` ms.
    fn access_log(count: u64) -> Vec<u8> {
        let mut log = String::new();
        for i in 0..count {
            let status = if i % 10 == 0 { 500 } else { 200 };
            log.push_str(&format!("GET /api/users/{i} {status} {}\n", i % 100));
        }
        log.into_bytes()
    }

    #[test]
    fn the_profiler_sees_allocations() {
        let (v, stats) = measure(|| Vec::<u64>::with_capacity(100));
        assert_eq!(
            stats.allocations, 1,
            "one Vec::with_capacity is 1 allocation"
        );
        assert_eq!(stats.peak_bytes, 800, "100 u64s are 800 bytes");
        drop(v);
    }

    #[test]
    fn summarize_totals_a_small_log() {
        let log = "GET /a 200 10\r\nPOST /b 503 40\n\nnot a log line\nGET /c 200 5\nGET /d 200 x\n";
        let summary = summarize(log.as_bytes()).expect("reading from memory cannot fail");
        assert_eq!(
            summary,
            Summary {
                requests: 3,
                server_errors: 1,
                total_ms: 55,
                slowest_ms: 40,
                bad_lines: 2,
            },
            "3 good lines (one 503), 1 blank line (skipped), 2 bad lines"
        );
    }

    #[test]
    fn ten_thousand_lines_make_almost_no_allocations() {
        let log = access_log(10_000);
        let (summary, stats) = measure(|| summarize(&log[..]));
        let summary = summary.expect("reading from memory cannot fail");
        assert_eq!(
            summary,
            Summary {
                requests: 10_000,
                server_errors: 1_000,
                total_ms: 495_000,
                slowest_ms: 99,
                bad_lines: 0,
            },
            "10 000 requests, 1 000 of them 500s, 100 x (0 + 1 + ... + 99) ms in total"
        );
        assert!(
            stats.allocations < 50,
            "expected fewer than 50 allocations for 10 000 lines, got {} \
             (lines() allocates a new String for every line)",
            stats.allocations
        );
        assert!(
            stats.peak_bytes < 1024,
            "the log is {} bytes, but one line is short: expected under 1 KiB held at once, \
             got {} bytes (read one line at a time, not the whole input)",
            log.len(),
            stats.peak_bytes
        );
    }
}
