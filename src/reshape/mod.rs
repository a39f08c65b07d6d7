//! Step 4 of a request: Glance v2 answers -> the documented Alliance form.

pub mod image;
pub mod message;
pub mod status;

pub use image::{AllianceImage, Text, V2Image, image_response, json_text, read_image_page};
