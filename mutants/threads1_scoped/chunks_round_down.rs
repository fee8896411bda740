// mutant: chunk size len / 4 rounds down: 1001 items make 5 chunks and 5 threads; the test expects exactly 4
// threads1_scoped: threads that borrow
//
// `std::thread::spawn` needs a `'static` closure: the thread may outlive the function, so it
// cannot borrow the function's local data, and you end up cloning into `Arc`s.
// `std::thread::scope` guarantees that every thread it starts is joined before it returns, so
// the threads may borrow local data directly. This is Node's `worker_threads` without the
// message copying.
//
// Why it matters: a checksum over a large upload buffer ran on one core. Splitting it across
// cores with `spawn` meant copying the buffer into an `Arc` first; a scope borrows it in place.
//
// What to do: make `parallel_sum` compile by using `thread::scope`: one scoped thread per
// chunk, 4 chunks in all. Run `backlings hint` if you are stuck.

use std::collections::HashSet;
use std::sync::Mutex;
use std::thread::{self, ThreadId};

pub const THREADS: usize = 4;

/// Sums `data` on `THREADS` threads and records which threads did the work.
pub fn parallel_sum(data: &[u64], workers: &Mutex<HashSet<ThreadId>>) -> u64 {
    // Round up, so that 4 chunks cover every element even when the length is not a multiple.
    let chunk = (data.len() / THREADS).max(1);
    // Every thread started in the scope is joined before `scope` returns, so they may borrow.
    thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    workers.lock().unwrap().insert(thread::current().id());
                    part.iter().sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_is_right_and_four_threads_did_it() {
        let data: Vec<u64> = (1..=1001).collect();
        let workers = Mutex::new(HashSet::new());
        assert_eq!(
            parallel_sum(&data, &workers),
            501_501,
            "1 + .. + 1001 = 501501"
        );
        let workers = workers.into_inner().unwrap();
        assert_eq!(
            workers.len(),
            THREADS,
            "expected exactly {THREADS} worker threads"
        );
        assert!(
            !workers.contains(&thread::current().id()),
            "the work must run on other threads, not on the caller's"
        );
    }

    #[test]
    fn small_inputs_work_too() {
        let workers = Mutex::new(HashSet::new());
        assert_eq!(parallel_sum(&[5, 6], &workers), 11, "expected 11");
        assert_eq!(parallel_sum(&[], &workers), 0, "the sum of nothing is 0");
    }
}
