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

    /// Whether to try the provider now, or how long until it may be tried. A trial after the
    /// cooldown holds the breaker open for others until its outcome is known (or another
    /// cooldown has passed).
    pub fn admit(&self) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match state.open_until {
            Some(until) if now < until => Err(until - now),
            Some(_) => {
                state.open_until = Some(now + self.cooldown);
                Ok(())
            }
            None => Ok(()),
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
        assert!(breaker.admit().is_ok(), "one failure leaves it closed");
        breaker.failed();
        let wait = breaker.admit().unwrap_err();
        assert!(wait <= Duration::from_millis(50) && breaker.is_open(), "{wait:?}");
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.admit().is_ok(), "a trial after the cooldown");
        assert!(breaker.admit().is_err(), "only one trial at a time");
        breaker.succeeded();
        assert!(breaker.admit().is_ok() && !breaker.is_open());
    }
}
