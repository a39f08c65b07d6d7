//! Mock Glance v2 (to be written).
