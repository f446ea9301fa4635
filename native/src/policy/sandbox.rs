//! The engine policies run on: epoch interruption for per-call deadlines, and a ticker
//! thread that advances the epoch only while some policy call is running (an idle tunnel
//! costs no wake-ups).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// Epoch ticks per deadline: a call is stopped between 9/10 and 10/10 of its deadline.
pub(crate) const TICKS_PER_DEADLINE: u64 = 10;

/// The policies' engine and its epoch ticker. Dropping it stops the ticker thread.
pub(crate) struct Sandbox {
    engine: Engine,
    ticker: Arc<Ticker>,
}

#[derive(Default)]
struct TickerState {
    /// Policy calls (or instantiations) in progress.
    active: usize,
    /// Set when the sandbox is dropped.
    stop: bool,
}

struct Ticker {
    state: Mutex<TickerState>,
    wake: Condvar,
}

impl Ticker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TickerState> {
        // The state is two counters: a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps the epoch advancing while it lives: hold one across every entry into a policy.
pub(crate) struct Running {
    ticker: Arc<Ticker>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.ticker.lock().active -= 1;
    }
}

impl Sandbox {
    /// An engine with epoch interruption and a ticker advancing it every `deadline / 10`.
    pub(crate) fn new(deadline: Duration) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // A policy is small: keep its stack modest so a runaway recursion traps early.
        config.max_wasm_stack(256 << 10);
        let engine = Engine::new(&config)?;
        let ticker = Arc::new(Ticker {
            state: Mutex::new(TickerState::default()),
            wake: Condvar::new(),
        });
        let tick = (deadline / TICKS_PER_DEADLINE as u32).max(Duration::from_micros(100));
        let thread_engine = engine.clone();
        let thread_ticker = ticker.clone();
        thread::Builder::new()
            .name("policy-epoch".to_owned())
            .spawn(move || tick_while_running(&thread_engine, &thread_ticker, tick))
            .map_err(wasmtime::Error::from)?;
        Ok(Self { engine, ticker })
    }

    /// The engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Marks a policy call as running until the guard is dropped.
    pub(crate) fn running(&self) -> Running {
        let mut state = self.ticker.lock();
        state.active += 1;
        if state.active == 1 {
            self.ticker.wake.notify_one();
        }
        Running {
            ticker: self.ticker.clone(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker.lock().stop = true;
        self.ticker.wake.notify_one();
    }
}

fn tick_while_running(engine: &Engine, ticker: &Ticker, tick: Duration) {
    loop {
        {
            let mut state = ticker.lock();
            while state.active == 0 && !state.stop {
                state = ticker
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
        }
        thread::sleep(tick);
        engine.increment_epoch();
    }
}
