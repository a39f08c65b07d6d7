//! Image data: upload (`PUT /file`), staging (`PUT /stage`), download (`GET /file`)
//! and the checks Glance runs on the bytes (transcripts 104-127, 161-162).

use super::auth::{Rule, enforce_on_image};
use super::call::{Call, no_image, visible};
use super::errors::ApiError;
use super::model::{Image, Status, now};
use super::reply::Reply;
use bytes::Bytes;
use md5::{Digest, Md5};
use sha2::Sha512;

const OCTET_STREAM: &str = "application/octet-stream";
/// The only store of the mock, as in the recorded multi-store setup.
pub(crate) const STORE_ID: &str = "fs1";
/// Formats the format inspector recognises; other disk formats accept any bytes.
const INSPECTABLE_FORMATS: [&str; 9] = ["raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi", "iso", "gpt", "luks"];
const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";
/// Bytes of a qcow2 header up to and including the virtual size field.
const QCOW2_HEADER_LEN: usize = 32;

/// What Glance records about stored bytes.
pub(crate) struct Digests {
    pub checksum: String,
    pub os_hash_value: String,
}

pub(crate) fn digests(data: &[u8]) -> Digests {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Digests {
        checksum: hex(&Md5::digest(data)),
        os_hash_value: hex(&Sha512::digest(data)),
    }
}

/// Records stored bytes on the image (location, checksum and multihash).
pub(crate) fn record_location(image: &mut Image, data: &[u8]) {
    let Digests {
        checksum,
        os_hash_value,
    } = digests(data);
    image.checksum = Some(checksum);
    image.os_hash_algo = Some("sha512".to_owned());
    image.os_hash_value = Some(os_hash_value);
    image.stores = Some(STORE_ID.to_owned());
}

/// The in-flight format inspection of `ImageProxy.set_data`: the virtual size to
/// record, or the message of the `ImageFormatError` it raises.
pub(crate) fn inspect(image: &Image, data: &[u8]) -> Result<Option<u64>, String> {
    if image.container_format.as_deref() != Some("bare") {
        return Ok(None);
    }
    let disk_format = image.disk_format.as_deref().unwrap_or_default();
    let qcow2_size = (data.len() >= QCOW2_HEADER_LEN && data.starts_with(QCOW2_MAGIC))
        .then(|| data[24..32].try_into().ok().map(u64::from_be_bytes))
        .flatten();
    let (detected, virtual_size) = match qcow2_size {
        Some(size) => ("qcow2", size),
        None => ("raw", data.len() as u64),
    };
    if detected == disk_format {
        Ok(Some(virtual_size))
    } else if detected == "raw" && !INSPECTABLE_FORMATS.contains(&disk_format) {
        Ok(None)
    } else if disk_format == "raw" {
        Ok(Some(data.len() as u64))
    } else {
        Err(format!(
            "Image disk_format {disk_format} does not match stream data {detected}"
        ))
    }
}

/// `ValueError` of the domain model when data arrives before the formats are set.
pub(crate) fn require_formats(image: &Image) -> Result<(), ApiError> {
    let missing: Vec<&str> = [
        ("disk_format", &image.disk_format),
        ("container_format", &image.container_format),
    ]
    .iter()
    .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
    .map(|(name, _)| *name)
    .collect();
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(ApiError::bad_request(format!(
            "Property {one} must be set prior to saving data."
        ))),
        many => Err(ApiError::bad_request(format!(
            "Properties {} must be set prior to saving data.",
            many.join(", ")
        ))),
    }
}

fn transition_error(from: Status, to: Status) -> ApiError {
    ApiError::conflict(format!(
        "Image status transition from {} to {} is not allowed",
        from.as_str(),
        to.as_str()
    ))
}

/// The deserializer checks shared by upload and stage.
fn check_octet_stream(call: &Call) -> Result<(), ApiError> {
    let content_type = match call.header("content-type") {
        None => "None",
        Some(_) => call.media_type(),
    };
    if content_type != OCTET_STREAM {
        return Err(ApiError::unsupported_media_type(
            call.content_type_header(),
            format!("Invalid content type {content_type}"),
        ));
    }
    if call
        .header("x-openstack-image-size")
        .is_some_and(|size| size.trim().parse::<u64>().is_err())
    {
        return Err(ApiError::bad_request(
            "Invalid or missing image size in request headers.",
        ));
    }
    Ok(())
}

/// `PUT /v2/images/{id}/file`.
pub(crate) fn upload(call: &Call, id: &str) -> Result<Reply, ApiError> {
    check_octet_stream(call)?;
    let mut store = call.store();
    let image = visible(&store, &call.who, id, no_image(id))?;
    enforce_on_image(&call.who, Rule::UploadImage, image)?;
    if !image.status.can_become(Status::Saving) {
        return Err(transition_error(image.status, Status::Saving));
    }
    require_formats(image)?;
    let mut image = image.clone();
    let data = call.body.clone();
    // The bytes reach the store before the format check; Glance keeps the location
    // and hashes of refused data (transcript 124).
    record_location(&mut image, &data);
    store.data_written = true;
    image.updated_at = now();
    match inspect(&image, &data) {
        Ok(virtual_size) => {
            image.size = Some(data.len() as u64);
            image.virtual_size = virtual_size;
            image.status = Status::Active;
            image.data = Some(data);
            store.put(image);
            Ok(Reply::empty_html(204))
        }
        Err(message) => {
            image.requeue();
            store.put(image);
            Err(ApiError::unsupported_media_type(call.content_type_header(), message))
        }
    }
}

/// `PUT /v2/images/{id}/stage`: data for a later `glance-direct` import.
pub(crate) fn stage(call: &Call, id: &str) -> Result<Reply, ApiError> {
    if !call.shared.options.import_methods.iter().any(|m| m == "glance-direct") {
        return Err(ApiError::not_found(
            "'glance-direct' method is not available at this site.",
        ));
    }
    check_octet_stream(call)?;
    let mut store = call.store();
    let image = visible(&store, &call.who, id, no_image(id))?;
    enforce_on_image(&call.who, Rule::ModifyImage, image)?;
    if !image.status.can_become(Status::Uploading) {
        return Err(transition_error(image.status, Status::Uploading));
    }
    let mut image = image.clone();
    image.status = Status::Uploading;
    image.size = Some(call.body.len() as u64);
    image.staged = Some(call.body.clone());
    image.updated_at = now();
    store.data_written = true;
    store.put(image);
    Ok(Reply::empty_html(204))
}

/// A byte range to send: `[start, end)` plus the range to announce.
struct Slice {
    start: usize,
    end: usize,
    /// `Content-Range` value when the answer is partial.
    content_range: Option<String>,
}

/// `GET /v2/images/{id}/file`.
pub(crate) fn download(call: &Call, id: &str) -> Result<Reply, ApiError> {
    let store = call.store();
    let image = visible(&store, &call.who, id, no_image(id))?;
    if image.status == Status::Deactivated && !call.who.is_admin() {
        return Err(ApiError::forbidden(
            "The requested image has been deactivated. Image data download is forbidden.",
        ));
    }
    enforce_on_image(&call.who, Rule::DownloadImage, image)?;
    let Some(data) = image.data.clone() else {
        return Ok(Reply::new(204));
    };
    let checksum = image.checksum.clone();
    drop(store);
    let slice = requested_slice(call, data.len())?;
    let body: Bytes = data.slice(slice.start.min(data.len())..slice.end.min(data.len()));
    let status = if slice.content_range.is_some() { 206 } else { 200 };
    let mut reply = Reply::new(status).header("content-type", OCTET_STREAM);
    if let Some(range) = slice.content_range {
        reply = reply.header("content-range", range);
    }
    if let Some(checksum) = checksum {
        reply = reply.header("content-md5", checksum);
    }
    Ok(reply.header("content-length", body.len().to_string()).with_body(body))
}

fn range_not_satisfiable(detail: String) -> ApiError {
    ApiError::with_detail(416, detail)
}

/// Glance's `get_range_from_request` and the offsets its serializer derives.
fn requested_slice(call: &Call, size: usize) -> Result<Slice, ApiError> {
    let last = size as i128 - 1;
    if let Some(range) = call.header("range") {
        if range.contains(',') {
            return Err(ApiError::bad_request(
                "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.",
            ));
        }
        let (start, end) =
            parse_range(range)?.ok_or_else(|| range_not_satisfiable("Invalid Range header.".to_owned()))?;
        if start >= size as i128 {
            return Err(range_not_satisfiable(format!(
                "Invalid start position in Range header. Start position MUST be in the inclusive range [0, {last}]."
            )));
        }
        let offset = if start >= 0 {
            start
        } else if start.abs() < size as i128 {
            size as i128 + start
        } else {
            0
        };
        let (stop, announced_end) = match end {
            Some(end) if end < size as i128 => (end, end - 1),
            _ => (size as i128, last),
        };
        return Ok(Slice {
            start: offset as usize,
            end: stop as usize,
            content_range: Some(format!("bytes {offset}-{announced_end}/{size}")),
        });
    }
    if let Some(content_range) = call.header("content-range") {
        let (start, stop, length) = parse_content_range(content_range)
            .ok_or_else(|| range_not_satisfiable("Invalid Content-Range header.".to_owned()))?;
        if length.is_none() && stop > size as i128 {
            return Err(range_not_satisfiable(format!(
                "Invalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, {last}]."
            )));
        }
        if start >= size as i128 {
            return Err(range_not_satisfiable(format!(
                "Invalid start position in Content-Range header. Start position MUST be in the inclusive range [0, {last}]."
            )));
        }
        return Ok(Slice {
            start: start as usize,
            end: stop as usize,
            content_range: Some(format!("bytes {start}-{}/{size}", stop - 1)),
        });
    }
    Ok(Slice {
        start: 0,
        end: size,
        content_range: None,
    })
}

/// webob's `Range.parse`: `(start, exclusive end)`, a negative start for suffixes.
fn parse_range(header: &str) -> Result<Option<(i128, Option<i128>)>, ApiError> {
    let lower = header.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("bytes") else {
        return Ok(None);
    };
    let Some(rest) = rest.trim_start_matches(' ').strip_prefix('=') else {
        return Ok(None);
    };
    let rest = rest.trim_start_matches(' ');
    let start_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (start, rest) = rest.split_at(start_len);
    let Some(rest) = rest.trim_start_matches(' ').strip_prefix('-') else {
        return Ok(None);
    };
    let rest = rest.trim_start_matches(' ');
    let end: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let number = |digits: &str| digits.parse::<i128>().ok();
    match (start.is_empty(), end.is_empty()) {
        // `bytes=-` makes webob call int('') and fail.
        (true, true) => Err(ApiError::internal()),
        (true, false) => Ok(number(&end).map(|e| (-e, None))),
        (false, true) => Ok(number(start).map(|s| (s, None))),
        (false, false) => Ok(match (number(start), number(&end)) {
            (Some(s), Some(e)) => e.checked_add(1).filter(|end| s < *end).map(|end| (s, Some(end))),
            _ => None,
        }),
    }
}

/// webob's `ContentRange.parse` (request variant): `(start, stop, length)`.
fn parse_content_range(header: &str) -> Option<(i128, i128, Option<i128>)> {
    let (units, range) = header.trim().split_once(char::is_whitespace)?;
    if !units.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, length) = range.trim().split_once('/')?;
    let length = if length == "*" {
        None
    } else {
        Some(length.trim().parse::<i128>().ok()?)
    };
    let (start, end) = range.split_once('-')?;
    let start = start.trim().parse::<i128>().ok()?;
    let stop = end.trim().parse::<i128>().ok()?.checked_add(1)?;
    let valid = match length {
        None => 0 <= start && start < stop,
        Some(length) => start < stop && 0 <= start && start < length,
    };
    valid.then_some((start, stop, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(disk_format: &str) -> Image {
        let mut image = Image::new("i".to_owned(), None, now());
        image.disk_format = Some(disk_format.to_owned());
        image.container_format = Some("bare".to_owned());
        image
    }

    #[test]
    fn format_inspection() {
        let mut qcow2 = vec![0u8; 512];
        qcow2[..4].copy_from_slice(QCOW2_MAGIC);
        qcow2[24..32].copy_from_slice(&4_194_304u64.to_be_bytes());
        assert_eq!(inspect(&image("qcow2"), &qcow2), Ok(Some(4_194_304)));
        assert_eq!(inspect(&image("raw"), &qcow2), Ok(Some(512)));
        assert_eq!(inspect(&image("raw"), b"garbage"), Ok(Some(7)));
        assert_eq!(inspect(&image("ami"), b"garbage"), Ok(None));
        assert_eq!(
            inspect(&image("qcow2"), b"garbage"),
            Err("Image disk_format qcow2 does not match stream data raw".to_owned())
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99").ok().flatten(), Some((0, Some(100))));
        assert_eq!(parse_range("bytes=-100").ok().flatten(), Some((-100, None)));
        assert_eq!(parse_range("bytes=5-").ok().flatten(), Some((5, None)));
        assert_eq!(parse_range("bytes=9-3").ok().flatten(), None);
        assert_eq!(parse_content_range("bytes 0-99/*"), Some((0, 100, None)));
    }
}
