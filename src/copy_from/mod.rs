//! `copy_from` URLs: the SSRF guard that vets them before any upstream call.

pub mod guard;
pub mod ranges;
