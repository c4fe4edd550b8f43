//! What the fast path reports: the advert ring buffer (`EVENTS`) and the per-CPU counters
//! (`COUNTERS`).

use anyhow::{anyhow, Context as _, Result};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use vrrp_common::{AdvertEvent, Counter};

use super::FastPath;

/// Counter totals summed over all CPUs, in [`Counter::ALL`] order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub Vec<u64>);

impl Counters {
    pub fn get(&self, c: Counter) -> u64 {
        self.0.get(c as usize).copied().unwrap_or(0)
    }

    /// Sum of the outcome counters; equals `Frames` when the program is consistent.
    pub fn outcomes(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.is_outcome())
            .map(|c| self.get(*c))
            .sum()
    }

    /// Sum of the egress outcome counters; equals `EgressFrames` when the classifier is
    /// consistent.
    pub fn egress_outcomes(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.is_egress_outcome())
            .map(|c| self.get(*c))
            .sum()
    }

    /// `name=value` pairs of the non-zero counters (all of them if every one is zero).
    pub fn summary(&self) -> String {
        let nz: Vec<String> = Counter::ALL
            .iter()
            .filter(|c| self.get(**c) != 0)
            .map(|c| format!("{}={}", c.name(), self.get(*c)))
            .collect();
        if nz.is_empty() {
            "frames=0".into()
        } else {
            nz.join(" ")
        }
    }
}

impl FastPath {
    /// Reads the per-CPU counters and sums them.
    pub fn counters(&self) -> Result<Counters> {
        let map = self.counters_map()?;
        let mut out = Vec::with_capacity(Counter::ALL.len());
        for c in Counter::ALL {
            out.push(read_counter(&map, c)?);
        }
        Ok(Counters(out))
    }

    /// Reads one per-CPU counter and sums it (one map lookup: cheap enough for a periodic
    /// check).
    pub fn counter(&self, c: Counter) -> Result<u64> {
        read_counter(&self.counters_map()?, c)
    }

    fn counters_map(&self) -> Result<PerCpuArray<&MapData, u64>> {
        Ok(PerCpuArray::try_from(
            self.ebpf
                .map("COUNTERS")
                .ok_or_else(|| anyhow!("the XDP object has no COUNTERS map"))?,
        )?)
    }

    /// Takes the advert ring buffer (once).
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or_else(|| anyhow!("the EVENTS ring buffer was already taken"))?;
        Ok(RingBuf::try_from(map)?)
    }
}

/// Counter `c` summed over all CPUs.
fn read_counter(map: &PerCpuArray<&MapData, u64>, c: Counter) -> Result<u64> {
    let v = map
        .get(&(c as u32), 0)
        .with_context(|| format!("reading counter {}", c.name()))?;
    Ok(v.iter().sum())
}

/// Reads one [`AdvertEvent`] out of a ring-buffer record.
pub fn parse_event(bytes: &[u8]) -> Option<AdvertEvent> {
    bytemuck::try_pod_read_unaligned(bytes.get(..std::mem::size_of::<AdvertEvent>())?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_summary_and_outcomes() {
        let mut c = Counters(vec![0; Counter::ALL.len()]);
        assert_eq!(c.summary(), "frames=0");
        c.0[Counter::Frames as usize] = 3;
        c.0[Counter::VrrpToUser as usize] = 2;
        c.0[Counter::ArpSeen as usize] = 1;
        c.0[Counter::VlanTagged as usize] = 1;
        assert_eq!(c.outcomes(), 3);
        assert_eq!(
            c.summary(),
            "frames=3 arp_seen=1 vrrp_to_user=2 vlan_tagged=1"
        );
    }
}
