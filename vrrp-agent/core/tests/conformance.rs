//! Table-driven conformance suite of the [`Core`], in the spirit of holo-vrrp's: every file in
//! `tests/conformance/*.toml` is one scenario (interfaces, instances with the configuration
//! file's keys, then events at times with the commands and notifications they must produce).
//! A new feature adds a file here, not a test function. `README.md` in that folder describes
//! the format.
//!
//! The runner plays a perfect executor on a simulated clock: it fires the core's timers at the
//! times [`Core::poll_timeout`] asks for, reports every advert as sent at once
//! ([`Event::AdvertSent`]) and every claim / release as done ([`Event::Report`]) unless the
//! scenario says they fail, and renders every command as one line (`@TIME what ...`). A step
//! lists exactly the lines produced from the previous step's end up to and including its own
//! event; any difference fails the scenario with both lists.
//!
//! `VRRP_CONFORMANCE=name` runs only the scenarios whose file name contains `name`;
//! `VRRP_CONFORMANCE_PRINT=1` prints what each step produced (to write a new scenario).

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use vrrp_core::{
    config::{
        check_model, cross_check, CheckInput, InstanceInput, InstanceSpec, SyncGroupInput, Value,
    },
    fsm::Instant,
    node::{reason_name, state_name},
    wire::{
        vrrp_group, AdvertFrame, ArpFrame, Auth, ChecksumOpts, IpPair, MacAddr, NdpFrame,
        NdpMessage, VrrpRepr,
    },
    Command, Core, Event, Family, IfaceEnv, IfaceId, InstanceId, Model, Notification, Received,
    Report, TrackerId, Version,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Seconds (as written in a scenario) → the simulated clock.
fn instant(secs: f64) -> Instant {
    assert!(secs >= 0.0 && secs.is_finite(), "time {secs} is not >= 0");
    Instant::from_nanos((secs * 1e9).round() as u64)
}

/// The simulated clock → seconds, shortest form (`3.609375`, `0`).
fn secs(t: Instant) -> String {
    format!("{}", t.as_nanos() as f64 / 1e9)
}

fn mac(s: &str) -> MacAddr {
    let b: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap_or_else(|_| panic!("bad MAC {s}")))
        .collect();
    MacAddr(b.try_into().unwrap_or_else(|_| panic!("bad MAC {s}")))
}

fn to_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Array(a) => Value::List(a.iter().map(to_value).collect()),
        toml::Value::Table(t) => {
            Value::Table(t.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
        other => panic!("unsupported value {other}"),
    }
}

fn str_of<'a>(t: &'a toml::Table, k: &str) -> Option<&'a str> {
    t.get(k).map(|v| {
        v.as_str()
            .unwrap_or_else(|| panic!("{k} must be a string, is {v}"))
    })
}

fn int_of(t: &toml::Table, k: &str) -> Option<i64> {
    t.get(k).map(|v| {
        v.as_integer()
            .unwrap_or_else(|| panic!("{k} must be an integer, is {v}"))
    })
}

fn secs_of(t: &toml::Table, k: &str) -> Option<f64> {
    t.get(k).map(|v| match v {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        other => panic!("{k} must be a number of seconds, is {other}"),
    })
}

fn addrs_of(t: &toml::Table, k: &str) -> Option<Vec<IpAddr>> {
    t.get(k).map(|v| {
        v.as_array()
            .unwrap_or_else(|| panic!("{k} must be an array"))
            .iter()
            .map(|a| {
                let s = a.as_str().expect("an address string");
                let s = s.split('/').next().unwrap();
                s.parse().unwrap_or_else(|_| panic!("bad address {s}"))
            })
            .collect()
    })
}

/// What the simulated executor answers to claims and releases.
#[derive(Default)]
struct Executor {
    claim_fails: Option<String>,
    /// Only the address adds fail (the fast path's map update works).
    vip_adds_fail: Option<String>,
    release_fails: Option<String>,
}

struct Run {
    core: Core,
    specs: Vec<InstanceSpec>,
    ifaces: Vec<IfaceEnv>,
    now: Instant,
    exec: Executor,
    seq: u64,
}

impl Run {
    fn name(&self, i: InstanceId) -> &str {
        &self.spec(i).name
    }

    /// The configuration of an instance (a reload's new or removed ones included).
    fn spec(&self, i: InstanceId) -> &InstanceSpec {
        self.core.spec(i).expect("an instance of the core")
    }

    /// The tracker a step names (`target = "web"`: a check's, interface's, file's or process's
    /// name).
    fn tracker(&self, step: &toml::Table, n: usize) -> Result<TrackerId, String> {
        let name = str_of(step, "target").ok_or(format!("step {n}: no `target`"))?;
        self.core
            .trackers()
            .iter()
            .find(|t| t.target.name() == name)
            .map(|t| t.id)
            .ok_or(format!("step {n}: no tracker {name:?}"))
    }

    fn iface(&self, name: Option<&str>) -> IfaceId {
        match name {
            None => IfaceId(0),
            Some(n) => IfaceId(
                self.ifaces
                    .iter()
                    .position(|f| f.name == n)
                    .unwrap_or_else(|| panic!("no interface {n}")),
            ),
        }
    }

    /// Handles one event at `at` and carries out everything it asks for, appending one line per
    /// command to `out`.
    fn handle(&mut self, ev: Event, at: Instant, out: &mut Vec<String>) {
        self.core.handle(ev, at);
        self.drain(at, out);
    }

    fn drain(&mut self, at: Instant, out: &mut Vec<String>) {
        // Bounded: a core that keeps producing commands is a failure, not a hang.
        for _ in 0..10_000 {
            let Some(c) = self.core.poll_command() else {
                return;
            };
            let line = self.render(&c);
            out.push(format!("@{} {line}", secs(at)));
            match c {
                Command::SendFrame {
                    instance,
                    advert: true,
                    ..
                }
                | Command::SendIp { instance, .. } => {
                    self.core.handle(Event::AdvertSent { instance, at }, at);
                }
                Command::Claim { instance, .. } => {
                    let report = match &self.exec.claim_fails {
                        Some(why) => Report::ClaimFailed(why.clone()),
                        None => Report::Claimed,
                    };
                    self.core.handle(Event::Report { instance, report }, at);
                }
                Command::AddVips { instance } => {
                    let fails = self.exec.claim_fails.as_ref();
                    let report = match fails.or(self.exec.vip_adds_fail.as_ref()) {
                        Some(why) => Report::ClaimFailed(why.clone()),
                        None => Report::Claimed,
                    };
                    self.core.handle(Event::Report { instance, report }, at);
                }
                Command::Release { instance } => {
                    let report = match &self.exec.release_fails {
                        Some(why) => Report::ReleaseFailed(why.clone()),
                        None => Report::Released,
                    };
                    self.core.handle(Event::Report { instance, report }, at);
                }
                Command::AddVip { instance, vip } => {
                    let report = match &self.exec.claim_fails {
                        Some(why) => Report::ClaimFailed(why.clone()),
                        None => Report::VipAdded {
                            vip,
                            was_present: false,
                        },
                    };
                    self.core.handle(Event::Report { instance, report }, at);
                }
                Command::RemoveVip { instance, vip } => {
                    let report = match &self.exec.release_fails {
                        Some(why) => Report::ReleaseFailed(why.clone()),
                        None => Report::VipRemoved {
                            vip,
                            was_present: true,
                        },
                    };
                    self.core.handle(Event::Report { instance, report }, at);
                }
                Command::Notify(Notification::StateChanged(sc)) => {
                    assert_eq!(
                        sc.seq,
                        self.seq + 1,
                        "state change sequence numbers go up by one: {sc:?}"
                    );
                    self.seq = sc.seq;
                }
                Command::Notify(Notification::GroupStateChanged { seq, .. }) => {
                    assert_eq!(
                        seq,
                        self.seq + 1,
                        "group state changes share the sequence numbers: {c:?}"
                    );
                    self.seq = seq;
                }
                Command::SendFrame { .. } | Command::Notify(_) => {}
            }
        }
        panic!("the core produced more than 10000 commands at {}", secs(at));
    }

    /// Fires every timer due up to and including `until`, each at its own time.
    fn run_until(&mut self, until: Instant, out: &mut Vec<String>) {
        for _ in 0..100_000 {
            match self.core.poll_timeout() {
                Some(t) if t <= until => {
                    let t = t.max(self.now);
                    self.now = t;
                    self.handle(Event::Timer, t, out);
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("more than 100000 timers before {}", secs(until));
    }

    fn render(&self, c: &Command) -> String {
        match c {
            Command::SendFrame {
                instance,
                frame,
                advert: true,
            } => {
                let f = AdvertFrame::parse(frame, self.spec(*instance).checksum)
                    .unwrap_or_else(|e| panic!("the core sent an advert that does not parse: {e}"));
                format!("advert {} {}", self.name(*instance), describe(&f.vrrp))
            }
            Command::SendFrame {
                instance, frame, ..
            } => {
                if let Ok(a) = ArpFrame::parse(frame) {
                    format!("garp {} {}", self.name(*instance), a.arp.target_ip)
                } else if let Ok(n) = NdpFrame::parse(frame) {
                    match n.msg {
                        NdpMessage::NeighborAdvert { target, .. } => {
                            format!("na {} {}", self.name(*instance), target)
                        }
                        other => format!("ndp {} {other:?}", self.name(*instance)),
                    }
                } else {
                    panic!("the core sent a frame that is neither an advert, ARP nor NDP")
                }
            }
            Command::SendIp {
                instance,
                dst,
                packet,
            } => {
                // Give the IP packet an Ethernet header to parse it as a frame.
                let mut frame = vec![0u8; 12];
                frame.extend_from_slice(match dst {
                    IpAddr::V4(_) => &[0x08, 0x00],
                    IpAddr::V6(_) => &[0x86, 0xdd],
                });
                frame.extend_from_slice(packet);
                let f = AdvertFrame::parse(&frame, self.spec(*instance).checksum)
                    .unwrap_or_else(|e| panic!("the core sent an advert that does not parse: {e}"));
                format!(
                    "advert {} to {dst} {}",
                    self.name(*instance),
                    describe(&f.vrrp)
                )
            }
            Command::Claim { instance, accept } => {
                format!("claim {} accept={accept}", self.name(*instance))
            }
            Command::AddVips { instance } => format!("add-vips {}", self.name(*instance)),
            Command::Release { instance } => format!("release {}", self.name(*instance)),
            Command::AddVip { instance, vip } => {
                format!("add-vip {} {vip}", self.name(*instance))
            }
            Command::RemoveVip { instance, vip } => {
                format!("remove-vip {} {vip}", self.name(*instance))
            }
            Command::Notify(n) => render_note(n),
        }
    }
}

fn describe(v: &VrrpRepr) -> String {
    let mut s = format!("priority={} interval={}", v.priority, v.max_advert_int);
    if v.version == Version::V2 {
        s.push_str(" v2");
    }
    s
}

/// Notifications, one line each; the state change is the one every scenario checks.
fn render_note(n: &Notification) -> String {
    match n {
        Notification::StateChanged(sc) => {
            let mut s = format!(
                "state {} {} -> {} ({})",
                sc.name,
                state_name(sc.from),
                state_name(sc.to),
                reason_name(sc.reason)
            );
            if let Some((ip, p)) = sc.master {
                s.push_str(&format!(" by {ip} priority {p}"));
            }
            s
        }
        Notification::AdvertDropped {
            iface,
            instance,
            src_ip,
            error,
            count,
            ..
        } => format!(
            "dropped {} from {src_ip}: {} #{count}",
            instance
                .as_ref()
                .map_or(iface.as_str(), |(_, n)| n.as_str()),
            error.name()
        ),
        Notification::AdvertReceived { .. } => "received".into(),
        Notification::AddrListDiffers { name, src, .. } => {
            format!("addr-list-differs {name} from {src}")
        }
        Notification::NewMaster {
            name,
            master,
            priority,
            ..
        } => format!("new-master {name} {master} priority {priority}"),
        Notification::HandoverTakenOver { name, by, .. } => {
            format!("handover-taken-over {name} by {by}")
        }
        Notification::HandoverTimedOut { name, .. } => format!("handover-timed-out {name}"),
        Notification::HandoverClaimFailed { name, .. } => format!("handover-claim-failed {name}"),
        Notification::ClaimFailed { name, retry_in, .. } => {
            format!("claim-failed {name} retry in {}s", retry_in.as_secs_f64())
        }
        Notification::RetryingClaim { name, .. } => format!("retrying-claim {name}"),
        Notification::ReleaseFailed { name, outcome, .. } => {
            format!("release-failed {name} {outcome:?}")
        }
        Notification::VipReadded { name, vip, .. } => format!("vip-readded {name} {vip}"),
        Notification::VipRemoved { name, vip, .. } => format!("vip-removed {name} {vip}"),
        Notification::VipWasPresent { name, vip, .. } => format!("vip-was-present {name} {vip}"),
        Notification::VipWasAbsent { name, vip, .. } => format!("vip-was-absent {name} {vip}"),
        Notification::AdvertBuildFailed { name, .. } => format!("advert-build-failed {name}"),
        Notification::TrackerChanged { target, up, .. } => {
            format!("tracker {target} {}", if *up { "up" } else { "down" })
        }
        Notification::PriorityChanged { name, from, to, .. } => {
            format!("priority {name} {from} -> {to}")
        }
        Notification::GroupStateChanged {
            group, from, to, ..
        } => format!("group {group} {} -> {}", state_name(*from), state_name(*to)),
        Notification::Reloaded {
            added,
            removed,
            changed,
            unchanged,
        } => {
            let l = |v: &[String]| {
                if v.is_empty() {
                    "-".into()
                } else {
                    v.join(",")
                }
            };
            format!(
                "reloaded added={} removed={} changed={} unchanged={}",
                l(added),
                l(removed),
                l(changed),
                l(unchanged)
            )
        }
        Notification::ReloadVip {
            name, vip, added, ..
        } => format!(
            "reload-vip {name} {} {vip}",
            if *added { "added" } else { "removed" }
        ),
    }
}

/// An advert from another router, built from a step's fields.
fn advert(run: &Run, step: &toml::Table, rx_time: Instant) -> (IfaceId, Received) {
    let iface = run.iface(str_of(step, "iface"));
    // The instance of that interface with this VRID (for defaults), if any.
    let vrid = int_of(step, "vrid").map(|v| v as u8);
    let like = run
        .specs
        .iter()
        .find(|s| s.interface == run.ifaces[iface.0].name && vrid.is_none_or(|v| s.vrid == v))
        .unwrap_or(&run.specs[0]);
    let src: IpAddr = str_of(step, "from")
        .expect("an advert needs `from`")
        .parse()
        .expect("`from` is an address");
    let version = match int_of(step, "version") {
        Some(2) => Version::V2,
        Some(3) => Version::V3,
        None => like.version,
        Some(v) => panic!("version {v}"),
    };
    let dst = match str_of(step, "to") {
        Some(d) => d.parse().expect("`to` is an address"),
        None => vrrp_group(Family::of(src)),
    };
    let repr = VrrpRepr {
        version,
        vrid: vrid.unwrap_or(like.vrid),
        priority: int_of(step, "priority").expect("an advert needs `priority`") as u8,
        max_advert_int: int_of(step, "interval")
            .map(|i| i as u16)
            .unwrap_or(like.advert_int_cs),
        auth: match str_of(step, "auth_pass") {
            Some(p) => Auth::simple(p.as_bytes()).expect("auth_pass of at most 8 bytes"),
            None => like.auth,
        },
        addrs: addrs_of(step, "vips").unwrap_or_else(|| like.vips.iter().map(|v| v.addr).collect()),
    };
    let payload = repr
        .to_bytes(&IpPair { src, dst }, ChecksumOpts::default())
        .expect("the scenario's advert encodes");
    let src_mac = str_of(step, "mac").map(mac).unwrap_or(MacAddr([
        0x02,
        0xee,
        0,
        0,
        0,
        match src {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(a) => a.octets()[15],
        },
    ]));
    let rx = Received {
        rx_time,
        src_mac,
        src_ip: src,
        dst_ip: dst,
        hop_limit: int_of(step, "ttl").unwrap_or(255) as u8,
        vlan: None,
        payload,
    };
    (iface, rx)
}

/// Runs one scenario; `Err` explains the first difference.
fn run_scenario(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc: toml::Table = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let print = std::env::var_os("VRRP_CONFORMANCE_PRINT").is_some();
    let tables = |k: &str| -> Vec<toml::Table> {
        doc.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|t| t.as_table().cloned().expect("an array of tables"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ifaces: Vec<IfaceEnv> = tables("iface")
        .iter()
        .map(|t| IfaceEnv {
            name: str_of(t, "name").expect("iface.name").into(),
            mac: mac(str_of(t, "mac").unwrap_or("02:00:00:00:00:01")),
            addrs: addrs_of(t, "addrs").unwrap_or_default(),
        })
        .collect();
    let specs = instances_of(&tables("instance"))?;
    let mut checks = Vec::new();
    for (i, t) in tables("check").iter().enumerate() {
        let mut input = CheckInput::default();
        for (k, v) in t {
            input
                .set(k, to_value(v))
                .map_err(|e| format!("check[{i}].{}: {}", e.key, e.msg))?;
        }
        checks.push(
            input
                .build()
                .map_err(|e| format!("check[{i}].{}: {}", e.key, e.msg))?,
        );
    }
    let mut sync_groups = Vec::new();
    for (i, t) in tables("sync_group").iter().enumerate() {
        let mut input = SyncGroupInput::default();
        for (k, v) in t {
            input
                .set(k, to_value(v))
                .map_err(|e| format!("sync_group[{i}].{}: {}", e.key, e.msg))?;
        }
        sync_groups.push(
            input
                .build()
                .map_err(|e| format!("sync_group[{i}].{}: {}", e.key, e.msg))?,
        );
    }
    check_model(&specs, &checks, &sync_groups)
        .map_err(|(t, i, e)| format!("{}[{i}].{}: {}", t.name(), e.key, e.msg))?;
    let core = Core::with_model(
        Model {
            instances: specs.clone(),
            checks: checks.clone(),
            sync_groups: sync_groups.clone(),
        },
        ifaces.clone(),
    )?;
    let mut run = Run {
        core,
        specs,
        ifaces,
        now: Instant::ZERO,
        exec: Executor::default(),
        seq: 0,
    };
    run.core.set_log_adverts(false);
    // In print mode every step runs and prints; the first difference is still returned.
    let mut first_err: Option<String> = None;
    for (n, step) in tables("step").iter().enumerate() {
        let at = instant(secs_of(step, "at").ok_or(format!("step {n}: no `at`"))?);
        if at < run.now {
            return Err(format!(
                "step {n}: at {} is before {}",
                secs(at),
                secs(run.now)
            ));
        }
        let event = str_of(step, "event").ok_or(format!("step {n}: no `event`"))?;
        let stalled = step
            .get("stalled")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let mut out = Vec::new();
        // The executor's clock runs to the step: every timer due fires at its time, unless the
        // executor was stalled (it did not run between the previous step and this one).
        if !stalled {
            run.run_until(at, &mut out);
        }
        run.now = at;
        match event {
            "wait" => {}
            "startup" => run.handle(Event::Startup, at, &mut out),
            "startup_listening" => {
                let since = secs_of(step, "since")
                    .map(instant)
                    .ok_or(format!("step {n}: startup_listening needs since"))?;
                run.handle(Event::StartupListening { since }, at, &mut out);
                // `heard`: the adverts the edge heard while loading, handed in right after
                // (each table as an `advert` step's keys, `rx_at` required).
                for h in step
                    .get("heard")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                {
                    let h = h.as_table().ok_or(format!("step {n}: heard = [{{...}}]"))?;
                    let rx_at = secs_of(h, "rx_at")
                        .map(instant)
                        .ok_or(format!("step {n}: a heard advert needs rx_at"))?;
                    let (iface, rx) = advert(&run, h, rx_at);
                    run.handle(Event::Advert { iface, rx }, at, &mut out);
                }
            }
            "resume" => {
                // `instance` = the name of the instance the previous run left Master.
                let name =
                    str_of(step, "instance").ok_or(format!("step {n}: resume needs instance"))?;
                let i = run
                    .specs
                    .iter()
                    .position(|s| s.name == name)
                    .ok_or(format!("step {n}: no instance {name}"))?;
                run.handle(
                    Event::Resume {
                        instance: InstanceId(i),
                    },
                    at,
                    &mut out,
                )
            }
            "shutdown" => run.handle(Event::Shutdown, at, &mut out),
            "end_handovers" => run.handle(Event::EndHandovers, at, &mut out),
            "reload" => {
                // The new instances inline; the checks and sync groups stay.
                let new: Vec<toml::Table> = step
                    .get("instances")
                    .and_then(|v| v.as_array())
                    .ok_or(format!("step {n}: reload needs instances = [{{...}}, ...]"))?
                    .iter()
                    .map(|t| t.as_table().cloned().expect("inline tables"))
                    .collect();
                let new = instances_of(&new).map_err(|e| format!("step {n}: {e}"))?;
                let model = Model {
                    instances: new,
                    checks: checks.clone(),
                    sync_groups: sync_groups.clone(),
                };
                match run.core.reload(model, run.ifaces.clone(), at) {
                    Ok(_) => run.drain(at, &mut out),
                    Err(e) => out.push(format!("@{} reload-refused {e}", secs(at))),
                }
            }
            "advert" => {
                // Received at `rx_at` (default: `at`), handled at `at`.
                let rx_at = secs_of(step, "rx_at").map(instant).unwrap_or(at);
                let (iface, rx) = advert(&run, step, rx_at);
                run.handle(Event::Advert { iface, rx }, at, &mut out);
            }
            "link" => {
                let iface = run.iface(str_of(step, "iface"));
                let up = step
                    .get("up")
                    .and_then(|v| v.as_bool())
                    .ok_or(format!("step {n}: link needs up = true|false"))?;
                run.handle(Event::Link { iface, up }, at, &mut out);
            }
            "address" => {
                let iface = run.iface(str_of(step, "iface"));
                let addr = str_of(step, "addr")
                    .and_then(|a| a.parse().ok())
                    .ok_or(format!("step {n}: address needs addr"))?;
                let present = step
                    .get("present")
                    .and_then(|v| v.as_bool())
                    .ok_or(format!("step {n}: address needs present = true|false"))?;
                run.handle(
                    Event::AddressChanged {
                        iface,
                        addr,
                        present,
                    },
                    at,
                    &mut out,
                );
            }
            "claims_fail" => {
                run.exec.claim_fails = Some(str_of(step, "why").unwrap_or("EPERM").into())
            }
            "claims_work" => run.exec.claim_fails = None,
            "vip_adds_fail" => {
                run.exec.vip_adds_fail = Some(str_of(step, "why").unwrap_or("EPERM").into())
            }
            "vip_adds_work" => run.exec.vip_adds_fail = None,
            "releases_fail" => {
                run.exec.release_fails = Some(str_of(step, "why").unwrap_or("EPERM").into())
            }
            "releases_work" => run.exec.release_fails = None,
            "check" | "tracker" | "tracker_value" => {
                let tracker = run.tracker(step, n)?;
                let flag = |k: &str| {
                    step.get(k)
                        .and_then(|v| v.as_bool())
                        .ok_or(format!("step {n}: {event} needs {k} = true|false"))
                };
                let ev = match event {
                    "check" => Event::CheckResult {
                        tracker,
                        ok: flag("ok")?,
                    },
                    "tracker" => Event::TrackerState {
                        tracker,
                        up: flag("up")?,
                    },
                    _ => Event::TrackerValue {
                        tracker,
                        value: int_of(step, "value")
                            .ok_or(format!("step {n}: tracker_value needs value = N"))?,
                    },
                };
                run.handle(ev, at, &mut out);
            }
            other => return Err(format!("step {n}: unknown event {other:?}")),
        }
        // A stalled executor that wakes up also runs what fell due meanwhile, after the event
        // (it drained the ring buffer first).
        if stalled {
            run.run_until(at, &mut out);
        }
        let expect: Vec<String> = step
            .get("expect")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|l| l.as_str().expect("expect lines are strings").to_string())
                    .collect()
            })
            .unwrap_or_default();
        // Notifications other than state changes are checked only where a scenario asks.
        let notes = step
            .get("notes")
            .and_then(|v| v.as_bool())
            .unwrap_or(doc.get("notes").and_then(|v| v.as_bool()).unwrap_or(false));
        let got: Vec<String> = out
            .into_iter()
            .filter(|l| notes || !is_other_note(l))
            .collect();
        if print {
            eprintln!("{}: step {n} ({event} at {}):", path.display(), secs(at));
            for l in &got {
                eprintln!("  {l:?},");
            }
        }
        let mut err = None;
        if got != expect {
            err = Some(format!(
                "step {n} ({event} at {}):\n  expected:\n{}\n  got:\n{}",
                secs(at),
                lines(&expect),
                lines(&got)
            ));
        }
        if err.is_none() {
            err = check_after(&run, step, n).err();
        }
        if let Some(e) = err {
            if !print {
                return Err(e);
            }
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Instances from `[[instance]]` tables (or a reload step's inline tables).
fn instances_of(tables: &[toml::Table]) -> Result<Vec<InstanceSpec>, String> {
    let mut specs = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let mut input = InstanceInput::default();
        for (k, v) in t {
            input
                .set(k, to_value(v))
                .map_err(|e| format!("instance[{i}].{}: {}", e.key, e.msg))?;
        }
        specs.push(
            input
                .build(None)
                .map_err(|e| format!("instance[{i}].{}: {}", e.key, e.msg))?,
        );
    }
    cross_check(&specs).map_err(|(i, e)| format!("instance[{i}].{}: {}", e.key, e.msg))?;
    Ok(specs)
}

/// A rendered line of a notification other than a state change.
fn is_other_note(line: &str) -> bool {
    let what = line.split_whitespace().nth(1).unwrap_or("");
    !matches!(
        what,
        "advert"
            | "garp"
            | "na"
            | "ndp"
            | "claim"
            | "add-vips"
            | "release"
            | "add-vip"
            | "remove-vip"
            | "state"
            | "priority"
            | "group"
            | "reload-refused"
            | "tracker"
    )
}

fn lines(v: &[String]) -> String {
    if v.is_empty() {
        return "    (nothing)".into();
    }
    v.iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The optional checks after a step: `timeout` (when the core next wants the clock, or "none")
/// and `states` (a table instance name → state, from [`Core::snapshot`]).
fn check_after(run: &Run, step: &toml::Table, n: usize) -> Result<(), String> {
    if let Some(t) = step.get("timeout") {
        let want = match t {
            toml::Value::String(s) if s == "none" => None,
            toml::Value::Integer(i) => Some(instant(*i as f64)),
            toml::Value::Float(f) => Some(instant(*f)),
            other => return Err(format!("step {n}: timeout = {other}?")),
        };
        let got = run.core.poll_timeout();
        if got != want {
            return Err(format!(
                "step {n}: next timeout {:?}, expected {:?}",
                got.map(secs),
                want.map(secs)
            ));
        }
    }
    if let Some(states) = step.get("states").and_then(|v| v.as_table()) {
        let snap = run.core.snapshot();
        let mut got = BTreeMap::new();
        for i in &snap.instances {
            got.insert(i.name.clone(), state_name(i.state).to_string());
        }
        for (name, want) in states {
            let want = want.as_str().unwrap_or_default();
            match got.get(name) {
                Some(s) if s == want => {}
                other => {
                    return Err(format!(
                        "step {n}: instance {name} is {other:?} in the snapshot, expected {want}"
                    ))
                }
            }
        }
    }
    if let Some(prios) = step.get("priorities").and_then(|v| v.as_table()) {
        let snap = run.core.snapshot();
        for (name, want) in prios {
            let got = snap
                .instances
                .iter()
                .find(|i| &i.name == name)
                .map(|i| i64::from(i.effective_priority));
            if got != want.as_integer() {
                return Err(format!(
                    "step {n}: instance {name} has effective priority {got:?}, expected {want}"
                ));
            }
        }
    }
    if let Some(groups) = step.get("groups").and_then(|v| v.as_table()) {
        let snap = run.core.snapshot();
        for (name, want) in groups {
            let got = snap
                .groups
                .iter()
                .find(|g| &g.name == name)
                .map(|g| state_name(g.state));
            if got != want.as_str() {
                return Err(format!(
                    "step {n}: sync group {name} is {got:?}, expected {want}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn conformance_scenarios() {
    let filter = std::env::var("VRRP_CONFORMANCE").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/conformance exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| {
            filter
                .as_deref()
                .is_none_or(|f| p.file_name().unwrap().to_string_lossy().contains(f))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in {}", dir().display());
    let mut failed = Vec::new();
    for f in &files {
        if let Err(e) = run_scenario(f) {
            failed.push(format!("{}: {e}", f.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} scenarios failed:\n\n{}",
        failed.len(),
        files.len(),
        failed.join("\n\n")
    );
    eprintln!("{} conformance scenarios passed", files.len());
}

/// The runner itself must be able to fail: a scenario whose expectation is wrong is reported.
#[test]
fn a_wrong_expectation_fails() {
    let tmp = std::env::temp_dir().join(format!("vrrp-conformance-{}.toml", std::process::id()));
    std::fs::write(
        &tmp,
        r#"
[[iface]]
name = "eth0"
addrs = ["192.0.2.2"]
[[instance]]
interface = "eth0"
vrid = 1
vips = ["192.0.2.100/24"]
[[step]]
at = 0
event = "startup"
expect = ["@0 state vrid1 INIT -> MASTER (startup)"]
"#,
    )
    .unwrap();
    let r = run_scenario(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let e = r.expect_err("a wrong expectation must fail");
    assert!(e.contains("INIT -> BACKUP"), "{e}");
}
