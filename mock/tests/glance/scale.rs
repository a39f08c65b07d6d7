//! Many images and many clients: paging through 100,000 images quickly, deep
//! pages in other orders, concurrent creates.

use super::*;

/// Deep pages answer within this time (debug build, loaded machine).
const PAGE_TIME: Duration = Duration::from_millis(900);

/// A mock with 100,000 images of A, and their ids in creation order.
async fn seeded() -> (Mock, Vec<String>) {
    let mock = Mock::start().await;
    let started = Instant::now();
    let ids = mock.handle.seed_images(A, 100_000, "img-");
    let seeding = started.elapsed();
    assert_eq!(ids.len(), 100_000);
    assert!(seeding < Duration::from_secs(10), "seeding took {seeding:?}");
    (mock, ids)
}

#[tokio::test]
async fn every_page_of_100_000_images() {
    // The default order (newest first), following `next`.
    let (mock, ids) = seeded().await;
    let mut link = "/v2/images?limit=1000".to_owned();
    let (mut count, mut slowest) = (0, Duration::ZERO);
    let paging = Instant::now();
    loop {
        let started = Instant::now();
        let answer = mock.get(Who::A, &link).await;
        slowest = slowest.max(started.elapsed());
        // Parsing 600 kB of JSON per page in a debug build would dominate the test.
        let text = answer.text();
        let page: Vec<&str> = text
            .split(r#""id": ""#)
            .skip(1)
            .filter_map(|rest| rest.get(..36))
            .collect();
        let next = text
            .split(r#""next": ""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned);
        let expected: Vec<&str> = ids.iter().rev().skip(count).take(1000).map(String::as_str).collect();
        assert_eq!(page, expected, "page after {count} images");
        count += page.len();
        match next {
            Some(next) if !page.is_empty() => link = next,
            _ => break,
        }
    }
    eprintln!("100 pages {:?}, slowest page {slowest:?}", paging.elapsed());
    assert_eq!(count, 100_000);
    assert!(slowest < PAGE_TIME, "slowest page took {slowest:?}");
}

/// A deep page, quickly: the first id `who` gets for `path`, where
/// `{marker}` stands for `ids[marker]`; `first` is an index of the ids too.
async fn deep_page(who: Who, path: &str, marker: usize, first: Option<usize>) {
    let (mock, ids) = seeded().await;
    let path = path.replace("{marker}", &ids[marker]);
    let started = Instant::now();
    let answer = mock.get(who, &path).await;
    let elapsed = started.elapsed();
    assert_eq!(page_of(&answer).0.first(), first.map(|i| &ids[i]), "{path}");
    assert!(elapsed < PAGE_TIME, "{path} took {elapsed:?}");
}

cases!(deep_page {
    newest_first => (Who::A, "/v2/images?marker={marker}", 50_000, Some(49_999)),
    by_name => (Who::A, "/v2/images?sort=name:asc&marker={marker}", 70_000, Some(70_001)),
    by_update_time => (
        Who::A,
        "/v2/images?sort_key=updated_at&sort_dir=asc&limit=5&marker={marker}",
        10,
        Some(11),
    ),
    of_another_project => (Who::B, "/v2/images", 0, None),
});

#[tokio::test]
async fn concurrent_clients() {
    let mock = Mock::start().await;
    let creations = (0..40).map(|i| mock.create_id(Who::A, json!({"name": format!("c-{i}")})));
    let ids = futures_util::future::join_all(creations).await;
    let listed = mock.get(Who::A, "/v2/images?limit=100").await;
    let mut seen = page_of(&listed).0;
    seen.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(seen, expected);
}
