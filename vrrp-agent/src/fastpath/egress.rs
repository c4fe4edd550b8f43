//! The TC egress classifier ([`super::EGRESS_PROGRAM`]): attached as a netlink `bpf` filter on
//! the `clsact` qdisc, which outlives the agent (the fail-safe), taking over a filter a dead
//! agent left; where that is impossible, as a TCX link that dies with the agent.

use anyhow::{anyhow, bail, Context as _, Result};
use aya::programs::{
    tc::{self, NlOptions, SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions},
    LinkOrder, SchedClassifier, TcAttachType,
};

use super::{egress_program, ifindex, FastPath, EGRESS_PROGRAM};
use crate::rtnl::{self, BpfFilter, TC_PARENT_EGRESS};

/// How the egress classifier is attached (see [`crate::fastpath`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressMode {
    /// A netlink `bpf` filter on the `clsact` qdisc: outlives the agent (the fail-safe).
    Netlink,
    /// A TCX bpf_link, detached when the agent's fd closes: the fallback where `clsact` is
    /// missing.
    Tcx,
}

/// Where the egress classifier is attached.
#[derive(Debug)]
pub(super) struct EgressAttachment {
    iface: String,
    ifindex: u32,
    link: EgressLink,
}

#[derive(Debug)]
pub(super) enum EgressLink {
    Tcx(SchedClassifierLinkId),
    /// Our filter, as the kernel listed it.
    Filter(BpfFilter),
}

impl EgressAttachment {
    fn mode(&self) -> EgressMode {
        match self.link {
            EgressLink::Tcx(_) => EgressMode::Tcx,
            EgressLink::Filter(_) => EgressMode::Netlink,
        }
    }
}

impl FastPath {
    /// Attaches the egress classifier to `iface` as a netlink filter on `clsact` (it outlives
    /// the agent), taking over a filter a dead agent left; where that is impossible, as a TCX
    /// link, and [`FastPath::failsafe_gap`] says why. Replaces an earlier attachment of this
    /// `FastPath`.
    pub fn attach_egress(&mut self, iface: &str) -> Result<EgressMode> {
        self.detach_egress()?;
        let ifindex = ifindex(iface)?;
        let (link, gap) = attach_any(egress_program(&mut self.ebpf)?, iface, ifindex)?;
        Ok(self.egress_attached(iface, ifindex, link, gap))
    }

    /// Records an attachment made by [`attach_any`].
    pub(super) fn egress_attached(
        &mut self,
        iface: &str,
        ifindex: u32,
        link: EgressLink,
        gap: Option<String>,
    ) -> EgressMode {
        self.failsafe_gap = gap;
        let e = EgressAttachment {
            iface: iface.to_owned(),
            ifindex,
            link,
        };
        let mode = e.mode();
        self.egress = Some(e);
        mode
    }

    /// Attaches the egress classifier to `iface` in `mode` (tests use it to exercise each
    /// path). Replaces an earlier attachment of this `FastPath`.
    pub fn attach_egress_with(&mut self, iface: &str, mode: EgressMode) -> Result<EgressMode> {
        self.detach_egress()?;
        let ifindex = ifindex(iface)?;
        let link = attach_in(egress_program(&mut self.ebpf)?, iface, ifindex, mode)?;
        Ok(self.egress_attached(iface, ifindex, link, None))
    }
}

/// Attaches the (loaded) egress classifier `prog` to `iface` as a netlink filter, else as a TCX
/// link; with the TCX link, why the fail-safe does not hold. (A free function: the start-up
/// attaches it on a second thread while the kernel verifies XDP.)
pub(super) fn attach_any(
    prog: &mut SchedClassifier,
    iface: &str,
    ifindex: u32,
) -> Result<(EgressLink, Option<String>)> {
    match attach_in(prog, iface, ifindex, EgressMode::Netlink) {
        Ok(link) => Ok((link, None)),
        Err(netlink_err) => {
            let link = attach_in(prog, iface, ifindex, EgressMode::Tcx).map_err(|e| {
                anyhow!(
                    "attaching the egress classifier to {iface}: as a netlink filter: \
                     {netlink_err:#}; as a TCX link: {e:#}"
                )
            })?;
            Ok((
                link,
                Some(format!(
                    "the egress classifier could not be attached as a netlink filter on clsact \
                     ({netlink_err:#}), so it is a TCX link that dies with the agent: a killed \
                     agent's kernel may announce its VIPs from the real MAC"
                )),
            ))
        }
    }
}

fn attach_in(
    prog: &mut SchedClassifier,
    iface: &str,
    ifindex: u32,
    mode: EgressMode,
) -> Result<EgressLink> {
    Ok(match mode {
        EgressMode::Tcx => {
            let id = prog
                .attach_with_options(
                    iface,
                    TcAttachType::Egress,
                    TcAttachOptions::TcxOrder(LinkOrder::default()),
                )
                .with_context(|| format!("attaching a TCX egress link to {iface}"))?;
            EgressLink::Tcx(id)
        }
        EgressMode::Netlink => EgressLink::Filter(attach_filter(prog, iface, ifindex)?),
    })
}

/// The netlink path: `clsact` (added if missing), then our filter in place of one a dead
/// agent left (make-before-break: the kernel swaps the program at the same priority and
/// handle), or a new one; then any further leftovers of ours are removed.
fn attach_filter(prog: &mut SchedClassifier, iface: &str, ifindex: u32) -> Result<BpfFilter> {
    match tc::qdisc_add_clsact(iface) {
        Ok(()) => log::debug!("{iface}: added a clsact qdisc"),
        Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(anyhow!(e).context("adding a clsact qdisc")),
    }
    // EEXIST also comes from an `ingress` qdisc in clsact's place, and a filter for the
    // egress parent would then land on its ingress block.
    match rtnl::ingress_qdisc_kind(ifindex) {
        Ok(Some(k)) if k == "clsact" => {}
        Ok(Some(k)) => bail!(
            "{iface} has an '{k}' qdisc where clsact goes (`tc qdisc del dev {iface} {k}` \
             removes it)"
        ),
        Ok(None) => bail!("{iface} has no clsact qdisc after adding one"),
        Err(e) => bail!("listing the qdiscs of {iface}: {e}"),
    }
    let ours = prog.info()?.id();
    let is_vrrp = |f: &BpfFilter| f.name.as_deref() == Some(EGRESS_PROGRAM);
    let before: Vec<BpfFilter> = rtnl::bpf_filters(ifindex, TC_PARENT_EGRESS)
        .map_err(|e| anyhow!("listing the egress filters of {iface}: {e}"))?
        .into_iter()
        .filter(|f| is_vrrp(f) && f.prog_id != Some(ours))
        .collect();
    let mut replaced = None;
    if let Some(old) = before.first() {
        let link = SchedClassifierLink::attached(
            iface,
            TcAttachType::Egress,
            old.prio,
            tc::TcHandle::from(old.handle),
            None,
        )?;
        match prog.attach_to_link(link) {
            Ok(id) => {
                replaced = Some(old.clone());
                // We manage the filter's life ourselves (detach checks it is still ours).
                std::mem::forget(prog.take_link(id)?);
            }
            Err(e) => log::debug!(
                "{iface}: could not replace the egress filter left by an earlier agent in \
                 place ({e}); adding ours first"
            ),
        }
    }
    if replaced.is_none() {
        let id = prog
            .attach_with_options(
                iface,
                TcAttachType::Egress,
                TcAttachOptions::Netlink(NlOptions::default()),
            )
            .context("adding the egress filter")?;
        std::mem::forget(prog.take_link(id)?);
    }
    let after = rtnl::bpf_filters(ifindex, TC_PARENT_EGRESS)
        .map_err(|e| anyhow!("listing the egress filters of {iface}: {e}"))?;
    let mine = after
        .iter()
        .find(|f| f.prog_id == Some(ours))
        .cloned()
        .ok_or_else(|| anyhow!("{iface}: our egress filter is not listed after attaching"))?;
    let mut removed = 0;
    for f in after
        .iter()
        .filter(|f| is_vrrp(f) && f.prog_id != Some(ours))
    {
        match rtnl::del_filter(ifindex, TC_PARENT_EGRESS, f) {
            Ok(()) => removed += 1,
            Err(e) => log::warn!(
                "{iface}: could not remove the egress filter an earlier agent left (pref {} \
                 handle {:#x}): {e}",
                f.prio,
                f.handle
            ),
        }
    }
    if replaced.is_some() || removed > 0 {
        log::info!(
            "{iface}: took over the egress filter an earlier vrrp-agent left ({})",
            match (replaced.is_some(), removed) {
                (true, 0) => "replaced in place".to_owned(),
                (true, n) => format!("replaced in place, {n} more removed"),
                (false, n) => format!("ours added first, then {n} removed"),
            }
        );
    }
    Ok(mine)
}

impl FastPath {
    /// How the egress classifier is attached, if it is.
    pub fn egress_mode(&self) -> Option<EgressMode> {
        self.egress.as_ref().map(EgressAttachment::mode)
    }

    /// Detaches the egress classifier (synchronously), if it is still ours. No error if it was
    /// not attached.
    pub fn detach_egress(&mut self) -> Result<()> {
        let Some(e) = self.egress.take() else {
            return Ok(());
        };
        match e.link {
            EgressLink::Tcx(id) => egress_program(&mut self.ebpf)?
                .detach(id)
                .with_context(|| format!("{}: detaching the egress classifier", e.iface)),
            EgressLink::Filter(f) => {
                let ours = egress_program(&mut self.ebpf)?.info()?.id();
                let still = match rtnl::bpf_filters(e.ifindex, TC_PARENT_EGRESS) {
                    Ok(now) => now
                        .into_iter()
                        .find(|n| n.prio == f.prio && n.handle == f.handle),
                    Err(err) if err.errno == libc::ENODEV => return Ok(()),
                    Err(err) => bail!("{}: listing the egress filters: {err}", e.iface),
                };
                match still {
                    Some(n) if n.prog_id == Some(ours) => {
                        match rtnl::del_filter(e.ifindex, TC_PARENT_EGRESS, &n) {
                            Ok(()) => Ok(()),
                            Err(err) if matches!(err.errno, libc::ENOENT | libc::ENODEV) => Ok(()),
                            Err(err) => {
                                bail!("{}: removing the egress filter: {err}", e.iface)
                            }
                        }
                    }
                    Some(_) => {
                        log::info!(
                            "{}: the egress filter was taken over by another agent; leaving it",
                            e.iface
                        );
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
        }
    }
}
