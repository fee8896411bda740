// threads1_scoped: threads that borrow
//
// `std::thread::spawn` needs a `'static` closure: the new thread may outlive the function, so
// it cannot borrow anything from its caller. `std::thread::scope` joins every thread it starts
// before it returns, so those threads may borrow the caller's data in place. (Node's
// `worker_threads` get a structured clone of their `workerData`; scoped threads need no copy.)
//
// Why it matters: a checksum over an upload ran on one core. The handler only had a borrowed
// `&[u64]` of the body, so `thread::spawn` meant copying it first: `data.to_vec()`, or
// `Arc::<[u64]>::from(data)`, which clones every element. (`Arc::new(vec)` copies no buffer: it
// moves the Vec's pointer, length and capacity into the Arc, but you must own the Vec.) A scope
// splits the borrowed slice across cores with no copy at all.
//
// Production caveat: `thread::scope` blocks its caller until every thread in it has finished
// (and panics if a thread that it joined for you panicked). Never call it straight from async
// code: it would stall the runtime's thread (threads2 and the quiz show the way out).
//
// What to do: make `parallel_sum` compile, with its parts running at the same time: start one
// thread per part inside `thread::scope`. Run `backlings hint` if you are stuck.

use std::thread;

/// Sums `data` in `parts` parts (at least 1), each on its own thread, all running at once.
/// `sum_part` sums one part.
pub fn parallel_sum(data: &[u64], parts: usize, sum_part: &(dyn Fn(&[u64]) -> u64 + Sync)) -> u64 {
    // Round up, so that `parts` chunks cover every element.
    let chunk = data.len().div_ceil(parts).max(1);
    // TODO: this does not compile: `thread::spawn` needs `'static` data, and `part` and
    // `sum_part` are borrowed. Start the threads inside `thread::scope(|s| ...)` with
    // `s.spawn(...)` instead, all of them before joining any.
    let handles: Vec<_> = data
        .chunks(chunk)
        .map(|part| thread::spawn(move || sum_part(part)))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    // The exact signature: a `'static` bound would reject the borrowing closures below.
    type Signature = fn(&[u64], usize, &(dyn Fn(&[u64]) -> u64 + Sync)) -> u64;
    const _: Signature = parallel_sum;

    const WAIT: Duration = Duration::from_secs(2);

    /// Each part waits here until `want` parts are inside at the same time. Parts that run one
    /// after another never meet: the first gives up after WAIT, and the rest do not wait.
    struct Gate {
        want: usize,
        state: Mutex<(usize, bool)>, // (parts that entered, someone gave up)
        turn: Condvar,
    }

    impl Gate {
        fn new(want: usize) -> Self {
            let state = Mutex::new((0, false));
            Gate {
                want,
                state,
                turn: Condvar::new(),
            }
        }

        fn enter(&self) {
            let mut state = self.state.lock().unwrap();
            state.0 += 1;
            self.turn.notify_all();
            let (mut state, waited) = self
                .turn
                .wait_timeout_while(state, WAIT, |s| s.0 < self.want && !s.1)
                .unwrap();
            if waited.timed_out() {
                state.1 = true;
                self.turn.notify_all();
            }
        }
    }

    fn check(data: &[u64], parts: usize, threads: usize) {
        let gate = Gate::new(threads);
        let sum_part = |part: &[u64]| -> u64 {
            gate.enter();
            part.iter().sum()
        };
        let want: u64 = data.iter().sum();
        let got = parallel_sum(data, parts, &sum_part);
        assert_eq!(
            got,
            want,
            "{} numbers in {parts} parts: expected the sum {want}",
            data.len()
        );
        let (entered, gave_up) = gate.state.into_inner().unwrap();
        assert_eq!(
            entered,
            threads,
            "{} numbers in {parts} parts (chunks of len.div_ceil(parts)): expected {threads} calls of sum_part, one per thread, got {entered}",
            data.len()
        );
        assert!(
            !gave_up,
            "the {threads} parts never ran at the same time (a part waited {WAIT:?} for the others): start every thread before you join any"
        );
    }

    #[test]
    fn four_parts_of_1001_run_at_once() {
        let data: Vec<u64> = (1..=1001).collect();
        check(&data, 4, 4);
    }

    #[test]
    fn three_parts_of_10_run_at_once() {
        let data: Vec<u64> = (0..10).map(|i| i * i + 7).collect();
        check(&data, 3, 3);
    }

    #[test]
    fn tiny_inputs_work_too() {
        // Two numbers in up to 4 parts: chunks of 1, so 2 threads.
        check(&[5, 6], 4, 2);
        check(&[], 4, 0);
    }
}
