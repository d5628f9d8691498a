//! A circuit breaker per provider and replica: after `failures` failures in a row the provider
//! is skipped for `cooldown`; then one notification tries it (half-open), and its outcome
//! closes or reopens it.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct Breaker {
    failures: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_a_row: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(failures: u32, cooldown: Duration) -> Self {
        Self {
            failures,
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether to try the provider now. A trial after the cooldown holds the breaker open for
    /// others until its outcome is known (or another cooldown has passed).
    pub fn admit(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                state.open_until = Some(Instant::now() + self.cooldown);
                true
            }
            None => true,
        }
    }

    pub fn succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = State::default();
    }

    pub fn failed(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_a_row = state.in_a_row.saturating_add(1);
        if state.in_a_row >= self.failures {
            state.open_until = Some(Instant::now() + self.cooldown);
        }
    }

    pub fn is_open(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.open_until.is_some_and(|until| Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_half_opens_after_the_cooldown() {
        let breaker = Breaker::new(2, Duration::from_millis(50));
        breaker.failed();
        assert!(breaker.admit(), "one failure leaves it closed");
        breaker.failed();
        assert!(!breaker.admit() && breaker.is_open());
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.admit(), "a trial after the cooldown");
        assert!(!breaker.admit(), "only one trial at a time");
        breaker.succeeded();
        assert!(breaker.admit() && !breaker.is_open());
    }
}
