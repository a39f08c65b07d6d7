//! Step 5 of a request (README, "How a request goes through"): Glance v2 answers -> the documented
//! Alliance form (the field table, the image, plain messages, and the
//! status tables' mechanism).

pub mod fields;
pub mod image;
pub mod json;
pub mod message;
pub mod status;

pub use image::{V2Image, image_response, read_image_page};
pub use json::{Text, json_text};
