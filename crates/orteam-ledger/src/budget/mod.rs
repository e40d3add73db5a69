//! Budget enforcement: the in-memory [`engine::BudgetEngine`] shared by both backends, and the
//! [`Reservation`] guard handed to callers.

pub mod engine;
mod reservation;

pub(crate) use reservation::InFlight;
pub use reservation::{Durability, Reservation, Settled};
