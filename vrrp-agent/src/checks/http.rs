//! HTTP(S) check (reqwest with rustls on the ring provider): a GET whose status is in one of
//! the accepted ranges and, with `body_contains`, whose body (the first [`BODY_LIMIT`] bytes)
//! contains the text, within the timeout. Every probe opens a new connection (no pooling: a
//! server that only serves old connections is not healthy), follows no redirect (a 3xx is a
//! status like any other) and uses no proxy. `host` overrides the Host header and the TLS SNI
//! while connecting to the URL's address; `tls_verify = false` accepts any certificate.
use std::{net::SocketAddr, time::Duration};

use reqwest::{redirect, Client, Url};

/// How much of the body is searched for `body_contains`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// One HTTP check's settings.
#[derive(Clone, Debug)]
pub struct HttpSpec {
    pub url: String,
    pub tls: bool,
    /// Accepted statuses, inclusive ranges.
    pub status: Vec<(u16, u16)>,
    pub body_contains: Option<String>,
    pub host: Option<String>,
    pub tls_verify: bool,
}

/// One HTTP check: its settings and its client (built on the first probe, again after a
/// failure to build it).
pub struct Http {
    spec: HttpSpec,
    client: Option<(Client, Url)>,
}

/// Installs rustls' ring provider as the process default (once; reqwest is built without a
/// provider of its own, so that no cmake is needed for aws-lc).
fn crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Http {
    pub fn new(spec: HttpSpec) -> Self {
        Self { spec, client: None }
    }

    /// The URL to request and the client that requests it.
    async fn build(&self, timeout: Duration) -> Result<(Client, Url), String> {
        crypto_provider();
        let raw = &self.spec.url;
        let with_scheme = if raw.contains("://") {
            raw.clone()
        } else if self.spec.tls {
            format!("https://{raw}")
        } else {
            format!("http://{raw}")
        };
        let mut url = Url::parse(&with_scheme).map_err(|e| format!("URL {raw}: {e}"))?;
        let mut b = Client::builder()
            .tls_backend_rustls()
            .no_proxy()
            .redirect(redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("vrrp-agent/", env!("CARGO_PKG_VERSION")));
        if !self.spec.tls_verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(host) = &self.spec.host {
            // Connect to the URL's address, but name `host` in the Host header and the SNI.
            let port = url
                .port_or_known_default()
                .ok_or_else(|| format!("URL {raw}: no port"))?;
            let addrs: Vec<SocketAddr> = match url.host() {
                Some(url::Host::Ipv4(a)) => vec![SocketAddr::new(a.into(), port)],
                Some(url::Host::Ipv6(a)) => vec![SocketAddr::new(a.into(), port)],
                Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port))
                    .await
                    .map_err(|e| format!("resolving {d}: {e}"))?
                    .collect(),
                None => return Err(format!("URL {raw}: no host")),
            };
            url.set_host(Some(host))
                .map_err(|e| format!("host {host}: {e}"))?;
            b = b.resolve_to_addrs(host, &addrs);
        }
        let client = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok((client, url))
    }

    /// One probe.
    pub async fn probe(&mut self, timeout: Duration) -> Result<(), String> {
        if self.client.is_none() {
            self.client = Some(self.build(timeout).await?);
        }
        let (client, url) = self.client.as_ref().expect("built above");
        let fut = async {
            let mut resp = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| format!("GET {url}: {}", chain(&e)))?;
            let code = resp.status().as_u16();
            if !self
                .spec
                .status
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&code))
            {
                return Err(format!("GET {url}: status {code}"));
            }
            let Some(want) = &self.spec.body_contains else {
                return Ok(());
            };
            let mut body = Vec::new();
            while body.len() < BODY_LIMIT {
                match resp.chunk().await {
                    Ok(Some(c)) => body.extend_from_slice(&c),
                    Ok(None) => break,
                    Err(e) => return Err(format!("GET {url}: reading the body: {}", chain(&e))),
                }
                if contains(&body, want.as_bytes()) {
                    return Ok(());
                }
            }
            if contains(&body[..body.len().min(BODY_LIMIT)], want.as_bytes()) {
                Ok(())
            } else {
                Err(format!("GET {url}: the body does not contain {want:?}"))
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("GET {url}: no complete answer within {timeout:?}")),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// An error with its causes (reqwest's top-level message alone says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A one-shot HTTP server on loopback answering every request with `status` and `body`;
    /// returns its address and the Host headers it saw.
    async fn server(
        status: u16,
        body: &'static str,
    ) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0; 4096];
                let n = s.read(&mut buf).await.unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let host = req
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").or(l.strip_prefix("Host: ")))
                    .unwrap_or("")
                    .to_owned();
                let _ = tx.send(host);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        (addr, rx)
    }

    fn spec(url: String) -> HttpSpec {
        HttpSpec {
            url,
            tls: false,
            status: vec![(200, 399)],
            body_contains: None,
            host: None,
            tls_verify: true,
        }
    }

    const T: Duration = Duration::from_secs(3);

    #[tokio::test]
    async fn status_ranges_body_and_host() {
        let (addr, mut hosts) = server(202, "all ok here").await;
        let url = format!("http://{addr}/healthz");
        Http::new(spec(url.clone())).probe(T).await.unwrap();
        let mut s = spec(url.clone());
        s.status = vec![(200, 200)];
        let e = Http::new(s).probe(T).await.unwrap_err();
        assert!(e.contains("status 202"), "{e}");
        let mut s = spec(url.clone());
        s.status = vec![(200, 200), (202, 202)];
        s.body_contains = Some("ok here".into());
        Http::new(s.clone()).probe(T).await.unwrap();
        s.body_contains = Some("not there".into());
        let e = Http::new(s).probe(T).await.unwrap_err();
        assert!(e.contains("does not contain"), "{e}");
        while hosts.try_recv().is_ok() {}
        let mut s = spec(url);
        s.host = Some("example.org".into());
        Http::new(s).probe(T).await.unwrap();
        assert_eq!(
            hosts.recv().await.unwrap(),
            format!("example.org:{}", addr.port())
        );
    }

    #[tokio::test]
    async fn refused_and_silent_servers_fail_within_the_timeout() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // Accepts (the kernel's backlog) but never answers.
        let t = std::time::Instant::now();
        let e = Http::new(spec(format!("http://{addr}/")))
            .probe(Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(e.contains(&addr.to_string()), "{e}");
        drop(l);
        let e = Http::new(spec(format!("http://{addr}/")))
            .probe(T)
            .await
            .unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }

    /// TLS: the client builds with the ring provider and fails cleanly against a server that
    /// does not speak TLS (with and without verification).
    #[tokio::test]
    async fn https_against_plain_http_fails_cleanly() {
        let (addr, _h) = server(200, "ok").await;
        for verify in [true, false] {
            let mut s = spec(format!("https://{addr}/"));
            s.tls = true;
            s.tls_verify = verify;
            Http::new(s).probe(T).await.unwrap_err();
        }
    }
}
