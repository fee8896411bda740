// jobs2_classify_dlq: retry what may pass later, dead-letter the rest
//
// Not every failure is worth a retry. A timeout, a `429 Too Many Requests` or a `503` may pass
// in a second: retry those, with backoff. A `400`, a `404` or a payload the handler cannot
// parse will fail the same way every time: retrying only burns attempts and delays the jobs
// behind it. Whatever cannot succeed (a permanent error, or a transient one that used up its
// attempts) goes to a dead-letter queue (DLQ), with its last error and its attempt count, so
// that a person can look at it, fix the cause, and replay it. Dropping it loses the work
// without a trace.
//
// Why it matters: an email worker retried every failure five times. A template bug made every
// welcome email fail with the same error: the queue spent its time retrying hopeless jobs while
// password resets waited behind them, and when the bug was fixed, the failed emails were gone.
//
// Production caveat: in Amazon SQS (standard queues) a message keeps its original enqueue
// timestamp when it moves to the DLQ, so it expires from the DLQ by the source queue's clock:
// give the DLQ a longer retention period than the source queue, or the evidence expires
// before anyone reads it.
//
// What to do: in `drain`, when an attempt fails, retry only a retryable error with attempts
// left; otherwise move the job to the DLQ with its attempt count and the error.
// Run `backlings hint` if you are stuck.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: u64,
    pub payload: String,
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// The service the job calls answered with this HTTP status.
    #[error("status {0}")]
    Status(u16),
    #[error("timed out")]
    Timeout,
    /// The payload itself is wrong (bad JSON, unknown customer).
    #[error("invalid payload: {0}")]
    Invalid(String),
}

impl JobError {
    /// Transient errors may pass later: timeouts, 408, 429 and the 5xx a proxy or an overloaded
    /// service answers. Anything else fails the same way every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            JobError::Timeout => true,
            JobError::Status(status) => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            JobError::Invalid(_) => false,
        }
    }
}

/// A job that failed for good, with what a person needs to understand and replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadJob {
    pub job: Job,
    pub attempts: u32,
    pub last_error: JobError,
}

#[derive(Debug, Default)]
pub struct Queue {
    pub ready: VecDeque<Job>,
    pub dead: Vec<DeadJob>,
}

impl Queue {
    /// Moves dead job `id` back to the end of the ready queue, once its cause is fixed.
    /// Returns false when there is no such dead job.
    pub fn replay(&mut self, id: u64) -> bool {
        match self.dead.iter().position(|dead| dead.job.id == id) {
            Some(i) => {
                let dead = self.dead.remove(i);
                self.ready.push_back(dead.job);
                true
            }
            None => false,
        }
    }
}

pub struct Policy {
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base: Duration,
}

/// Runs the ready jobs one by one, each until it succeeds or is dead-lettered.
pub async fn drain<F, Fut>(queue: &mut Queue, policy: &Policy, mut handle: F)
where
    F: FnMut(Job) -> Fut,
    Fut: Future<Output = Result<(), JobError>>,
{
    while let Some(job) = queue.ready.pop_front() {
        let mut attempt = 1;
        while let Err(_err) = handle(job.clone()).await {
            // TODO: this retries every error, and a job out of attempts is simply dropped.
            // Retry only a retryable error; move anything else to the DLQ.
            if attempt >= policy.max_attempts {
                break;
            }
            tokio::time::sleep(policy.base * 2u32.saturating_pow(attempt - 1)).await;
            attempt += 1;
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tokio::time::Instant;

    /// What each attempt at a job answers: the n-th attempt gets `script[n - 1]`, and the last
    /// entry repeats. Jobs without a script succeed.
    type Script = HashMap<u64, Vec<Result<(), JobError>>>;

    fn job(id: u64) -> Job {
        Job {
            id,
            payload: format!("payload {id}"),
        }
    }

    fn queue(ids: &[u64]) -> Queue {
        Queue {
            ready: ids.iter().map(|&id| job(id)).collect(),
            dead: Vec::new(),
        }
    }

    fn dead(id: u64, attempts: u32, last_error: JobError) -> DeadJob {
        DeadJob {
            job: job(id),
            attempts,
            last_error,
        }
    }

    /// Drains `queue` with the scripted handler; returns each job's attempt times in ms.
    async fn run(queue: &mut Queue, policy: &Policy, script: &Script) -> HashMap<u64, Vec<u64>> {
        let start = Instant::now();
        let mut log: HashMap<u64, Vec<u64>> = HashMap::new();
        let handler = |job: Job| {
            let times = log.entry(job.id).or_default();
            times.push(start.elapsed().as_millis() as u64);
            let n = times.len();
            let answer = match script.get(&job.id) {
                Some(answers) => answers[(n - 1).min(answers.len() - 1)].clone(),
                None => Ok(()),
            };
            assert_eq!(
                job,
                super::tests::job(job.id),
                "the handler gets the job as enqueued"
            );
            std::future::ready(answer)
        };
        let all = tokio::time::timeout(Duration::from_secs(3_600), drain(queue, policy, handler));
        all.await.expect("drain finishes");
        assert!(queue.ready.is_empty(), "drain empties the ready queue");
        log
    }

    use JobError::{Invalid, Status, Timeout};

    #[test]
    fn transient_and_permanent_errors() {
        for err in [
            Timeout,
            Status(408),
            Status(429),
            Status(500),
            Status(502),
            Status(503),
            Status(504),
        ] {
            assert!(
                err.is_retryable(),
                "{err:?} may pass later: expected retryable"
            );
        }
        for err in [
            Status(400),
            Status(401),
            Status(404),
            Status(409),
            Status(422),
            Status(501),
            Invalid("x".into()),
        ] {
            assert!(
                !err.is_retryable(),
                "{err:?} fails the same way every time: expected permanent"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_dead_lettered_after_one_attempt() {
        let cases = [
            (
                Policy {
                    max_attempts: 5,
                    base: Duration::from_millis(100),
                },
                [
                    Status(400),
                    Invalid("bad json".into()),
                    Status(501),
                    Status(409),
                ],
            ),
            (
                Policy {
                    max_attempts: 3,
                    base: Duration::from_millis(50),
                },
                [Status(404), Status(422), Status(505), Status(401)],
            ),
        ];
        for (policy, errors) in cases {
            let script: Script = (1..)
                .zip(errors.iter().map(|e| vec![Err(e.clone())]))
                .collect();
            let mut q = queue(&[1, 2, 3, 4, 5]);
            let log = run(&mut q, &policy, &script).await;
            for (id, err) in (1..).zip(&errors) {
                assert_eq!(
                    log[&id],
                    vec![0],
                    "job {id} failed with {err:?}, which `is_retryable` calls permanent: expected one attempt, no retry"
                );
            }
            assert_eq!(
                log[&5],
                vec![0],
                "job 5 runs at once: nothing waited for hopeless retries"
            );
            let expected: Vec<DeadJob> = (1..).zip(errors).map(|(id, e)| dead(id, 1, e)).collect();
            assert_eq!(
                q.dead, expected,
                "expected the 4 failed jobs in the DLQ, with 1 attempt and their error (a dropped job is lost)"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_error_is_classified_by_is_retryable() {
        for (max_attempts, base) in [(2, 10), (3, 20)] {
            let policy = Policy {
                max_attempts,
                base: Duration::from_millis(base),
            };
            let errors: Vec<JobError> = (400..600).map(Status).chain([Timeout]).collect();
            let script: Script = (1..)
                .zip(errors.iter().map(|e| vec![Err(e.clone())]))
                .collect();
            let mut q = queue(&(1..=errors.len() as u64).collect::<Vec<_>>());
            run(&mut q, &policy, &script).await;
            for ((id, err), dead) in (1..).zip(&errors).zip(&q.dead) {
                let attempts = if err.is_retryable() { max_attempts } else { 1 };
                assert_eq!(
                    (dead.job.id, dead.attempts, &dead.last_error),
                    (id, attempts, err),
                    "job {id} always fails with {err:?}: expected {attempts} attempt(s) (what `is_retryable` says, \
                     max_attempts {max_attempts}), then the DLQ"
                );
            }
            assert_eq!(
                q.dead.len(),
                errors.len(),
                "every failed job reaches the DLQ"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_error_is_retried_with_backoff_then_dead_lettered_with_its_last_error() {
        let policy = Policy {
            max_attempts: 5,
            base: Duration::from_millis(100),
        };
        let script = Script::from([(
            1,
            vec![
                Err(Status(503)),
                Err(Status(408)),
                Err(Status(429)),
                Err(Status(503)),
                Err(Timeout),
            ],
        )]);
        let mut q = queue(&[1, 2]);
        let log = run(&mut q, &policy, &script).await;
        assert_eq!(
            log[&1],
            vec![0, 100, 300, 700, 1_500],
            "5 attempts, waits 100, 200, 400, 800 ms"
        );
        assert_eq!(
            log[&2],
            vec![1_500],
            "job 2 runs once job 1 is dead-lettered"
        );
        assert_eq!(
            q.dead,
            vec![dead(1, 5, Timeout)],
            "expected job 1 in the DLQ after 5 attempts, with its last error (Timeout)"
        );

        let policy = Policy {
            max_attempts: 3,
            base: Duration::from_millis(50),
        };
        let script = Script::from([(
            1,
            vec![Err(Status(500)), Err(Status(408)), Err(Status(504)), Ok(())],
        )]);
        let mut q = queue(&[1]);
        let log = run(&mut q, &policy, &script).await;
        assert_eq!(
            log[&1],
            vec![0, 50, 150],
            "max 3 attempts, base 50 ms: expected attempts at 0, 50, 150 ms"
        );
        assert_eq!(
            q.dead,
            vec![dead(1, 3, Status(504))],
            "expected job 1 in the DLQ after 3 attempts, with its last error (504)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_that_succeeds_or_fails_for_good_ends_the_retries() {
        let policy = Policy {
            max_attempts: 5,
            base: Duration::from_millis(100),
        };
        let script = Script::from([
            (1, vec![Err(Status(503)), Err(Timeout), Ok(())]),
            (2, vec![Err(Status(429)), Err(Status(400))]),
        ]);
        let mut q = queue(&[1, 2]);
        let log = run(&mut q, &policy, &script).await;
        assert_eq!(
            log[&1],
            vec![0, 100, 300],
            "job 1 succeeds on its third attempt: no more attempts"
        );
        assert_eq!(
            log[&2],
            vec![300, 400],
            "job 2: a 429, then a 400 after 100 ms, which is permanent"
        );
        assert_eq!(
            q.dead,
            vec![dead(2, 2, Status(400))],
            "only job 2 is dead, after 2 attempts, with the 400"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_replay_after_the_fix_succeeds() {
        let policy = Policy {
            max_attempts: 3,
            base: Duration::from_millis(10),
        };
        // A bug: job 7's payload cannot be handled (permanent); job 8 meets an outage.
        let broken = Script::from([
            (7, vec![Err(Invalid("unknown field".into()))]),
            (8, vec![Err(Status(503))]),
        ]);
        let mut q = queue(&[7, 8, 9]);
        run(&mut q, &policy, &broken).await;
        assert_eq!(
            q.dead,
            vec![
                dead(7, 1, Invalid("unknown field".into())),
                dead(8, 3, Status(503))
            ],
            "the poison job and the exhausted one are in the DLQ"
        );
        assert!(!q.replay(9), "job 9 succeeded: there is nothing to replay");
        // The fix ships and the outage ends: replay both.
        assert!(q.replay(8) && q.replay(7), "replay finds both dead jobs");
        assert!(!q.replay(7), "job 7 was already replayed");
        assert_eq!(
            q.ready.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![8, 7],
            "replayed jobs go to the back of the queue, in replay order"
        );
        let log = run(&mut q, &policy, &Script::new()).await;
        assert_eq!(
            (log[&8].len(), log[&7].len()),
            (1, 1),
            "after the fix, each replayed job succeeds at its first attempt"
        );
        assert!(
            q.dead.is_empty(),
            "the DLQ is empty after the replay, got {:?}",
            q.dead
        );
    }
}
