// memory3_count_allocations: measure allocations, then remove them
//
// Profile before you optimise. A `#[global_allocator]` sees every heap allocation the program
// makes, so a small counting wrapper around the system allocator is a profiler that a test can
// assert on (the tests below install one). It shows that `BufRead::lines()` allocates a new
// `String` for every line. Reading with `read_line` into one `String` that you `clear()` each
// time reuses one buffer.
//
// Why it matters: a log shipper parses a few GB of access logs an hour. One allocation per line
// is millions of calls into the allocator, CPU time spent on nothing the service needs; the
// same code with one reused buffer makes a handful. Real profilers (heaptrack, dhat,
// jemalloc's stats) count the same things.
//
// A caveat: `read_line` reads until a newline however far away it is, and `clear()` keeps the
// buffer's capacity. One huge line without a newline grows the buffer to its size, and the
// buffer keeps it. In production, cap the line length (`Read::take`, or tokio-util's
// `LinesCodec::new_with_max_length`).
//
// What to do: in `summarize`, replace the `lines()` loop with a `read_line` loop over one
// reused `String`. Run `backlings hint` if you are stuck.

use std::io::{self, BufRead};

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
pub fn summarize(mut input: impl BufRead) -> io::Result<Summary> {
    let mut summary = Summary::default();
    // One buffer for the whole input: it grows to the longest line, then is only reused.
    // `clear()` empties it but keeps its capacity.
    let mut line = String::new();
    while input.read_line(&mut line)? != 0 {
        summary.record(&line);
        line.clear();
    }
    Ok(summary)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::io::Read;

    // ---- The profiler: a counting global allocator ----------------------------------------

    thread_local! {
        // Per-thread counters: tests run in parallel threads, and each test must see only its
        // own allocations. Plain `Cell`s with const initialisers never allocate, which matters
        // inside an allocator.
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
    struct CountingAlloc;

    // Implementing `GlobalAlloc` is unsafe by definition: the one place `unsafe` is allowed.
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
    struct AllocStats {
        /// Calls to `alloc` and `realloc`.
        allocations: u64,
        /// The most bytes held at once, above what was held before `f` started.
        peak_bytes: i64,
    }

    fn measure<T>(f: impl FnOnce() -> T) -> (T, AllocStats) {
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

    // ---- The tests ------------------------------------------------------------------------

    /// `count` log lines under `path`: every 10th is a 500, and the latency is `i % 100` ms.
    fn access_log(count: u64, path: &str) -> Vec<u8> {
        let mut log = String::new();
        for i in 0..count {
            let status = if i % 10 == 0 { 500 } else { 200 };
            log.push_str(&format!("GET {path}/{i} {status} {}\n", i % 100));
        }
        log.into_bytes()
    }

    fn expected(count: u64) -> Summary {
        Summary {
            requests: count,
            server_errors: count / 10,
            total_ms: count / 100 * 4_950,
            slowest_ms: 99,
            bad_lines: 0,
        }
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
    fn summarize_totals_small_logs() {
        let cases = [
            (
                "GET /a 200 10\r\nPOST /b 503 40\n\nnot a log line\nGET /c 499 5\nGET /d 200 x\n \
                 \nGET /e 500 0\nGET /f 200 7",
                Summary {
                    requests: 5,
                    server_errors: 2,
                    total_ms: 62,
                    slowest_ms: 40,
                    bad_lines: 2,
                },
                "5 good lines (a 503 and a 500, not the 499), 2 blank lines (skipped), 2 bad \
                 lines, and a last line without a newline",
            ),
            (
                "DELETE /x 500 3\nGET /y 200 100\nGET /z 200 1 extra\n",
                Summary {
                    requests: 2,
                    server_errors: 1,
                    total_ms: 103,
                    slowest_ms: 100,
                    bad_lines: 1,
                },
                "2 good lines (one 500) and 1 bad line with a fifth field",
            ),
        ];
        for (log, expected, what) in cases {
            let summary = summarize(log.as_bytes()).expect("reading from memory cannot fail");
            assert_eq!(summary, expected, "{what}");
            // A 5-byte read buffer: every line arrives in pieces, as from a socket.
            let summary = summarize(io::BufReader::with_capacity(5, log.as_bytes()))
                .expect("reading from memory cannot fail");
            assert_eq!(summary, expected, "{what}, read 5 bytes at a time");
        }
    }

    /// Gives `good` bytes of log, then fails like a dropped connection.
    struct Broken<'a> {
        good: &'a [u8],
    }

    impl Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "peer went away",
                ));
            }
            self.good.read(buf)
        }
    }

    #[test]
    fn a_read_error_is_returned_not_swallowed() {
        for lines in [3, 250] {
            let log = access_log(lines, "/api");
            let input = io::BufReader::new(Broken { good: &log });
            let err = summarize(input).expect_err(
                "the input failed after the last line: summarize must return that error, not \
                 a summary of what it read so far",
            );
            assert_eq!(
                err.kind(),
                io::ErrorKind::ConnectionReset,
                "expected the reader's own error, got {err}"
            );
        }
    }

    #[test]
    fn allocations_and_memory_do_not_grow_with_the_input() {
        let long_path = "/api/v1/tenants/acme/reports".repeat(8);
        for (shape, path) in [("short", "/api/users"), ("long", long_path.as_str())] {
            let small = access_log(1_000, path);
            let big = access_log(10_000, path);
            let (summary_small, a) = measure(|| summarize(&small[..]));
            let (summary_big, b) = measure(|| summarize(&big[..]));
            assert_eq!(
                summary_small.unwrap(),
                expected(1_000),
                "{shape} lines: wrong totals"
            );
            assert_eq!(
                summary_big.unwrap(),
                expected(10_000),
                "{shape} lines: wrong totals"
            );
            assert!(
                b.allocations <= 32 && b.allocations <= a.allocations + 4,
                "{shape} lines: 1 000 lines made {} allocations and 10 000 lines made {}. \
                 Expected the count not to grow with the number of lines (at most 32 in all: \
                 one buffer that grows a few times to the longest line). lines() allocates a \
                 new String for every line",
                a.allocations,
                b.allocations
            );
            assert!(
                b.peak_bytes <= a.peak_bytes + 256,
                "{shape} lines: the most heap held at once was {} bytes for 1 000 lines (a \
                 {}-byte log) and {} bytes for 10 000 lines (a {}-byte log). Expected it not \
                 to grow with the input: a buffer of about one line (or of a fixed size) is \
                 enough. Is the whole input held at once?",
                a.peak_bytes,
                small.len(),
                b.peak_bytes,
                big.len()
            );
        }
    }
}
