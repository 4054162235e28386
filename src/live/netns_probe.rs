//! httpGet and tcpSocket probes of a live pod. There is no CNI, so a pod's
//! only network is the loopback of its sandbox's network namespace: the
//! probe enters that namespace (`setns`, on a thread of its own, since a
//! thread that entered it stays there) and connects to 127.0.0.1, as the
//! kubelet's prober connects to the pod IP. An HTTP status from 200 to 399
//! passes, as upstream's prober decides; a refused or timed-out connection
//! fails with the words the kubelet's `Unhealthy` events use.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::model::kubelet::runtime::Handler;

/// Runs `handler` inside the network namespace of process `pid`:
/// (passed, what it said).
pub fn probe(pid: u32, handler: &Handler, timeout: Duration) -> (bool, String) {
    let handler = handler.clone();
    let t = std::thread::spawn(move || -> (bool, String) {
        if let Err(e) = enter_netns(pid) {
            return (false, format!("entering the pod's network namespace: {e}"));
        }
        match &handler {
            Handler::TcpSocket { port } => match connect(*port, timeout) {
                Ok(_) => (true, String::new()),
                Err(e) => (false, format!("dial tcp 127.0.0.1:{port}: {e}")),
            },
            Handler::HttpGet { port, path } => http_get(*port, path, timeout),
            Handler::Exec(_) => (false, "an exec probe runs in the container".into()),
        }
    });
    t.join()
        .unwrap_or_else(|_| (false, "probe thread panicked".into()))
}

fn enter_netns(pid: u32) -> std::io::Result<()> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    // SAFETY: setns on an fd we own; it changes only this thread's
    // network namespace, and the thread ends with the probe.
    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn connect(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// A GET as the kubelet's prober sends it (its User-Agent and Accept).
fn http_get(port: u16, path: &str, timeout: Duration) -> (bool, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut s = match connect(port, timeout) {
        Ok(s) => s,
        Err(e) => {
            return (
                false,
                format!("Get \"{url}\": dial tcp 127.0.0.1:{port}: {e}"),
            )
        }
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/1.34\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = s.write_all(req.as_bytes()) {
        return (false, format!("Get \"{url}\": {e}"));
    }
    let mut head = [0u8; 64];
    let n = match s.read(&mut head) {
        Ok(n) => n,
        Err(e) => return (false, format!("Get \"{url}\": {e}")),
    };
    match status_code(&head[..n]) {
        Some(code) if (200..400).contains(&code) => (true, String::new()),
        Some(code) => (false, format!("HTTP probe failed with statuscode: {code}")),
        None => (false, format!("Get \"{url}\": malformed HTTP response")),
    }
}

/// The status of an HTTP/1.x status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_decides() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"SSH-2.0-x\r\n"), None);
    }
}
