//! One sans-IO core for every interface and virtual router.
mod event;

pub use event::{
    Command, Event, IfaceId, InstanceId, Notification, PreviousMaster, Received, ReleaseOutcome,
    Report, StateChange,
};
