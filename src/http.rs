//! The one network client of jpkid: an HTTP/1.0 POST for OCSP, injected into `pki` as its
//! [`Fetch`]. One deadline bounds the whole exchange — name resolution, connect, request and
//! answer — so a responder that trickles its answer, or a resolver that does not answer, costs
//! a verification no more than its deadline. The answer is bounded at [`MAX_RESPONSE`] bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::pki::ocsp::{Fetch, FetchError, MAX_RESPONSE};

/// OCSP over plain HTTP (OCSP answers are signed; no TLS is needed or used).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFetch;

/// (host, port, path) of an `http://` URL.
fn parse_url(url: &str) -> Result<(String, u16, String), FetchError> {
    let rest = url.strip_prefix("http://").ok_or(FetchError::Url)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| FetchError::Url)?),
        None => (authority, 80),
    };
    let bad = |s: &str| s.contains(|c: char| c.is_ascii_control() || c == ' ');
    if host.is_empty() || bad(path) || bad(host) {
        return Err(FetchError::Url);
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

/// What is left of the time until `deadline`, or [`FetchError::Timeout`].
fn left(deadline: Instant) -> Result<Duration, FetchError> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(FetchError::Timeout)
    } else {
        Ok(d)
    }
}

/// Resolves `host:port` on a thread of its own, waiting no later than `deadline` (the system
/// resolver has no timeout a caller can set).
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, FetchError> {
    let (tx, rx) = mpsc::channel();
    let name = (host.to_owned(), port);
    std::thread::Builder::new()
        .name("ocsp-resolve".into())
        .spawn(move || {
            let _ = tx.send(name.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
        })
        .map_err(|e| FetchError::Unreachable(format!("cannot start resolving: {e}")))?;
    match rx.recv_timeout(left(deadline)?) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(FetchError::Unreachable(format!("{host} has no address"))),
        Ok(Err(e)) => Err(FetchError::Unreachable(format!(
            "cannot resolve {host}: {e}"
        ))),
        Err(_) => Err(FetchError::Timeout),
    }
}

fn io(e: &std::io::Error) -> FetchError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => FetchError::Timeout,
        _ => FetchError::Unreachable(e.to_string()),
    }
}

impl Fetch for HttpFetch {
    fn post(&self, url: &str, request: &[u8], deadline: Instant) -> Result<Vec<u8>, FetchError> {
        let (host, port, path) = parse_url(url)?;
        let mut last = None;
        let mut stream = None;
        for addr in resolve(&host, port, deadline)? {
            match TcpStream::connect_timeout(&addr, left(deadline)?) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(io(&e)),
            }
        }
        let mut stream = stream.ok_or_else(|| {
            last.unwrap_or_else(|| FetchError::Unreachable("no address answered".into()))
        })?;
        let head = format!(
            "POST {path} HTTP/1.0\r\nHost: {host}:{port}\r\nContent-Type: application/ocsp-request\r\n\
             Accept: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            request.len()
        );
        stream
            .set_write_timeout(Some(left(deadline)?))
            .map_err(|e| io(&e))?;
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(request))
            .and_then(|()| stream.flush())
            .map_err(|e| io(&e))?;
        // Every read waits no longer than what is left: a responder that sends a byte now and
        // then cannot stretch the exchange past the deadline.
        let mut answer = Vec::with_capacity(8 * 1024);
        let mut chunk = [0u8; 8 * 1024];
        loop {
            stream
                .set_read_timeout(Some(left(deadline)?))
                .map_err(|e| io(&e))?;
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(&e)),
            };
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
            if answer.len() > MAX_RESPONSE + 16 * 1024 {
                return Err(FetchError::TooLarge);
            }
        }
        body_of(answer)
    }
}

/// The body of a `200` HTTP/1.x answer.
fn body_of(mut answer: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(FetchError::Http)?;
    let status_line = answer[..split]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let mut parts = status_line.split(|&b| b == b' ');
    let proto_ok = parts.next().is_some_and(|p| p.starts_with(b"HTTP/1."));
    if !proto_ok || parts.next() != Some(b"200".as_slice()) {
        return Err(FetchError::Http);
    }
    let body = answer.split_off(split + 4);
    if body.is_empty() {
        return Err(FetchError::Http);
    }
    if body.len() > MAX_RESPONSE {
        return Err(FetchError::TooLarge);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/ocsp").unwrap(),
            ("127.0.0.1".into(), 8080, "/ocsp".into())
        );
        assert_eq!(parse_url("http://h").unwrap(), ("h".into(), 80, "/".into()));
        assert!(parse_url("https://h/").is_err());
        assert!(parse_url("http://h:99999/").is_err());
        assert!(parse_url("http://h/a\r\nX: y").is_err());
    }

    #[test]
    fn answers() {
        assert_eq!(
            body_of(b"HTTP/1.0 200 OK\r\nX: y\r\n\r\nbody".to_vec()).unwrap(),
            b"body"
        );
        assert!(matches!(
            body_of(b"HTTP/1.0 404 No\r\n\r\nx".to_vec()),
            Err(FetchError::Http)
        ));
        assert!(matches!(
            body_of(b"HTTP/1.0 200 OK\r\n\r\n".to_vec()),
            Err(FetchError::Http)
        ));
    }

    /// A responder that sends one byte every 100 ms never ends on its own: the deadline ends
    /// the exchange (per-read timeouts alone would wait forever).
    #[test]
    fn a_trickling_responder_is_cut_at_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            for _ in 0..100 {
                if s.write_all(b"H").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let deadline = Instant::now() + Duration::from_millis(800);
        let r = HttpFetch.post(&format!("http://127.0.0.1:{port}/"), b"req", deadline);
        assert!(matches!(r, Err(FetchError::Timeout)), "{r:?}");
        drop(server);
    }
}
