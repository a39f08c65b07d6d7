//! `GET /images` -> `GET /v2/images?...&limit=N`, following Glance's `next`
//! links to the end, answered as `[{"images": [ {...}, ... ]}]`.
//!
//! The answer is streamed: the status is decided by the first page, then
//! each page is written as it arrives while the next one is already being
//! fetched, so memory holds at most two pages whatever the image count. A
//! page that fails after the first aborts the response (a truncated body),
//! never a partial list dressed as complete. Images the environment could
//! not list in Glance itself are dropped (see [`super::isolation`]).

use std::collections::HashSet;

use bytes::Bytes;
use http::{StatusCode, header};

use super::{import_status, isolation};

use crate::body::{APPLICATION_JSON, ChannelBody, ResponseBody};
use crate::error::AllianceError;
use crate::inbound::{ListQuery, list_query};
use crate::refusal::Refusal;
use crate::reshape::message::for_log;
use crate::reshape::{V2Image, read_image_page};
use crate::route::Cloud;
use crate::upstream::{Call, Reply, Session, glance};

/// Smaller pages are parsed on the event loop (a thread hand-off would
/// cost more than the parse).
const INLINE_PARSE_BYTES: usize = 64 * 1024;

const OPEN: &[u8] = b"[{\"images\":[";
const CLOSE: &[u8] = b"]}]";

pub async fn apply(
    session: Session,
    cloud: &Cloud,
    query: ListQuery,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    let mut pager = Pager::for_cloud(&query, &session, cloud).await?;
    let call = pager
        .take_call()?
        .ok_or_else(|| AllianceError::bad_gateway("no page to fetch"))?;
    let reply = glance::list_page(&session, &call).await?;
    // Dropped (its request aborted) if the first page fails.
    let prefetch = Prefetch::start(&session, &pager, &reply);
    // The status is decided by the first page.
    let page = WrittenPage::after(ListWriter::default(), reply.body.len());
    let (first, next) = read_page(&session, reply, pager.community_requested, page).await?;
    pager.follow(next.as_deref())?;
    let (sender, body) = ChannelBody::new(2);
    tokio::spawn(async move {
        if let Err(error) = stream_pages(&session, pager, first, prefetch, &sender).await {
            tracing::warn!(
                request_id = %session.request_id,
                error = %for_log(&error.message),
                "list aborted after the first page"
            );
            session.metrics.list_aborted();
            // The client may be gone already; nothing more to do then.
            let _ = sender.send(Err(std::io::Error::other(error))).await;
        }
    });
    let mut response = http::Response::new(http_body_util::BodyExt::boxed(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, APPLICATION_JSON);
    Ok(response)
}

/// Sends `page` and every page after it. Each page's request goes out as
/// soon as its link is known - usually before the page that names it is
/// parsed (see [`Prefetch`]) - so Glance works on the next page while the
/// facade parses, filters and writes the current one.
async fn stream_pages(
    session: &Session,
    mut pager: Pager,
    mut page: WrittenPage,
    mut prefetch: Prefetch,
    sender: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), AllianceError> {
    loop {
        if sender.send(Ok(Bytes::from(page.chunk))).await.is_err() {
            // The client left (the prefetch goes with `prefetch`).
            return Ok(());
        }
        session.metrics.list_images(page.images);
        let Some(call) = pager.take_call()? else {
            break;
        };
        let reply = prefetch.take(session, &call).await?;
        prefetch = Prefetch::start(session, &pager, &reply);
        let next;
        let sink = WrittenPage::after(page.writer, reply.body.len());
        (page, next) = read_page(session, reply, pager.community_requested, sink).await?;
        pager.follow(next.as_deref())?;
    }
    drop(prefetch);
    // A closed channel only means the client left.
    let _ = sender.send(Ok(page.writer.finish())).await;
    Ok(())
}

/// The next page's request, sent on a guess before the current page is
/// parsed: the `next` link read straight from the end of the body, where
/// Glance writes it. The guess is checked against the parsed page; a wrong
/// one is dropped and the right page fetched (a wasted `GET`, never a wrong
/// answer).
struct Prefetch {
    guess: Option<(String, tokio::task::JoinHandle<Result<Reply, AllianceError>>)>,
}

impl Prefetch {
    fn start(session: &Session, pager: &Pager, reply: &Reply) -> Self {
        // `reply` passed the status table: it is a page.
        let guess = guess_next_link(&reply.body)
            .and_then(|link| pager.peek_path(&link))
            .map(|path| {
                let session = session.clone();
                let call = Call::get(path.clone());
                (
                    path,
                    tokio::spawn(async move { glance::list_page(&session, &call).await }),
                )
            });
        Prefetch { guess }
    }

    /// The reply for `call`: the guessed request's if it was this one.
    async fn take(&mut self, session: &Session, call: &Call) -> Result<Reply, AllianceError> {
        match self.guess.take() {
            Some((path, task)) if path == call.path_and_query => task
                .await
                .map_err(|_| AllianceError::bad_gateway("page fetch task failed"))?,
            other => {
                if let Some((_, task)) = other {
                    task.abort();
                }
                glance::list_page(session, call).await
            }
        }
    }
}

impl Drop for Prefetch {
    /// A list that ends early (client gone, a failed page) drops the request
    /// sent on a guess.
    fn drop(&mut self) {
        if let Some((_, task)) = self.guess.take() {
            task.abort();
        }
    }
}

/// Glance ends a page with `"next": "<link>"`; `None` unless the body ends
/// that way (the parsed page has the last word either way).
fn guess_next_link(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"next\"";
    let tail = &body[body.len().saturating_sub(4096)..];
    let at = tail.windows(KEY.len()).rposition(|window| window == KEY)?;
    let rest = std::str::from_utf8(&tail[at + KEY.len()..]).ok()?;
    let value = rest.trim_start().strip_prefix(':')?.trim_start();
    let value = value.trim_end().strip_suffix('}')?.trim_end();
    serde_json::from_str::<String>(value).ok()
}

/// Where a page's listable images go, in Glance's order: written into the
/// answer ([`WrittenPage`]), or collected ([`Vec`], for name look-ups).
trait PageSink: Send + 'static {
    fn image(&mut self, image: V2Image<'_>);
}

/// A page as the client gets it: its listable images, written.
struct WrittenPage {
    chunk: Vec<u8>,
    /// How many images the chunk holds.
    images: u64,
    /// The document's state after this page.
    writer: ListWriter,
}

impl WrittenPage {
    /// The next page of the document `writer` has written so far.
    fn after(mut writer: ListWriter, capacity: usize) -> Self {
        WrittenPage {
            chunk: writer.chunk(capacity),
            images: 0,
            writer,
        }
    }
}

impl PageSink for WrittenPage {
    fn image(&mut self, image: V2Image<'_>) {
        self.writer.image(&mut self.chunk, image);
        self.images += 1;
    }
}

impl PageSink for Vec<V2Image<'static>> {
    fn image(&mut self, image: V2Image<'_>) {
        self.push(image.into_owned());
    }
}

/// The one page pipeline: parses a page, drops what the environment may
/// not list and hands the rest to `sink` as it is parsed - off the event
/// loop for a large page (1,000 images are about a megabyte of JSON) - so
/// images borrow from the answer. From the first image that needs a look-up
/// on (another project's shared image: membership; an import outcome
/// unknown: tasks), images are kept instead: the look-ups are made first,
/// then the images go to `sink`, in order. Returns the sink and the page's
/// `next` link.
async fn read_page<S: PageSink>(
    session: &Session,
    reply: Reply,
    community_requested: bool,
    sink: S,
) -> Result<(S, Option<String>), AllianceError> {
    let environment = session.environment.clone();
    let inline = reply.body.len() < INLINE_PARSE_BYTES;
    let work = move || {
        let mut sink = sink;
        let mut pending = Vec::new();
        let next = read_image_page(&reply.body, |image| {
            let listing = isolation::listing(&image, &environment, community_requested);
            if listing == isolation::Listing::Hidden {
                return;
            }
            if pending.is_empty() && listing == isolation::Listing::Listed && !image.import_outcome_unknown() {
                sink.image(image);
            } else {
                pending.push(image.into_owned());
            }
        })
        .map_err(|error| glance::unusable_answer(glance::LIST_IMAGES.call, &error))?;
        Ok::<_, AllianceError>((sink, pending, next.map(|link| link.to_string())))
    };
    let (mut sink, mut pending, next) = if inline {
        work()?
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| AllianceError::bad_gateway("page parse task failed"))??
    };
    if !pending.is_empty() {
        isolation::retain_members(session, &mut pending).await?;
        import_status::report_failed_imports(session, &mut pending).await;
        for image in pending {
            sink.image(image);
        }
    }
    Ok((sink, next))
}

/// Every image matching `query`, collected in memory (for name lookups,
/// where matches are few).
pub async fn collect(
    session: &Session,
    cloud: &Cloud,
    query: &ListQuery,
) -> Result<Vec<V2Image<'static>>, AllianceError> {
    let mut pager = Pager::for_cloud(query, session, cloud).await?;
    let mut images = Vec::new();
    while let Some(call) = pager.take_call()? {
        let reply = glance::list_page(session, &call).await?;
        let next;
        (images, next) = read_page(session, reply, pager.community_requested, images).await?;
        pager.follow(next.as_deref())?;
    }
    Ok(images)
}

/// Walks Glance's pagination: the first page from the filters, then each
/// `next` link, resolved against the configured endpoint. Fails on a
/// repeated marker (a looping upstream) and refuses to go past `max_pages`.
pub struct Pager {
    /// The client asked for community images (Glance lists them only then).
    pub community_requested: bool,
    pending: Option<String>,
    seen_markers: HashSet<String>,
    pages: u32,
    max_pages: u32,
    endpoint_path: String,
}

impl Pager {
    /// The pages of `query` at the namespace's page size and page limit.
    async fn for_cloud(query: &ListQuery, session: &Session, cloud: &Cloud) -> Result<Self, AllianceError> {
        let endpoint = session.endpoint().await?;
        Ok(Pager::new(query, cloud.page_size, cloud.max_pages, endpoint.path()))
    }

    pub fn new(query: &ListQuery, page_size: u32, max_pages: u32, endpoint_path: &str) -> Self {
        Pager {
            community_requested: query
                .filters
                .iter()
                .any(|(name, value)| name == "visibility" && matches!(value.as_str(), "community" | "all")),
            pending: Some(first_page_path(query, page_size)),
            seen_markers: HashSet::new(),
            pages: 0,
            max_pages,
            endpoint_path: endpoint_path.to_owned(),
        }
    }

    /// The call for the next page, or `None` when the list is complete.
    pub fn take_call(&mut self) -> Result<Option<Call>, AllianceError> {
        let Some(path) = self.pending.take() else {
            return Ok(None);
        };
        self.pages += 1;
        if self.pages > self.max_pages {
            tracing::warn!(
                reason = "upstream_list_too_long",
                max_pages = self.max_pages,
                "image list has more pages than allowed"
            );
            return Err(AllianceError::refused(Refusal::TooManyListPages {
                max_pages: self.max_pages,
            }));
        }
        Ok(Some(Call::get(path)))
    }

    /// The path a `next` link would be followed to, without recording it
    /// (for a request sent on a guess).
    pub fn peek_path(&self, link: &str) -> Option<String> {
        let (path_and_query, marker) = resolve_next_link_quietly(link, &self.endpoint_path)?;
        (!self.seen_markers.contains(&marker)).then_some(path_and_query)
    }

    /// Records the `next` link of the page just fetched. A marker already
    /// followed means the upstream is looping (a repeated page, or a cycle
    /// of any length): the list fails like any other upstream failure
    /// rather than end as a success with images twice.
    pub fn follow(&mut self, next: Option<&str>) -> Result<(), AllianceError> {
        self.pending = match next {
            None => None,
            Some(link) => {
                let (path_and_query, marker) = resolve_next_link(link, &self.endpoint_path)?;
                if !self.seen_markers.insert(marker) {
                    tracing::warn!(
                        reason = "upstream_list_loop",
                        pages = self.pages,
                        "image service repeated a page marker; list aborted"
                    );
                    return Err(AllianceError::bad_gateway("the image service sent the same page twice"));
                }
                Some(path_and_query)
            }
        };
        Ok(())
    }
}

/// `/v2/images?<filters>&limit=N`.
pub fn first_page_path(query: &ListQuery, page_size: u32) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in &query.filters {
        // A value with a colon in a filter Glance reads operators in goes as
        // `eq:value`, so that a name such as `a:b` is found.
        if value.contains(':') && list_query::named(name).is_some_and(|filter| filter.operators) {
            serializer.append_pair(name, &format!("eq:{value}"));
        } else {
            serializer.append_pair(name, value);
        }
    }
    serializer.append_pair("limit", &page_size.to_string());
    format!("/v2/images?{}", serializer.finish())
}

/// Glance's `next` is relative, e.g. `/v2/images?limit=1000&marker=ID`; it
/// may or may not repeat the endpoint's path prefix. Only a link back to the
/// image list with a marker is followed: the facade never goes where an
/// upstream answer points it.
pub fn resolve_next_link(link: &str, endpoint_path: &str) -> Result<(String, String), AllianceError> {
    resolve_next_link_quietly(link, endpoint_path).ok_or_else(|| {
        tracing::warn!(
            reason = "upstream_next_link_unusable",
            link = %for_log(link),
            "unusable next link from the image service"
        );
        AllianceError::bad_gateway("the image service sent an unusable next link")
    })
}

fn resolve_next_link_quietly(link: &str, endpoint_path: &str) -> Option<(String, String)> {
    let (path, query) = link.split_once('?')?;
    let prefix = endpoint_path.trim_end_matches('/');
    let prefixed = path.strip_prefix(prefix).filter(|_| !prefix.is_empty());
    if path != "/v2/images" && prefixed != Some("/v2/images") {
        return None;
    }
    let marker = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "marker")
        .map(|(_, value)| value.into_owned())
        .filter(|marker| !marker.is_empty())?;
    Some((format!("/v2/images?{query}"), marker))
}

/// Serializes pages into one JSON document, chunk by chunk. `Copy`: the
/// state travels with a page to wherever it is written.
#[derive(Default, Clone, Copy)]
pub struct ListWriter {
    started: bool,
    wrote_image: bool,
}

impl ListWriter {
    /// A buffer for the next chunk; the first chunk opens the document.
    pub fn chunk(&mut self, capacity: usize) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(capacity + OPEN.len());
        if !self.started {
            buffer.extend_from_slice(OPEN);
            self.started = true;
        }
        buffer
    }

    /// Appends `image` to a chunk from [`ListWriter::chunk`].
    pub fn image(&mut self, chunk: &mut Vec<u8>, image: V2Image<'_>) {
        if self.wrote_image {
            chunk.push(b',');
        }
        self.wrote_image = true;
        image.write_alliance_json(chunk);
    }

    pub fn finish(self) -> Bytes {
        let mut buffer = Vec::new();
        if !self.started {
            buffer.extend_from_slice(OPEN);
        }
        buffer.extend_from_slice(CLOSE);
        Bytes::from(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_page_carries_the_filters_then_the_limit() {
        let query = ListQuery::parse(Some("name=a%20b&tag=x&tag=y")).unwrap();
        assert_eq!(
            first_page_path(&query, 1000),
            "/v2/images?name=a+b&tag=x&tag=y&limit=1000"
        );
        assert_eq!(first_page_path(&ListQuery::default(), 5), "/v2/images?limit=5");
    }

    #[test]
    fn values_with_a_colon_are_taken_literally() {
        let query = ListQuery::parse(Some("name=in:a,b&status=x:y&owner=o:p&tag=t:u")).unwrap();
        assert_eq!(
            first_page_path(&query, 10),
            "/v2/images?name=eq%3Ain%3Aa%2Cb&status=eq%3Ax%3Ay&owner=o%3Ap&tag=t%3Au&limit=10"
        );
    }

    #[test]
    fn next_links_resolve_under_the_endpoint() {
        let (path, marker) = resolve_next_link("/v2/images?limit=2&marker=abc", "/image").unwrap();
        assert_eq!(
            (path.as_str(), marker.as_str()),
            ("/v2/images?limit=2&marker=abc", "abc")
        );
        let (path, _) = resolve_next_link("/image/v2/images?marker=abc", "/image/").unwrap();
        assert_eq!(path, "/v2/images?marker=abc");
        for bad in [
            "http://evil/v2/images?marker=a",
            "//evil/v2/images?marker=a",
            "/v2/other?marker=a",
            "/v2/images",
            "/v2/images?limit=2",
            "/v2/images?marker=",
            "/imagex/v2/images?marker=a",
        ] {
            assert_eq!(resolve_next_link(bad, "/image").unwrap_err().status, 502, "{bad}");
        }
        assert!(resolve_next_link("/x/v2/images?marker=a", "").is_err());
    }

    #[test]
    fn the_next_link_is_guessed_from_the_end_of_the_body() {
        let page = br#"{"images": [{"id": "a", "next": "/v2/images?marker=wrong"}], "first": "/v2/images?limit=1", "schema": "/v2/schemas/images", "next": "/v2/images?limit=1&marker=a"}"#;
        assert_eq!(guess_next_link(page).as_deref(), Some("/v2/images?limit=1&marker=a"));
        // No top-level next (the last page): no guess, even with an image's
        // own "next" property at the end.
        let last = br#"{"images": [{"id": "a", "next": "/v2/images?marker=x"}]}"#;
        assert_eq!(guess_next_link(last), None);
        assert_eq!(guess_next_link(br#"{"images": [], "first": "/v2/images"}"#), None);
        assert_eq!(guess_next_link(b""), None);
        let escaped = br#"{"images": [], "next": "/v2/images?marker=a\u0026b"}"#;
        assert_eq!(guess_next_link(escaped).as_deref(), Some("/v2/images?marker=a&b"));
    }

    #[test]
    fn pager_fails_on_repeated_markers_and_bounds_pages() {
        let mut pager = Pager::new(&ListQuery::default(), 2, 5, "");
        assert_eq!(pager.take_call().unwrap().unwrap().path_and_query, "/v2/images?limit=2");
        pager.follow(Some("/v2/images?limit=2&marker=a")).unwrap();
        assert_eq!(
            pager.take_call().unwrap().unwrap().path_and_query,
            "/v2/images?limit=2&marker=a"
        );
        // The same page again: a loop, never the end of the list.
        assert_eq!(
            pager.follow(Some("/v2/images?limit=2&marker=a")).unwrap_err().status,
            502
        );
        // A longer cycle (a -> b -> a), however the link is spelled.
        let mut cycling = Pager::new(&ListQuery::default(), 2, 5, "/image");
        for link in ["/v2/images?marker=a", "/image/v2/images?limit=2&marker=b"] {
            cycling.take_call().unwrap().unwrap();
            cycling.follow(Some(link)).unwrap();
        }
        cycling.take_call().unwrap().unwrap();
        assert_eq!(
            cycling.follow(Some("/v2/images?limit=9&marker=a")).unwrap_err().status,
            502
        );

        let mut bounded = Pager::new(&ListQuery::default(), 2, 2, "");
        for marker in ["a", "b"] {
            bounded.take_call().unwrap().unwrap();
            bounded.follow(Some(&format!("/v2/images?marker={marker}"))).unwrap();
        }
        assert_eq!(bounded.take_call().unwrap_err().status, 502);
    }

    #[test]
    fn writer_produces_one_document() {
        let image = |id: &'static str| V2Image {
            id: id.into(),
            ..V2Image::default()
        };
        let mut writer = ListWriter::default();
        let mut page = |images: Vec<V2Image>| {
            let mut chunk = writer.chunk(0);
            for image in images {
                writer.image(&mut chunk, image);
            }
            chunk
        };
        let mut out = page(vec![image("a")]);
        out.extend(page(vec![]));
        out.extend(page(vec![image("b")]));
        out.extend_from_slice(&writer.finish());
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let ids: Vec<_> = parsed[0]["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(ListWriter::default().finish().as_ref(), b"[{\"images\":[]}]");
    }
}
