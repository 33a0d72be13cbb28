//! Flap damping of an instance's health: it goes down after
//! `failures_before_down` consecutive failed checks and comes back after
//! `passes_before_up` consecutive passes (Consul's `failures_before_critical`
//! and `success_before_passing`). Pure logic: the caller stores the result.
//!
//! The lease is the other signal. A lapsed lease counts as one failed check,
//! once per lapse. An instance without a `health_url` has nothing else to go
//! on, so for it a lapse is decisive and a heartbeat brings it back: the
//! lease length is its damping.

/// Bounds of both thresholds.
pub const MIN_THRESHOLD: i32 = 1;
pub const MAX_THRESHOLD: i32 = 20;
pub const DEFAULT_FAILURES_BEFORE_DOWN: i32 = 3;
pub const DEFAULT_PASSES_BEFORE_UP: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub failures_before_down: i32,
    pub passes_before_up: i32,
}

/// What damping remembers of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub up: bool,
    /// Consecutive failures (checks and counted lapses).
    pub failures: i32,
    /// Consecutive passing checks.
    pub passes: i32,
    /// The current lease's lapse has been counted.
    pub lease_lapsed: bool,
}

/// What happened to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    CheckPassed,
    /// A failed check, with its coarse reason (`timeout`, `bad_status`, …).
    CheckFailed(&'a str),
    /// The lease ran out. `checked`: the instance has a health check.
    LeaseLapsed {
        checked: bool,
    },
    /// A heartbeat or a re-registration renewed the lease.
    Heartbeat {
        checked: bool,
    },
}

/// The state after an event, and the reason when the status changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub state: State,
    pub transition: Option<String>,
}

fn failure(mut s: State, t: Thresholds, why: &str) -> Step {
    s.passes = 0;
    s.failures = s.failures.saturating_add(1);
    let n = s.failures;
    let down = s.up && n >= t.failures_before_down;
    s.up &= !down;
    Step {
        state: s,
        transition: down.then(|| {
            if n == 1 {
                why.to_string()
            } else {
                format!("{why} ({n} consecutive failures)")
            }
        }),
    }
}

/// Apply one event.
pub fn step(s: State, t: Thresholds, event: Event<'_>) -> Step {
    match event {
        Event::CheckPassed => {
            let mut s = State {
                failures: 0,
                passes: s.passes.saturating_add(1),
                lease_lapsed: false,
                ..s
            };
            let n = s.passes;
            let up = !s.up && n >= t.passes_before_up;
            s.up |= up;
            Step {
                state: s,
                transition: up.then(|| {
                    if n == 1 {
                        "health check passed".to_string()
                    } else {
                        format!("{n} consecutive health checks passed")
                    }
                }),
            }
        }
        Event::CheckFailed(why) => failure(s, t, &format!("health check failed: {why}")),
        Event::LeaseLapsed { .. } if s.lease_lapsed => Step {
            state: s,
            transition: None,
        },
        Event::LeaseLapsed { checked: true } => failure(
            State {
                lease_lapsed: true,
                ..s
            },
            t,
            "lease expired",
        ),
        Event::LeaseLapsed { checked: false } => Step {
            state: State {
                up: false,
                lease_lapsed: true,
                passes: 0,
                failures: s.failures.saturating_add(1),
            },
            transition: s.up.then(|| "lease expired".to_string()),
        },
        Event::Heartbeat { checked: true } => Step {
            state: State {
                lease_lapsed: false,
                ..s
            },
            transition: None,
        },
        Event::Heartbeat { checked: false } => Step {
            state: State {
                up: true,
                failures: 0,
                passes: 0,
                lease_lapsed: false,
            },
            transition: (!s.up).then(|| "heartbeat".to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        failures_before_down: 3,
        passes_before_up: 2,
    };
    const UP: State = State {
        up: true,
        failures: 0,
        passes: 0,
        lease_lapsed: false,
    };

    fn run(mut s: State, events: &[Event<'_>]) -> (State, Vec<String>) {
        let mut reasons = vec![];
        for e in events {
            let step = step(s, T, *e);
            s = step.state;
            reasons.extend(step.transition);
        }
        (s, reasons)
    }

    #[test]
    fn failures_below_the_threshold_change_nothing() {
        let fail = Event::CheckFailed("timeout");
        let (s, reasons) = run(UP, &[fail, fail, Event::CheckPassed, fail, fail, Event::CheckPassed]);
        assert!(s.up);
        assert!(reasons.is_empty(), "{reasons:?}");
    }

    #[test]
    fn the_third_consecutive_failure_takes_it_down_and_two_passes_bring_it_back() {
        let fail = Event::CheckFailed("bad_status");
        let (s, reasons) = run(UP, &[fail, fail, fail]);
        assert!(!s.up);
        assert_eq!(reasons, ["health check failed: bad_status (3 consecutive failures)"]);
        let (s, reasons) = run(s, &[Event::CheckPassed, fail, Event::CheckPassed]);
        assert!(!s.up, "a pass, a failure and a pass are not two in a row");
        assert!(reasons.is_empty());
        let (s, reasons) = run(s, &[Event::CheckPassed]);
        assert!(s.up);
        assert_eq!(reasons, ["2 consecutive health checks passed"]);
    }

    #[test]
    fn a_lapse_counts_once_for_a_checked_instance() {
        let lapse = Event::LeaseLapsed { checked: true };
        let (s, reasons) = run(UP, &[lapse, lapse, lapse, lapse]);
        assert!(s.up, "one lapse is one failure, however often it is seen");
        assert_eq!(s.failures, 1);
        assert!(reasons.is_empty());
        let (s, reasons) = run(s, &[Event::CheckFailed("timeout"), Event::CheckFailed("timeout")]);
        assert!(!s.up);
        assert_eq!(reasons, ["health check failed: timeout (3 consecutive failures)"]);
        // A heartbeat renews the lease but does not vouch for health.
        let (s, _) = run(s, &[Event::Heartbeat { checked: true }]);
        assert!(!s.up);
        assert!(!s.lease_lapsed, "the next lapse counts again");
    }

    #[test]
    fn without_a_check_the_lease_decides() {
        let (s, reasons) = run(UP, &[Event::LeaseLapsed { checked: false }]);
        assert!(!s.up);
        assert_eq!(reasons, ["lease expired"]);
        let (s, reasons) = run(s, &[Event::LeaseLapsed { checked: false }]);
        assert!(!s.up);
        assert!(reasons.is_empty());
        let (s, reasons) = run(s, &[Event::Heartbeat { checked: false }]);
        assert!(s.up);
        assert_eq!(reasons, ["heartbeat"]);
    }

    #[test]
    fn thresholds_of_one_are_undamped() {
        let t = Thresholds {
            failures_before_down: 1,
            passes_before_up: 1,
        };
        let s = step(UP, t, Event::CheckFailed("timeout"));
        assert_eq!(s.transition.as_deref(), Some("health check failed: timeout"));
        let s = step(s.state, t, Event::CheckPassed);
        assert_eq!(s.transition.as_deref(), Some("health check passed"));
    }
}
