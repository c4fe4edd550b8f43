//! RFC 9568 state machine (see issue 3). Placeholder until the state machine lands.
