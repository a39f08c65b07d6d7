//! `copy_from`: Glance v1's "fetch this URL into the image", done with Glance
//! v2. The SSRF guard vets every URL before any upstream call; the cloud's
//! import methods decide between web-download import and, where enabled, the
//! facade's own download-and-upload fallback.

pub mod fallback;
pub mod guard;
pub mod methods;
pub mod ranges;
