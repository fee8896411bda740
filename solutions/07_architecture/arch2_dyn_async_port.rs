// arch2_dyn_async_port: runtime dependency injection with `Arc<dyn Port>`
//
// `arch1` plugged its adapter in at compile time with a generic. Often the choice is made at
// run time: which payment gateways, in which order, comes from configuration, and the list
// holds different types. That needs trait objects, `Arc<dyn PaymentGateway>`. But a trait
// with an `async fn` is not dyn compatible: each implementation's future is a different,
// unnameable type, so there is no single signature to put in a vtable. The fix is to name
// one type for all of them: return `BoxFuture<'_, T>` (a pinned, boxed, `Send` future from
// the `futures` crate) and wrap each body in `Box::pin(async move { ... })`. That is what the
// `async-trait` crate's macro writes for you.
//
// Why it matters: a checkout hard-wired to one gateway went down with it. The fix, a list of
// gateways tried in order, needed one type for "any gateway", and a week of untangling.
//
// Production caveat: fail over only on errors that prove nothing happened. A timeout after the
// request was sent may still have charged the card; real gateways take an idempotency key, so
// that a retry with the same key cannot charge twice.
//
// What to do: make `charge` return `BoxFuture<'_, Result<String, PaymentError>>`, and finish
// `Fallback`: try each gateway in order, moving on only when one is `Unavailable`.
// Run `backlings hint` if you are stuck.

use futures::future::BoxFuture;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentError {
    /// The gateway could not be reached; nothing was charged, so another one may be tried.
    Unavailable,
    /// The card was declined: trying elsewhere would not change the answer.
    Declined,
}

/// The port. Implementations decide how to reach a payment provider.
pub trait PaymentGateway: Send + Sync {
    /// Charges `cents` for `order`; returns the provider's charge id.
    fn charge(&self, order: u64, cents: u64) -> BoxFuture<'_, Result<String, PaymentError>>;
}

pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

pub trait Mailer: Send + Sync {
    fn send(&self, to: &str, body: String) -> BoxFuture<'_, ()>;
}

/// A gateway made of gateways: tries each in order.
pub struct Fallback {
    pub gateways: Vec<Arc<dyn PaymentGateway>>,
}

impl PaymentGateway for Fallback {
    fn charge(&self, order: u64, cents: u64) -> BoxFuture<'_, Result<String, PaymentError>> {
        // One boxed type for every implementation: that is what makes `dyn` possible.
        Box::pin(async move {
            for gateway in &self.gateways {
                match gateway.charge(order, cents).await {
                    Err(PaymentError::Unavailable) => continue,
                    other => return other,
                }
            }
            Err(PaymentError::Unavailable)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub order: u64,
    pub charge_id: String,
    pub paid_at: u64,
}

/// The use case, with every dependency injected at run time.
pub struct Checkout {
    pub gateway: Arc<dyn PaymentGateway>,
    pub clock: Arc<dyn Clock>,
    pub mailer: Arc<dyn Mailer>,
}

impl Checkout {
    pub async fn pay(&self, order: u64, cents: u64, email: &str) -> Result<Receipt, PaymentError> {
        let charge_id = self.gateway.charge(order, cents).await?;
        let receipt = Receipt {
            order,
            paid_at: self.clock.now(),
            charge_id,
        };
        let body = format!(
            "order {order}: {cents} cents paid at {}, charge {}",
            receipt.paid_at, receipt.charge_id
        );
        self.mailer.send(email, body).await;
        Ok(receipt)
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::time::{Instant, timeout};

    /// A gateway that answers from a script after a latency, and records when each call began.
    struct Scripted {
        answers: Mutex<VecDeque<Result<String, PaymentError>>>,
        latency: Duration,
        started: Mutex<Vec<Duration>>,
        epoch: Instant,
    }

    impl Scripted {
        fn new(latency_ms: u64, answers: Vec<Result<&str, PaymentError>>) -> Arc<Scripted> {
            Arc::new(Scripted {
                answers: Mutex::new(answers.into_iter().map(|a| a.map(String::from)).collect()),
                latency: Duration::from_millis(latency_ms),
                started: Mutex::new(Vec::new()),
                epoch: Instant::now(),
            })
        }

        fn calls(&self) -> usize {
            self.started.lock().unwrap().len()
        }
    }

    impl PaymentGateway for Scripted {
        fn charge(&self, _order: u64, _cents: u64) -> BoxFuture<'_, Result<String, PaymentError>> {
            Box::pin(async move {
                self.started.lock().unwrap().push(self.epoch.elapsed());
                tokio::time::sleep(self.latency).await;
                self.answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .expect("the test scripted no more answers")
            })
        }
    }

    struct FixedClock(u64);

    impl Clock for FixedClock {
        fn now(&self) -> u64 {
            self.0
        }
    }

    #[derive(Default)]
    struct RecordingMailer {
        sent: Mutex<Vec<(String, String)>>,
    }

    impl Mailer for RecordingMailer {
        fn send(&self, to: &str, body: String) -> BoxFuture<'_, ()> {
            let to = to.to_string();
            Box::pin(async move {
                tokio::task::yield_now().await;
                self.sent.lock().unwrap().push((to, body));
            })
        }
    }

    fn checkout(gateways: &[&Arc<Scripted>], now: u64) -> (Checkout, Arc<RecordingMailer>) {
        let gateways: Vec<Arc<dyn PaymentGateway>> = gateways
            .iter()
            .map(|g| Arc::clone(g) as Arc<dyn PaymentGateway>)
            .collect();
        let mailer = Arc::new(RecordingMailer::default());
        let checkout = Checkout {
            gateway: Arc::new(Fallback { gateways }),
            clock: Arc::new(FixedClock(now)),
            mailer: mailer.clone(),
        };
        (checkout, mailer)
    }

    const LIMIT: Duration = Duration::from_secs(60);

    /// `downs` unavailable gateways, then one that charges `id`.
    async fn falls_over(downs: usize, order: u64, now: u64, id: &str) {
        let down: Vec<Arc<Scripted>> = (0..downs)
            .map(|_| Scripted::new(100, vec![Err(PaymentError::Unavailable)]))
            .collect();
        let up = Scripted::new(200, vec![Ok(id)]);
        let spare = Scripted::new(50, vec![Ok("ch_spare")]);
        let mut list: Vec<&Arc<Scripted>> = down.iter().collect();
        list.push(&up);
        list.push(&spare);
        let (checkout, mailer) = checkout(&list, now);
        let receipt = timeout(LIMIT, checkout.pay(order, 1999, "ann@example.com"))
            .await
            .unwrap();
        assert_eq!(
            receipt,
            Ok(Receipt {
                order,
                charge_id: id.into(),
                paid_at: now
            }),
            "expected the charge of the gateway that was up, stamped by the injected clock"
        );
        assert!(
            down.iter().all(|g| g.calls() == 1),
            "each gateway that was down is tried once"
        );
        assert_eq!(up.calls(), 1, "the working gateway is charged once");
        assert_eq!(
            spare.calls(),
            0,
            "after a success, no later gateway may be charged: that would charge twice"
        );
        let sent = mailer.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "one receipt mail: got {sent:?}");
        assert_eq!(sent[0].0, "ann@example.com", "the mail goes to the buyer");
        assert!(
            sent[0].1.contains(id) && sent[0].1.contains(&now.to_string()),
            "the mail names the charge {id} and the time {now}: {:?}",
            sent[0].1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_gateway_falls_over_to_the_next() {
        falls_over(1, 42, 1_700_000_000, "ch_b1").await;
        falls_over(2, 7, 5, "ch_c9").await;
    }

    #[tokio::test(start_paused = true)]
    async fn gateways_are_tried_one_after_the_other_never_at_once() {
        let down = Scripted::new(100, vec![Err(PaymentError::Unavailable)]);
        let up = Scripted::new(200, vec![Ok("ch_1")]);
        let (checkout, _) = checkout(&[&down, &up], 1);
        let start = Instant::now();
        timeout(LIMIT, checkout.pay(1, 500, "bo@example.com"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            up.started.lock().unwrap()[0],
            Duration::from_millis(100),
            "the second gateway starts only when the first has answered (at 100 ms): charging two at once can charge twice"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(300),
            "100 ms for the first gateway, then 200 ms for the second"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_declined_card_is_not_tried_elsewhere() {
        let declines = Scripted::new(50, vec![Err(PaymentError::Declined)]);
        let up = Scripted::new(50, vec![Ok("ch_2")]);
        let (checkout, mailer) = checkout(&[&declines, &up], 1);
        let got = timeout(LIMIT, checkout.pay(3, 100, "cy@example.com"))
            .await
            .unwrap();
        assert_eq!(got, Err(PaymentError::Declined), "a decline is the answer");
        assert_eq!(
            up.calls(),
            0,
            "a decline is final: no other gateway is charged"
        );
        assert!(
            mailer.sent.lock().unwrap().is_empty(),
            "no mail for a failed payment"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_gateway_is_down_nothing_is_paid() {
        for n in [0, 1, 3] {
            let all: Vec<Arc<Scripted>> = (0..n)
                .map(|_| Scripted::new(10, vec![Err(PaymentError::Unavailable)]))
                .collect();
            let refs: Vec<&Arc<Scripted>> = all.iter().collect();
            let (checkout, mailer) = checkout(&refs, 1);
            let got = timeout(LIMIT, checkout.pay(4, 100, "di@example.com"))
                .await
                .unwrap();
            assert_eq!(
                got,
                Err(PaymentError::Unavailable),
                "{n} gateways, all down"
            );
            assert!(all.iter().all(|g| g.calls() == 1), "each is tried once");
            assert!(
                mailer.sent.lock().unwrap().is_empty(),
                "no mail when nothing was paid"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_checkout_runs_on_a_spawned_task() {
        // `tokio::spawn` needs a `Send + 'static` future: the boxed futures must be `Send`.
        let up = Scripted::new(10, vec![Ok("ch_3")]);
        let (checkout, _) = checkout(&[&up], 9);
        let checkout = Arc::new(checkout);
        let task = tokio::spawn(async move { checkout.pay(5, 100, "ed@example.com").await });
        let receipt = timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
        assert_eq!(receipt.charge_id, "ch_3");
    }
}
