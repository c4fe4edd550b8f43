//! TCP check: a connect within the timeout is a success. The socket is closed with an RST
//! (`SO_LINGER` 0), so that hundreds of sub-second checks leave no TIME_WAIT sockets behind.
use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpStream;

/// One probe: `Ok(())` if `target` accepted a connection within `timeout`.
pub async fn probe(target: SocketAddr, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Ok(Ok(s)) => {
            let _ = s.set_zero_linger();
            Ok(())
        }
        Ok(Err(e)) => Err(format!("connecting to {target}: {e}")),
        Err(_) => Err(format!(
            "connecting to {target}: no answer within {timeout:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_to_a_listener_and_fails_on_a_closed_port() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        probe(addr, Duration::from_secs(2)).await.unwrap();
        drop(l);
        let e = probe(addr, Duration::from_secs(2)).await.unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }
}
