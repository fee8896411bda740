// streams_quiz: a line-ingest pipeline
//
// This combines the topic into the shape of a real ingest job: bytes come in (a file, a
// socket), are cut into lines, parsed, enriched by a slow service a few at a time, and written
// out in batches. Each stage is one stream combinator, and the whole pipeline is lazy and
// bounded: a slow sink slows the reader down instead of filling memory.
//
// - `FramedRead::new(input, LinesCodec::new_with_max_length(MAX_LINE))` cuts bytes into lines.
//   The limit matters: without it, one line with no newline grows a buffer without end. A
//   too-long line yields `Err(LinesCodecError::MaxLineLengthExceeded)`, and the stream ends.
// - A line that does not parse is counted and skipped, not fatal.
// - Enrichment runs `ENRICH_CONCURRENCY` calls at once, in input order (`buffered`).
// - Results are grouped in batches of `BATCH` (`chunks`) for the sink.
//
// Why it matters: this is Logstash, Vector or a Kafka consumer in miniature. Each of the bugs
// the tests catch has taken down a real ingest pipeline: unbounded lines, reordered events,
// a bad record that stopped everything.
//
// What to do: write `ingest` (it ships as `todo!()`). Run `backlings hint` if you are stuck.

#[allow(unused)]
use futures::StreamExt;
use std::cell::{Cell, RefCell};
use std::future::ready;
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

pub const MAX_LINE: usize = 64;
pub const ENRICH_CONCURRENCY: usize = 4;
pub const BATCH: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub user_id: u32,
    pub region: &'static str,
}

/// A slow lookup service that records its peak concurrency.
#[derive(Default)]
pub struct Enricher {
    in_flight: Cell<usize>,
    peak: Cell<usize>,
}

impl Enricher {
    pub async fn enrich(&self, user_id: u32) -> Event {
        self.in_flight.set(self.in_flight.get() + 1);
        self.peak.set(self.peak.get().max(self.in_flight.get()));
        // Later users answer faster: completion order is not input order.
        let ms = 10 + u64::from(1000 - user_id % 1000) % 40;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.in_flight.set(self.in_flight.get() - 1);
        let region = if user_id.is_multiple_of(2) {
            "eu"
        } else {
            "us"
        };
        Event { user_id, region }
    }

    pub fn peak(&self) -> usize {
        self.peak.get()
    }
}

/// A line is a user id, such as "42".
pub fn parse(line: &str) -> Option<u32> {
    line.trim().parse().ok()
}

#[derive(Debug)]
pub struct Report {
    pub batches: Vec<Vec<Event>>,
    pub bad_lines: usize,
    /// Set when the input ended with an error (a line longer than MAX_LINE).
    pub error: Option<LinesCodecError>,
}

pub async fn ingest<R: AsyncRead + Unpin>(input: R, enricher: &Enricher) -> Report {
    // TODO: build the pipeline described at the top of the file, and return its report:
    // FramedRead + LinesCodec::new_with_max_length(MAX_LINE) -> stop at the first Err and keep
    // it -> parse each line, counting the bad ones -> enricher.enrich, ENRICH_CONCURRENCY at a
    // time, in order -> chunks of BATCH -> collect.
    // `Cell` and `RefCell` let the stream's closures update the counters.
    let _ = (input, enricher, Cell::new(0), RefCell::new(()), ready(()));
    todo!()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::timeout;

    const LIMIT: Duration = Duration::from_secs(60);

    async fn run(input: &str) -> (Report, usize) {
        let enricher = Enricher::default();
        let report = timeout(LIMIT, ingest(input.as_bytes(), &enricher))
            .await
            .expect("the pipeline must end when the input ends");
        (report, enricher.peak())
    }

    fn ids(report: &Report) -> Vec<u32> {
        report.batches.iter().flatten().map(|e| e.user_id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_arrive_in_order_in_batches_of_fifty() {
        let input: String = (1..=120).map(|i| format!("{i}\n")).collect();
        let (report, peak) = run(&input).await;
        let sizes: Vec<usize> = report.batches.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![50, 50, 20],
            "120 events: expected batches of 50, 50 and 20"
        );
        assert_eq!(
            ids(&report),
            (1..=120).collect::<Vec<_>>(),
            "expected users 1..=120 in order"
        );
        assert_eq!(report.batches[0][1].region, "eu", "user 2 is in eu");
        assert_eq!(
            peak, ENRICH_CONCURRENCY,
            "expected exactly {ENRICH_CONCURRENCY} calls in flight at the peak"
        );
        assert_eq!(report.bad_lines, 0, "no bad lines");
        assert!(report.error.is_none(), "no error");
    }

    #[tokio::test(start_paused = true)]
    async fn bad_lines_are_counted_and_skipped() {
        let (report, _) = run("1\nabc\n2\n\n-5\n3\n").await;
        assert_eq!(
            ids(&report),
            vec![1, 2, 3],
            "the good lines go through: expected 1, 2, 3"
        );
        assert_eq!(
            report.bad_lines, 3,
            "\"abc\", \"\" and \"-5\" are bad: expected 3"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_over_long_line_ends_the_stream_with_an_error() {
        let long = "9".repeat(MAX_LINE + 1);
        let (report, _) = run(&format!("1\n2\n{long}\n3\n")).await;
        assert!(
            matches!(report.error, Some(LinesCodecError::MaxLineLengthExceeded)),
            "expected Some(MaxLineLengthExceeded), got {:?}",
            report.error
        );
        assert_eq!(
            ids(&report),
            vec![1, 2],
            "the lines before the long one are kept: expected 1, 2"
        );
        assert_eq!(
            report.bad_lines, 0,
            "the long line is an error, not a bad line"
        );
    }
}
