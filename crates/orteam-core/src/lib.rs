//! Domain types shared by every orteam crate. No I/O lives here.
//!
//! - [`Money`]: an exact decimal amount of US dollars (never a float).
//! - [`Window`]: the UTC calendar windows budgets and key limits reset on.
//! - [`Clock`]: the source of "now", controllable in tests and in the simulator.
//! - [`ApiRoute`]: the gateway API route a request came in on (chat, messages, responses…).
//! - [`access`]: roles and the one authorization rule ([`access::authorize`]).
//! - [`env`]: the name of every environment variable orteam reads.
//! - [`BudgetScope`], [`Outcome`]: a budget's level and how a request ended (the ledger stores
//!   them, the dashboards show them).

pub mod access;
pub mod clock;
pub mod env;
pub mod latency;
pub mod money;
pub mod refusal;
pub mod route;
pub mod scope;
pub mod window;

pub use clock::{Clock, ControllableClock, SharedClock, SystemClock};
pub use money::{Money, MoneyError};
pub use route::{ApiRoute, UnknownApiRoute};
pub use rust_decimal;
pub use scope::{BudgetScope, Outcome};
pub use window::Window;
