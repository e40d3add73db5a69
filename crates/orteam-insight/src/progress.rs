//! Progress reporting for long reports and reconciliation. The library only calls the trait;
//! the CLI draws a bar on a terminal and nothing when piped.

/// Receives progress of a long operation. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A phase starts with `total` steps (0 when unknown).
    fn begin(&self, _what: &str, _total: u64) {}
    /// `n` steps done.
    fn advance(&self, _n: u64) {}
    /// The phase is over.
    fn end(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
