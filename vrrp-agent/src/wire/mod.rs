//! Packet codecs (see issue 3). Placeholder until the codecs land.
