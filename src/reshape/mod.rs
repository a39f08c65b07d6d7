//! Step 4 of a request: Glance v2 answers -> the documented Alliance form.

pub mod image;
pub mod message;

pub use image::{AllianceImage, V2Image, V2ImagePage};
