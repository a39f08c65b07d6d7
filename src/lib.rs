//! alliance-glance: the Alliance Glance API v1 served over OpenStack Glance v2.

pub mod mock;
