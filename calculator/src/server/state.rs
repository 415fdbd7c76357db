//! Everything the handlers share. Every collection here is bounded.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use super::log::Logger;
use super::metrics::Metrics;
use crate::ops::Operation;
use crate::settings::{MAX_HISTORY, Settings};

pub const SERVICE: &str = "calculator";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit this binary was built from: `SOURCE_REVISION` at compile time
/// (`shipit build` sets it in both modes); "unknown" otherwise.
pub const REVISION: &str = match option_env!("SOURCE_REVISION") {
    Some(r) => r,
    None => "unknown",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Starting = 0,
    Ready = 1,
    Draining = 2,
}

/// One successful calculation; formatted as JSON only when `/history` is read.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub id: u64,
    pub operation: Operation,
    pub operands: Vec<f64>,
    pub result: f64,
    pub at: SystemTime,
}

/// Lock-free counters behind `/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    pub calculations: AtomicU64,
    pub errors: AtomicU64,
    /// Indexed like `Operation::ALL`.
    pub by_operation: [AtomicU64; 10],
}

impl Stats {
    pub fn success(&self, operation: Operation) {
        self.calculations.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = Operation::ALL.iter().position(|op| *op == operation) {
            self.by_operation[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct AppState {
    pub settings: Settings,
    pub started: Instant,
    readiness: AtomicU8,
    pub history: Mutex<VecDeque<HistoryEntry>>,
    pub history_limit: usize,
    pub stats: Stats,
    /// The memory register, as f64 bits.
    memory: AtomicU64,
    pub metrics: Metrics,
    pub logger: Logger,
    next_request: AtomicU64,
    next_calculation: AtomicU64,
    id_prefix: u32,
}

impl AppState {
    pub fn new(settings: Settings) -> AppState {
        let logger = Logger::new(settings.log_level, settings.log_format);
        AppState::with_logger(settings, logger)
    }

    pub fn with_logger(settings: Settings, logger: Logger) -> AppState {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let history_limit = settings.history_limit.clamp(1, MAX_HISTORY);
        AppState {
            started: Instant::now(),
            readiness: AtomicU8::new(Readiness::Starting as u8),
            history: Mutex::new(VecDeque::with_capacity(history_limit)),
            history_limit,
            stats: Stats::default(),
            memory: AtomicU64::new(0f64.to_bits()),
            metrics: Metrics::new(VERSION, REVISION),
            logger,
            next_request: AtomicU64::new(1),
            next_calculation: AtomicU64::new(1),
            id_prefix: nanos ^ std::process::id().rotate_left(16),
            settings,
        }
    }

    pub fn readiness(&self) -> Readiness {
        match self.readiness.load(Ordering::Acquire) {
            1 => Readiness::Ready,
            2 => Readiness::Draining,
            _ => Readiness::Starting,
        }
    }

    pub fn set_readiness(&self, readiness: Readiness) {
        self.readiness.store(readiness as u8, Ordering::Release);
    }

    /// A new request id: this process's prefix and a sequence number.
    pub fn new_request_id(&self) -> String {
        format!(
            "{:08x}-{:012x}",
            self.id_prefix,
            self.next_request.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub fn next_calculation_id(&self) -> u64 {
        self.next_calculation.fetch_add(1, Ordering::Relaxed)
    }

    pub fn memory(&self) -> f64 {
        f64::from_bits(self.memory.load(Ordering::Acquire))
    }

    pub fn set_memory(&self, value: f64) {
        self.memory.store(value.to_bits(), Ordering::Release);
    }

    /// Adds to the memory register at once (M+); `None`, unchanged, when
    /// the sum would not be finite.
    pub fn add_memory(&self, value: f64) -> Option<f64> {
        let mut sum = None;
        let _ = self
            .memory
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let next = f64::from_bits(bits) + value;
                sum = next.is_finite().then_some(next);
                sum.map(f64::to_bits)
            });
        sum
    }

    pub fn record(&self, entry: HistoryEntry) {
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if history.len() == self.history_limit {
            history.pop_back();
        }
        history.push_front(entry);
    }
}
