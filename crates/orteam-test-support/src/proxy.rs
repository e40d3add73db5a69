//! A TCP proxy a test can cut: database loss without stopping the (shared) database server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every connection to `target` until [`CuttableProxy::cut`]: then every open
/// connection is closed and new ones are closed on accept, until [`CuttableProxy::restore`].
pub struct CuttableProxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    /// Starts a proxy to `target` on an ephemeral loopback port.
    pub async fn start(target: SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (open2, cuts2) = (open.clone(), cuts.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !open2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = cuts2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        CuttableProxy {
            addr,
            open,
            cuts,
            accept,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// `url` (a `postgres://user@host:port/…` URL) with its host and port replaced by the
    /// proxy's.
    pub fn postgres_url(&self, url: &str) -> String {
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        let rest = &url[scheme_end..];
        let host_start = rest.find('@').map_or(0, |i| i + 1);
        let host_end = rest[host_start..]
            .find(['/', '?'])
            .map_or(rest.len(), |i| host_start + i);
        format!(
            "{}{}{}{}",
            &url[..scheme_end],
            &rest[..host_start],
            self.addr,
            &rest[host_end..]
        )
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cuts.send_modify(|n| *n += 1);
    }
}

/// The host and port of a `postgres://user@host:port/…` URL.
pub fn postgres_addr(url: &str) -> SocketAddr {
    let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
    let rest = &rest[rest.find('@').map_or(0, |i| i + 1)..];
    let hostport = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    let hostport = hostport.replace("localhost", "127.0.0.1");
    hostport.parse().expect("a host:port in the PostgreSQL URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_rewritten_to_the_proxy() {
        let proxy = CuttableProxy::start("127.0.0.1:5432".parse().unwrap()).await;
        let url = "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Dt_1";
        assert_eq!(postgres_addr(url), "127.0.0.1:5432".parse().unwrap());
        assert_eq!(
            proxy.postgres_url(url),
            format!(
                "postgres://postgres@{}/test?options=-c%20search_path%3Dt_1",
                proxy.addr()
            )
        );
    }
}
