//! Request permits handed out in key order, not in the order they were asked for.
//!
//! The concurrent listing reads pages from the first unit of its window only, so
//! that unit's next request matters most: with a first-come semaphore (tokio's is
//! fair, so FIFO) it queues behind the requests of every chunk after it, and the
//! consumer waits a round trip per queued batch. Measured on 100,000 flat keys at
//! 50 ms a request, that queueing cost about half the run. Here each waiter carries a
//! rank (its place in key order) and a freed permit goes to the lowest rank.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A place in key order: (part number, chunk number within the part).
pub(crate) type Rank = (u64, u64);

/// A counting semaphore whose waiters are served lowest rank first.
pub(crate) struct OrderedPermits {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Lowest rank first; ties in arrival order.
    waiting: BinaryHeap<Reverse<(Rank, u64, Waiter)>>,
    arrivals: u64,
}

/// The channel a waiter is woken on (compared by rank only, never by itself).
struct Waiter(oneshot::Sender<()>);

impl PartialEq for Waiter {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// One permit; released on drop.
pub(crate) struct Permit(Arc<OrderedPermits>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A wait in progress; if it is dropped after being granted, the permit goes back.
struct Pending {
    permits: Arc<OrderedPermits>,
    granted: oneshot::Receiver<()>,
    taken: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.granted.close();
        if !self.taken && self.granted.try_recv().is_ok() {
            self.permits.release();
        }
    }
}

impl OrderedPermits {
    pub(crate) fn new(permits: usize) -> Arc<Self> {
        Arc::new(OrderedPermits {
            state: Mutex::new(State {
                free: permits,
                waiting: BinaryHeap::new(),
                arrivals: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a permit; lower ranks are served first.
    pub(crate) async fn acquire(self: &Arc<Self>, rank: Rank) -> Permit {
        let granted = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                return Permit(Arc::clone(self));
            }
            let (tx, rx) = oneshot::channel();
            state.arrivals += 1;
            let arrival = state.arrivals;
            state.waiting.push(Reverse((rank, arrival, Waiter(tx))));
            rx
        };
        let mut pending = Pending {
            permits: Arc::clone(self),
            granted,
            taken: false,
        };
        // The sender lives in `waiting` until a release hands it the permit.
        let _ = (&mut pending.granted).await;
        pending.taken = true;
        Permit(Arc::clone(self))
    }

    /// Hands the permit to the lowest-ranked live waiter, or frees it.
    fn release(&self) {
        let mut state = self.lock();
        while let Some(Reverse((_, _, Waiter(tx)))) = state.waiting.pop() {
            if tx.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn freed_permits_go_to_the_lowest_rank_first() {
        let permits = OrderedPermits::new(1);
        let held = permits.acquire((0, 0)).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for rank in [(5, 0), (1, 7), (3, 0), (1, 2)] {
            let (permits, tx) = (Arc::clone(&permits), tx.clone());
            tokio::spawn(async move {
                let _permit = permits.acquire(rank).await;
                tx.send(rank).expect("send");
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(rx.recv().await.expect("granted"));
        }
        assert_eq!(order, vec![(1, 2), (1, 7), (3, 0), (5, 0)]);
    }

    #[tokio::test]
    async fn a_wait_dropped_after_its_grant_gives_the_permit_back() {
        let permits = OrderedPermits::new(1);
        let held = permits.acquire((0, 0)).await;
        let mut waiting = Box::pin(permits.acquire((1, 0)));
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(held); // granted to the waiter, which never looks
        drop(waiting);
        let again = tokio::time::timeout(Duration::from_secs(1), permits.acquire((2, 0))).await;
        assert!(again.is_ok(), "the permit came back");
    }
}
