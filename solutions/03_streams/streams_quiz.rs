// streams_quiz: a line-ingest pipeline
//
// This combines the topic into the shape of a real ingest job: bytes come in (a file, a
// socket), are cut into lines, parsed, enriched by a slow service a few at a time, and sent on
// in batches. Each stage is one stream combinator, and the whole pipeline is lazy and bounded:
// a slow consumer slows the reader down instead of filling memory.
//
// - `FramedRead::new(input, LinesCodec::new_with_max_length(MAX_LINE))` cuts bytes into lines.
//   The limit matters: without it, one line with no newline grows a buffer without end.
// - The input's own errors end it: a read error, a line longer than MAX_LINE bytes, or a line
//   that is not UTF-8. FramedRead yields the error, then ends. Deliver everything before it,
//   and report the error.
// - A line that does not parse is the record's fault: count it, skip it, go on.
// - Enrichment runs `ENRICH_CONCURRENCY` calls at once, in input order (`buffered`).
// - Events go out in batches of `BATCH` (`chunks`), each with `out.send(batch).await`. When the
//   receiver is gone, stop at once: read nothing more, enrich nothing more.
//
// Why it matters: this is Logstash, Vector or a Kafka consumer in miniature. The tests catch
// the classic ways such a job fails: unbounded lines, reordered events, a bad record that
// stops everything, a job that keeps working for a consumer long gone.
//
// Production caveat: `LinesCodec` checks UTF-8 itself, so a single invalid byte ends the
// stream exactly like a broken connection (`LinesCodecError::Io` of kind `InvalidData`, see
// tokio-util's source). A pipeline that must skip such lines frames bytes instead
// (`AnyDelimiterCodec`) and decodes each line itself.
//
// What to do: write `ingest` (it ships as `todo!()`). Run `backlings hint` if you are stuck.

use futures::StreamExt;
use std::cell::{Cell, RefCell};
use std::future::ready;
use std::pin::pin;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

pub const MAX_LINE: usize = 64;
pub const ENRICH_CONCURRENCY: usize = 4;
pub const BATCH: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub user_id: u32,
    pub region: &'static str,
}

/// The seam to the slow lookup service: production calls it over the network; tests, a fake.
pub trait Enricher {
    fn enrich(&self, user_id: u32) -> impl Future<Output = Event>;
}

/// A line is a user id, such as "42".
pub fn parse(line: &str) -> Option<u32> {
    line.trim().parse().ok()
}

#[derive(Debug)]
pub enum End {
    /// The input ended normally.
    Eof,
    /// The input ended with an error: a read error, a line over MAX_LINE, or invalid UTF-8.
    Input(LinesCodecError),
    /// The receiver of the batches was dropped.
    ConsumerGone,
}

#[derive(Debug)]
pub struct Report {
    pub bad_lines: usize,
    pub end: End,
}

pub async fn ingest<R: AsyncRead + Unpin, E: Enricher>(
    input: R,
    enricher: &E,
    out: mpsc::Sender<Vec<Event>>,
) -> Report {
    let bad_lines = Cell::new(0);
    let error = RefCell::new(None);
    let mut batches = pin!(
        FramedRead::new(input, LinesCodec::new_with_max_length(MAX_LINE))
            // End at the input's first error, and keep it for the report.
            .scan((), |_, line| {
                ready(match line {
                    Ok(line) => Some(line),
                    Err(e) => {
                        *error.borrow_mut() = Some(e);
                        None
                    }
                })
            })
            // A bad record is counted and skipped; it does not stop the pipeline.
            .filter_map(|line| {
                let id = parse(&line);
                if id.is_none() {
                    bad_lines.set(bad_lines.get() + 1);
                }
                ready(id)
            })
            .map(|id| enricher.enrich(id))
            .buffered(ENRICH_CONCURRENCY)
            .chunks(BATCH)
    );
    while let Some(batch) = batches.next().await {
        // `send` waits for room (backpressure) and fails once the receiver is gone.
        if out.send(batch).await.is_err() {
            let end = End::ConsumerGone;
            return Report {
                bad_lines: bad_lines.get(),
                end,
            };
        }
    }
    let end = error.take().map_or(End::Eof, End::Input);
    Report {
        bad_lines: bad_lines.get(),
        end,
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::ErrorKind;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll};
    use std::time::Duration;
    use tokio::io::ReadBuf;
    use tokio::time::{sleep, timeout};

    const LIMIT: Duration = Duration::from_secs(600);

    /// A slow lookup service that records how many calls it got and how many ran at once.
    #[derive(Default)]
    struct Fake {
        calls: Cell<usize>,
        in_flight: Cell<usize>,
        peak: Cell<usize>,
    }

    impl Enricher for Fake {
        async fn enrich(&self, user_id: u32) -> Event {
            self.calls.set(self.calls.get() + 1);
            self.in_flight.set(self.in_flight.get() + 1);
            self.peak.set(self.peak.get().max(self.in_flight.get()));
            // Later users answer faster: completion order is not input order.
            let ms = 10 + u64::from(1000 - user_id % 1000) % 40;
            sleep(Duration::from_millis(ms)).await;
            self.in_flight.set(self.in_flight.get() - 1);
            let region = if user_id.is_multiple_of(2) {
                "eu"
            } else {
                "us"
            };
            Event { user_id, region }
        }
    }

    /// An input that delivers `data`, then fails with `kind`, like a connection reset.
    struct Failing {
        data: Option<Vec<u8>>,
        kind: ErrorKind,
    }

    impl AsyncRead for Failing {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            match self.data.take() {
                Some(data) => {
                    buf.put_slice(&data);
                    Poll::Ready(Ok(()))
                }
                None => Poll::Ready(Err(self.kind.into())),
            }
        }
    }

    /// An input of `total` bytes of `byte` with no newline (a binary file, a stuck peer), in
    /// reads of 1 KiB; after that it never answers again. Counts the bytes it handed out.
    struct Endless {
        byte: u8,
        total: usize,
        given: Rc<Cell<usize>>,
    }

    impl AsyncRead for Endless {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = 1024.min(self.total - self.given.get()).min(buf.remaining());
            if n == 0 {
                return Poll::Pending;
            }
            buf.put_slice(&vec![self.byte; n]);
            self.given.set(self.given.get() + n);
            Poll::Ready(Ok(()))
        }
    }

    struct Run {
        report: Report,
        batches: Vec<Vec<Event>>,
        /// Before each batch is received: enrich calls made minus events received.
        ahead: Vec<usize>,
        calls: usize,
        peak: usize,
    }

    /// Runs `ingest` against a consumer that takes `pace_ms` per batch, on a channel of
    /// `capacity` batches, and leaves after `keep` batches.
    async fn run_with(
        input: impl AsyncRead + Unpin,
        capacity: usize,
        pace_ms: u64,
        keep: usize,
    ) -> Run {
        let fake = Fake::default();
        let (tx, mut rx) = mpsc::channel(capacity);
        let consumer = async {
            let (mut batches, mut ahead, mut received) = (Vec::new(), Vec::new(), 0);
            while batches.len() < keep {
                let Some(batch): Option<Vec<Event>> = rx.recv().await else {
                    break;
                };
                ahead.push(fake.calls.get() - received);
                received += batch.len();
                batches.push(batch);
                sleep(Duration::from_millis(pace_ms)).await;
            }
            drop(rx);
            (batches, ahead)
        };
        let both = async { tokio::join!(ingest(input, &fake, tx), consumer) };
        let (report, (batches, ahead)) = timeout(LIMIT, both)
            .await
            .expect("ingest must return once the input ends or the consumer is gone");
        Run {
            report,
            batches,
            ahead,
            calls: fake.calls.get(),
            peak: fake.peak.get(),
        }
    }

    async fn run_all(input: &[u8]) -> Run {
        run_with(input, 2, 0, usize::MAX).await
    }

    fn lines(ids: impl Iterator<Item = u32>) -> Vec<u8> {
        ids.map(|i| format!("{i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn ids(run: &Run) -> Vec<u32> {
        run.batches.iter().flatten().map(|e| e.user_id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_arrive_in_order_in_batches() {
        for (n, sizes) in [(120, vec![50, 50, 20]), (237, vec![50, 50, 50, 50, 37])] {
            let run = run_all(&lines(1..=n)).await;
            let got: Vec<usize> = run.batches.iter().map(Vec::len).collect();
            assert_eq!(got, sizes, "{n} events: expected batches of {sizes:?}");
            assert_eq!(
                ids(&run),
                (1..=n).collect::<Vec<_>>(),
                "expected users 1..={n} in order"
            );
            assert_eq!(
                run.batches[0][1].region, "eu",
                "user 2 is in eu (from the enricher)"
            );
            assert_eq!(
                run.peak, ENRICH_CONCURRENCY,
                "expected exactly {ENRICH_CONCURRENCY} enrich calls running at once at the peak"
            );
            assert_eq!(run.report.bad_lines, 0, "no bad lines");
            assert!(
                matches!(run.report.end, End::Eof),
                "expected End::Eof, got {:?}",
                run.report.end
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bad_lines_are_counted_and_skipped() {
        let cases: [(&[u8], Vec<u32>, usize); 2] = [
            (b"1\nabc\n2\n\n-5\n3\n", vec![1, 2, 3], 3),
            (
                b" 7 \r\n4294967296\n8\n0x10\n4294967295\n1e3\n",
                vec![7, 8, u32::MAX],
                3,
            ),
        ];
        for (input, want, bad) in cases {
            let run = run_all(input).await;
            assert_eq!(
                ids(&run),
                want,
                "input {:?}: the good lines go through, in order",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                run.report.bad_lines,
                bad,
                "input {:?}: expected {bad} bad lines (not a number, or beyond u32)",
                String::from_utf8_lossy(input)
            );
            assert!(
                matches!(run.report.end, End::Eof),
                "a bad line is not the end: expected End::Eof"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_at_the_limit_is_read_and_one_over_ends_the_input() {
        // The limit counts the bytes of the line as it came, before trimming.
        let at = [
            format!("{}42", "0".repeat(MAX_LINE - 2)),
            format!("{}5", " ".repeat(MAX_LINE - 1)),
        ];
        let over = [
            format!("9{}", "0".repeat(MAX_LINE)),
            format!("{}5", " ".repeat(MAX_LINE)),
        ];
        for ((at, over), id) in at.iter().zip(&over).zip([42, 5]) {
            let run = run_all(format!("1\n{at}\n3\n").as_bytes()).await;
            assert_eq!(
                ids(&run),
                vec![1, id, 3],
                "a line of exactly MAX_LINE bytes is read"
            );
            assert!(
                matches!(run.report.end, End::Eof),
                "expected End::Eof, got {:?}",
                run.report.end
            );

            let run = run_all(format!("1\n2\n{over}\n3\n").as_bytes()).await;
            assert!(
                matches!(
                    run.report.end,
                    End::Input(LinesCodecError::MaxLineLengthExceeded)
                ),
                "a line of MAX_LINE + 1 bytes: expected End::Input(MaxLineLengthExceeded), got {:?}",
                run.report.end
            );
            assert_eq!(
                ids(&run),
                vec![1, 2],
                "the lines before the long one are delivered: expected 1, 2"
            );
            assert_eq!(
                run.report.bad_lines, 0,
                "the long line is an error, not a bad line"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_without_end_is_cut_off_at_the_limit() {
        for byte in [b'7', b' '] {
            let given = Rc::new(Cell::new(0));
            let total = 4 << 20;
            let input = Endless {
                byte,
                total,
                given: given.clone(),
            };
            let run = run_with(input, 2, 0, usize::MAX).await;
            assert!(
                matches!(
                    run.report.end,
                    End::Input(LinesCodecError::MaxLineLengthExceeded)
                ),
                "4 MiB of {:?} with no newline: expected End::Input(MaxLineLengthExceeded) as \
                 soon as MAX_LINE bytes are passed, got {:?}",
                byte as char,
                run.report.end
            );
            assert!(
                given.get() <= 64 << 10,
                "the pipeline read {} bytes of one endless line; the codec's limit must cut it \
                 off after MAX_LINE bytes, not after the whole line is in memory",
                given.get()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_error_ends_the_input_after_what_came_before() {
        let cases = [
            (
                &b"1\n2\nabc\n3\n"[..],
                ErrorKind::ConnectionReset,
                vec![1, 2, 3],
                1,
            ),
            (&b"x\n9\n"[..], ErrorKind::TimedOut, vec![9], 1),
        ];
        for (data, kind, want, bad) in cases {
            let input = Failing {
                data: Some(data.to_vec()),
                kind,
            };
            let run = run_with(input, 2, 0, usize::MAX).await;
            assert!(
                matches!(&run.report.end, End::Input(LinesCodecError::Io(e)) if e.kind() == kind),
                "expected End::Input(Io) of kind {kind:?}, got {:?}",
                run.report.end
            );
            assert_eq!(
                ids(&run),
                want,
                "the events read before the error are delivered"
            );
            assert_eq!(run.report.bad_lines, bad, "expected {bad} bad line");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_that_is_not_utf8_ends_the_input() {
        let cases: [(&[u8], Vec<u32>, usize); 2] = [
            (b"1\n2\n\xff\xfe\n3\n", vec![1, 2], 0),
            (b"5\nno\nx\x80y\n6\n", vec![5], 1),
        ];
        for (input, want, bad) in cases {
            let run = run_all(input).await;
            assert!(
                matches!(&run.report.end, End::Input(LinesCodecError::Io(e)) if e.kind() == ErrorKind::InvalidData),
                "LinesCodec reports invalid UTF-8 as Io(InvalidData) and ends: expected \
                 End::Input(Io(InvalidData)), got {:?}",
                run.report.end
            );
            assert_eq!(
                ids(&run),
                want,
                "the events before the invalid line are delivered"
            );
            assert_eq!(run.report.bad_lines, bad, "expected {bad} bad lines");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_consumer_slows_the_whole_pipeline() {
        for capacity in [1, 3] {
            let run = run_with(&lines(1..=2_000)[..], capacity, 1_000, usize::MAX).await;
            assert_eq!(
                ids(&run),
                (1..=2_000).collect::<Vec<_>>(),
                "expected all 2000 events"
            );
            // `capacity` batches in the channel, one waiting in `send`, a few calls in flight.
            let bound = (capacity + 1) * BATCH + ENRICH_CONCURRENCY;
            let max = run.ahead.iter().max().copied().unwrap_or(0);
            assert!(
                max <= bound,
                "channel capacity {capacity}: the pipeline enriched {max} events the consumer \
                 had not taken yet; expected at most {bound} at every step"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_pipeline_stops_when_the_consumer_goes_away() {
        for (keep, capacity) in [(1, 1), (3, 2)] {
            let run = run_with(&lines(1..=10_000)[..], capacity, 100, keep).await;
            assert!(
                matches!(run.report.end, End::ConsumerGone),
                "expected End::ConsumerGone, got {:?}",
                run.report.end
            );
            let bound = (keep + capacity + 1) * BATCH + ENRICH_CONCURRENCY;
            assert!(
                run.calls <= bound,
                "the consumer left after {keep} batches (capacity {capacity}), but the \
                 pipeline made {} enrich calls of 10000; expected at most {bound}",
                run.calls
            );
        }
    }
}
