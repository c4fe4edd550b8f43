//! ICMP check: an echo reply within the timeout is a success (surge-ping; IPv4 and IPv6). All
//! ICMP checks of a family share one socket (an ICMP datagram socket where the namespace's
//! `net.ipv4.ping_group_range` allows it, else a raw one); each check has its own identifier
//! and sequence numbers, so replies are matched to their probe.
use std::{net::IpAddr, time::Duration};

use surge_ping::{Client, Config, PingIdentifier, PingSequence, Pinger, ICMP};

/// The shared sockets, opened on first use.
#[derive(Default)]
pub struct Sockets {
    v4: Option<Client>,
    v6: Option<Client>,
}

impl Sockets {
    fn client(&mut self, v6: bool) -> std::io::Result<Client> {
        let slot = if v6 { &mut self.v6 } else { &mut self.v4 };
        if let Some(c) = slot {
            return Ok(c.clone());
        }
        let kind = if v6 { ICMP::V6 } else { ICMP::V4 };
        let c = Client::new(&Config::builder().kind(kind).build())?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// A pinger of `target` with identifier `ident`.
    pub async fn pinger(&mut self, target: IpAddr, ident: u16) -> Result<Icmp, String> {
        let client = self.client(target.is_ipv6()).map_err(|e| {
            format!("opening an ICMP socket: {e} (run as root or with CAP_NET_RAW)")
        })?;
        Ok(Icmp {
            pinger: client.pinger(target, PingIdentifier(ident)).await,
            target,
            seq: 0,
        })
    }
}

/// One ICMP check's pinger.
pub struct Icmp {
    pinger: Pinger,
    target: IpAddr,
    seq: u16,
}

impl Icmp {
    /// One probe: one echo request, `Ok(())` if its reply came within `timeout`.
    pub async fn probe(&mut self, timeout: Duration) -> Result<(), String> {
        self.seq = self.seq.wrapping_add(1);
        self.pinger.timeout(timeout);
        match self
            .pinger
            .ping(PingSequence(self.seq), b"vrrp-agent check")
            .await
        {
            Ok(_) => Ok(()),
            Err(surge_ping::SurgeError::Timeout { .. }) => Err(format!(
                "no echo reply from {} within {timeout:?}",
                self.target
            )),
            Err(e) => Err(format!("pinging {}: {e}", self.target)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback answers (needs an ICMP socket: root, CAP_NET_RAW or ping_group_range).
    #[tokio::test]
    async fn loopback_answers() {
        let mut s = Sockets::default();
        for target in ["127.0.0.1", "::1"] {
            let mut p = s.pinger(target.parse().unwrap(), 4242).await.unwrap();
            p.probe(Duration::from_secs(2)).await.unwrap();
            p.probe(Duration::from_secs(2)).await.unwrap();
        }
    }
}
