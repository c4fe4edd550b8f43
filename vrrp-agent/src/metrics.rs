//! Prometheus metrics (`--metrics-addr`, `[global] metrics_addr`): a small HTTP/1 server
//! (hyper) answering `GET /metrics` in the text exposition format (prometheus-client).
//!
//! Nothing is kept here: each scrape asks the supervisor's loop for its status
//! ([`crate::control::Request::Status`]: the core's snapshot, the health-check counts, and the
//! fast path's per-CPU counters summed at that moment) and renders it ([`render`]). The series
//! are documented in the README ("Operating").
use std::{convert::Infallible, net::SocketAddr};

use anyhow::{Context as _, Result};
use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, info::Info},
    registry::Registry,
};
use tokio::{net::TcpListener, sync::mpsc};
use vrrp_common::Counter as FpCounter;
use vrrp_core::{fsm::State, wire::RxError};

use crate::control::{ask_status, Request, StatusData};

type Labels = Vec<(String, String)>;

/// keepalived's numbers for the states, so that alerts written for its exporters carry over.
pub fn state_number(s: State) -> i64 {
    match s {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

fn gauges(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn counters(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn with(base: &Labels, k: &str, v: &str) -> Labels {
    let mut l = base.clone();
    l.push((k.into(), v.into()));
    l
}

/// The metrics of one status, in the text format.
pub fn render(d: &StatusData) -> String {
    let mut reg = Registry::default();
    reg.register(
        "vrrp_agent_build",
        "The running vrrp-agent",
        Info::new(vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]),
    );
    let state = gauges(
        &mut reg,
        "vrrp_instance_state",
        "State of the instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT (keepalived's numbers)",
    );
    let eff = gauges(
        &mut reg,
        "vrrp_instance_effective_priority",
        "Priority in effect (the configured one moved by trackers)",
    );
    let base = gauges(
        &mut reg,
        "vrrp_instance_base_priority",
        "Configured priority",
    );
    let rx = counters(
        &mut reg,
        "vrrp_instance_adverts_received",
        "Adverts accepted by the instance",
    );
    let tx = counters(
        &mut reg,
        "vrrp_instance_adverts_sent",
        "Adverts sent (priority 0 included)",
    );
    let tx_err = counters(
        &mut reg,
        "vrrp_instance_advert_send_errors",
        "Adverts the kernel had no room for (ENOBUFS, EAGAIN), each sent again shortly",
    );
    let became = counters(&mut reg, "vrrp_instance_became_master", "Changes to MASTER");
    let released = counters(
        &mut reg,
        "vrrp_instance_released_master",
        "Changes away from MASTER",
    );
    let transitions = counters(&mut reg, "vrrp_instance_transitions", "State changes");
    let errors = counters(
        &mut reg,
        "vrrp_instance_receive_errors",
        "Adverts for the instance dropped, by reason",
    );
    let garp = counters(
        &mut reg,
        "vrrp_instance_garp_sent",
        "Gratuitous ARPs (IPv4) and unsolicited neighbour advertisements (IPv6) sent",
    );
    let checks = counters(
        &mut reg,
        "vrrp_check_results",
        "Results of each health check's probes (success, failure)",
    );
    let xdp = counters(
        &mut reg,
        "vrrp_xdp_packets",
        "Frames seen by the XDP program, by outcome (the outcomes add up to all frames)",
    );
    let xdp_ev = counters(
        &mut reg,
        "vrrp_xdp_events",
        "Other XDP program counters (frames, VLAN tags, VMAC rewrites, truncated captures, \
         routine adverts queued without waking the agent)",
    );
    let tc = counters(
        &mut reg,
        "vrrp_tc_packets",
        "Frames seen by the TC egress classifier, by outcome",
    );
    let tc_ev = counters(
        &mut reg,
        "vrrp_tc_events",
        "Other TC egress classifier counters (frames, NDs without a link-layer option)",
    );
    for i in &d.snapshot.instances {
        let l: Labels = vec![
            ("instance".into(), i.name.clone()),
            ("interface".into(), i.iface_name.clone()),
            ("vrid".into(), i.vrid.to_string()),
            ("family".into(), i.family.name().into()),
        ];
        state.get_or_create(&l).set(state_number(i.state));
        eff.get_or_create(&l).set(i.effective_priority.into());
        base.get_or_create(&l).set(i.priority.into());
        rx.get_or_create(&l).inc_by(i.rx.accepted);
        tx.get_or_create(&l).inc_by(i.counters.adverts_sent);
        tx_err
            .get_or_create(&l)
            .inc_by(i.counters.advert_send_errors);
        became.get_or_create(&l).inc_by(i.counters.became_master);
        released.get_or_create(&l).inc_by(i.counters.left_master);
        transitions.get_or_create(&l).inc_by(i.counters.transitions);
        garp.get_or_create(&l).inc_by(i.counters.garp_sent);
        for (n, c) in RxError::NAMES.iter().zip(i.rx.errors.iter()) {
            errors.get_or_create(&with(&l, "reason", n)).inc_by(*c);
        }
    }
    for c in &d.checks {
        let l: Labels = vec![("check".into(), c.check.clone())];
        checks
            .get_or_create(&with(&l, "result", "success"))
            .inc_by(c.success);
        checks
            .get_or_create(&with(&l, "result", "failure"))
            .inc_by(c.failure);
    }
    for (iface, fc) in &d.fastpath {
        let Some(fc) = fc else { continue };
        let l: Labels = vec![("interface".into(), iface.clone())];
        for c in FpCounter::ALL {
            let v = fc.get(c);
            let name = c.name();
            if c.is_outcome() {
                xdp.get_or_create(&with(&l, "outcome", name)).inc_by(v);
            } else if c.is_egress_outcome() {
                tc.get_or_create(&with(&l, "outcome", name.trim_start_matches("egress_")))
                    .inc_by(v);
            } else if c.is_egress() {
                tc_ev
                    .get_or_create(&with(&l, "event", name.trim_start_matches("egress_")))
                    .inc_by(v);
            } else {
                xdp_ev.get_or_create(&with(&l, "event", name)).inc_by(v);
            }
        }
    }
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String");
    out
}

const TEXT_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Request>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |code: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = code;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            ctype.parse().expect("a header value"),
        );
        Ok(r)
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "see /metrics\n".into());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match ask_status(&tx).await {
        Ok(d) => reply(StatusCode::OK, TEXT_FORMAT, render(&d)),
        Err(e) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("{e}\n"),
        ),
    }
}

/// Listens on `addr` and serves `/metrics` from the loop's status (the listener is bound
/// before this returns: a taken address is an error at start-up).
pub async fn serve(
    addr: SocketAddr,
    tx: mpsc::Sender<Request>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("metrics address {addr}: cannot listen (is it this host's address, and free?)")
    })?;
    log::info!("metrics served on http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("metrics: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(req, tx.clone()));
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), svc);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastpath::Counters;
    use vrrp_core::{config::InstanceInput, fsm, Core, IfaceEnv};

    #[test]
    fn render_has_the_series() {
        let mut input = InstanceInput::default();
        input.set_str("interface", "eth9").unwrap();
        input.set_int("vrid", 7).unwrap();
        input.set_str("vips", "10.9.0.100/24").unwrap();
        let env = IfaceEnv {
            name: "eth9".into(),
            mac: vrrp_core::wire::MacAddr([2, 0, 0, 0, 0, 1]),
            addrs: vec!["10.9.0.1".parse().unwrap()],
        };
        let mut core = Core::new(vec![input.build(None).unwrap()], vec![env]).unwrap();
        core.handle(vrrp_core::Event::Startup, fsm::Instant::from_nanos(1));
        let mut fc = Counters(vec![0; FpCounter::ALL.len()]);
        fc.0[FpCounter::ArpReplied as usize] = 5;
        fc.0[FpCounter::EgressIpRewritten as usize] = 3;
        let d = StatusData {
            snapshot: core.snapshot(),
            now: fsm::Instant::from_nanos(2),
            fastpath: vec![("eth9".into(), Some(fc))],
            checks: vec![crate::control::CheckCount {
                check: "web".into(),
                success: 4,
                failure: 1,
            }],
        };
        let text = render(&d);
        let l = r#"instance="vrid7",interface="eth9",vrid="7",family="IPv4""#;
        for want in [
            format!("vrrp_instance_state{{{l}}} 1"),
            format!("vrrp_instance_effective_priority{{{l}}} 100"),
            format!("vrrp_instance_became_master_total{{{l}}} 0"),
            format!("vrrp_instance_transitions_total{{{l}}} 1"),
            format!("vrrp_instance_receive_errors_total{{{l},reason=\"ttl_not_255\"}} 0"),
            r#"vrrp_xdp_packets_total{interface="eth9",outcome="arp_replied"} 5"#.into(),
            r#"vrrp_tc_packets_total{interface="eth9",outcome="ip_rewritten"} 3"#.into(),
            r#"vrrp_tc_events_total{interface="eth9",event="frames"} 0"#.into(),
            r#"vrrp_check_results_total{check="web",result="failure"} 1"#.into(),
            format!(
                "vrrp_agent_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(text.contains(&want), "no {want} in\n{text}");
        }
    }
}
