//! systemd's readiness protocol (`Type=notify`): one datagram to `$NOTIFY_SOCKET`. Without that
//! variable (not started by systemd) nothing is sent.

/// Sends `state` (`READY=1`, `STOPPING=1`) to systemd, if it is listening. Failures are logged:
/// a unit that waits for readiness then times out, which says more than a crash here would.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(err) = send(&path, state) {
        tracing::warn!(%err, "could not notify systemd");
    }
}

fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket (systemd may use one in containers).
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}
