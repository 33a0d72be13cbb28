//! SQLite's writers queue in the process: a first-come, first-served gate
//! in front of SQLite's one write lock, so that a writer waits for the one
//! before it and wakes the moment it commits, instead of sleeping in
//! SQLite's busy handler (1, 2, 5 … 100 ms between tries) while the lock is
//! free. The pool owns one gate per SQLite database; [`super::transaction`]
//! takes a turn before `BEGIN IMMEDIATE`. Between processes on one file,
//! SQLite's busy timeout still decides.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Tickets handed out and the ticket being served.
#[derive(Debug, Default)]
struct Tickets {
    next: u64,
    serving: u64,
}

/// A FIFO ticket lock.
#[derive(Debug, Default)]
pub struct WriteGate {
    tickets: Mutex<Tickets>,
    turn: Condvar,
}

/// One writer's turn; the next in line goes when it is dropped.
pub struct Turn<'a>(&'a WriteGate);

impl WriteGate {
    fn lock(&self) -> MutexGuard<'_, Tickets> {
        match self.tickets.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Wait for this caller's turn, in the order of arrival.
    pub fn enter(&self) -> Turn<'_> {
        let mut t = self.lock();
        let mine = t.next;
        t.next += 1;
        while t.serving != mine {
            t = match self.turn.wait(t) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
        Turn(self)
    }

    /// Writers waiting for their turn now, the one being served excluded.
    #[cfg(test)]
    pub fn waiting(&self) -> u64 {
        let t = self.lock();
        t.next.saturating_sub(t.serving).saturating_sub(1)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.lock().serving += 1;
        self.0.turn.notify_all();
    }
}

thread_local! {
    /// The gate of the database whose connection this thread holds now.
    static CURRENT: RefCell<Option<Arc<WriteGate>>> = const { RefCell::new(None) };
}

/// Run `f` with `gate` as this thread's current gate (the pool does, around
/// the work it runs on one of its connections).
pub fn with_gate<T>(gate: Option<Arc<WriteGate>>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<WriteGate>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.replace(gate));
    let _restore = Restore(previous);
    f()
}

/// This thread's current gate, if its connection has one.
pub fn current() -> Option<Arc<WriteGate>> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers are served in the order they arrived, one at a time.
    #[test]
    fn turns_follow_arrival() {
        let gate = Arc::new(WriteGate::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.enter();
        let mut waiters = Vec::new();
        for n in 0..8 {
            let (g, order) = (gate.clone(), order.clone());
            waiters.push(std::thread::spawn(move || {
                let _turn = g.enter();
                order.lock().unwrap().push(n);
            }));
            // The next waiter starts only once this one holds its ticket.
            while gate.waiting() != n + 1 {
                std::thread::yield_now();
            }
        }
        assert!(order.lock().unwrap().is_empty(), "nobody enters while a turn is held");
        drop(first);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
        assert_eq!(gate.waiting(), 0);
    }

    #[test]
    fn the_current_gate_is_set_for_the_work_only() {
        let gate = Arc::new(WriteGate::default());
        assert!(current().is_none());
        with_gate(Some(gate.clone()), || {
            assert!(current().is_some_and(|g| Arc::ptr_eq(&g, &gate)));
        });
        assert!(current().is_none());
    }
}
