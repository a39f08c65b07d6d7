//! Step 4 of a request: Glance v2 answers -> the documented Alliance form.

pub mod image;
pub mod message;

pub use image::{AllianceImage, Text, V2Image, json_text, read_image_page};
