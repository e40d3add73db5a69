//! Domain types shared by every orteam crate. No I/O lives here.
//!
//! - [`Money`]: an exact decimal amount of US dollars (never a float).
//! - [`Window`]: the UTC calendar windows budgets and key limits reset on.
//! - [`Clock`]: the source of "now", controllable in tests and in the simulator.
//! - [`ApiRoute`]: the gateway API route a request came in on (chat, messages, responses…).

pub mod clock;
pub mod money;
pub mod route;
pub mod window;

pub use clock::{Clock, ControllableClock, SharedClock, SystemClock};
pub use money::{Money, MoneyError};
pub use route::{ApiRoute, UnknownApiRoute};
pub use rust_decimal;
pub use window::Window;
