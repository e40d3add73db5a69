use std::sync::{Arc, Mutex};
use std::time::Duration;

use orteam_openrouter::{Client, Jitter, RetryPolicy};
use orteam_sim::{Fault, FaultRule, SimConfig, SimHandle};
use secrecy::SecretString;
use tracing_subscriber::fmt::MakeWriter;

pub async fn sim() -> SimHandle {
    orteam_sim::spawn(SimConfig::default())
        .await
        .expect("simulator starts")
}

/// Retries with millisecond backoff (Retry-After still honoured, capped at 5 s).
pub fn fast_policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(10),
        jitter: Jitter::None,
        max_retry_after: Duration::from_secs(5),
    }
}

pub fn client_with(sim: &SimHandle, key: &str) -> Client {
    Client::builder()
        .base_url(sim.base_url())
        .api_key(SecretString::from(key))
        .retry_policy(fast_policy(3))
        .build()
        .expect("client builds")
}

/// A management-key client.
pub fn mgmt(sim: &SimHandle) -> Client {
    client_with(sim, sim.provisioning_key())
}

/// A fresh inference key and its client.
pub fn inference(sim: &SimHandle, name: &str) -> (Client, String, String) {
    let (secret, hash) = sim.create_key(name, None, None);
    (client_with(sim, &secret), secret, hash)
}

pub fn status_fault(method: &str, path: &str, status: u16, retry_after: Option<&str>) -> FaultRule {
    FaultRule::always(Fault::Status {
        status,
        retry_after: retry_after.map(str::to_owned),
        message: None,
    })
    .on(method, path)
}

/// A `tracing` writer that keeps everything written to it, for tests that grep the logs.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> LogCapture {
        self.clone()
    }
}
