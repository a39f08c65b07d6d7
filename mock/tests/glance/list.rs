//! Listing: pages and `next` links (under a URL prefix, with small limits),
//! limits, markers and sorting.

use super::*;

/// A mock under `/image` with pages of 4 (at most 6).
async fn paged_mock() -> Mock {
    Mock::start_with(Options {
        prefix: "/image".to_owned(),
        limit_default: 4,
        limit_max: 6,
        ..Options::default()
    })
    .await
}

/// A paged mock with `bulk-01` ... `bulk-10` of A (ids newest first) and one
/// image of B.
async fn bulk() -> (Mock, Vec<String>, String) {
    let mock = paged_mock().await;
    let mut ids = Vec::new();
    for i in 1..=10 {
        ids.push(
            mock.create_id(
                Who::A,
                json!({"name": format!("bulk-{i:02}"), "disk_format": "raw", "container_format": "bare"}),
            )
            .await,
        );
    }
    ids.reverse();
    let b_image = mock.create_id(Who::B, json!({"name": "B1-private"})).await;
    (mock, ids, b_image)
}

#[tokio::test]
async fn default_page() {
    // transcript 045: links without the prefix.
    let (mock, ids, _) = bulk().await;
    let first = mock.get(Who::A, "/v2/images").await;
    let body = first.json();
    assert_eq!(body["first"], "/v2/images");
    assert_eq!(body["schema"], "/v2/schemas/images");
    assert_eq!(
        page_of(&first),
        (ids[..4].to_vec(), Some(format!("/v2/images?marker={}", ids[3])))
    );
    assert_eq!(keys(&body), ["images", "first", "schema", "next"]);
}

#[tokio::test]
async fn following_next_visits_every_image() {
    // transcripts 046-048: `next` is relative to the endpoint, i.e. after the prefix.
    let (mock, ids, _) = bulk().await;
    let mut seen = Vec::new();
    let mut link = "/v2/images?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let answer = mock.get(Who::A, &link).await;
        assert_eq!(answer.json()["first"], "/v2/images?limit=3");
        let (page, next) = page_of(&answer);
        seen.extend(page);
        pages += 1;
        match next {
            Some(next) => link = next,
            None => break,
        }
    }
    assert_eq!((seen, pages), (ids.clone(), 4));
}

/// The page of `limit=2` after `ids[marker]`: `ids[page]` and a `next` after `ids[next]`.
async fn page_after(marker: usize, page: std::ops::Range<usize>, next: Option<usize>) {
    let (mock, ids, _) = bulk().await;
    let answer = mock
        .get(Who::A, &format!("/v2/images?limit=2&marker={}", ids[marker]))
        .await;
    let next = next.map(|n| format!("/v2/images?limit=2&marker={}", ids[n]));
    assert_eq!(page_of(&answer), (ids[page].to_vec(), next));
}

cases!(page_after {
    // transcript 050
    last_full_page => (7, 8..10, Some(9)),
    after_the_last_image => (9, 10..10, None),
});

#[tokio::test]
async fn limit_above_the_maximum_is_clamped() {
    // transcripts 049 and limits-api_limit_max-3/002: the link keeps the asked limit.
    let (mock, ids, _) = bulk().await;
    let clamped = mock.get(Who::A, "/v2/images?limit=5000").await;
    assert_eq!(
        page_of(&clamped),
        (
            ids[..6].to_vec(),
            Some(format!("/v2/images?limit=5000&marker={}", ids[5]))
        )
    );
}

#[tokio::test]
async fn limit_zero_is_an_empty_page() {
    // transcript 051
    let (mock, _, _) = bulk().await;
    assert_eq!(
        mock.get(Who::A, "/v2/images?limit=0").await.text(),
        recorded("051").body
    );
}

/// A list query refused with the recorded status, length and message.
async fn refused(path: &str, status: u16, length: usize, message: &str) {
    let mock = paged_mock().await;
    expect_error(&mock.get(Who::A, path).await, status, length, message);
}

cases!(refused {
    // transcript 052
    negative_limit => ("/v2/images?limit=-1", 400, 154, "limit param must be positive"),
    // transcript 053
    limit_not_a_number => ("/v2/images?limit=abc", 400, 156, "limit param must be an integer"),
    // transcript 054
    unknown_marker => (
        "/v2/images?marker=99999999-9999-4999-8999-999999999999",
        400,
        185,
        "No image found with ID 99999999-9999-4999-8999-999999999999",
    ),
    // transcript 055
    garbage_marker => ("/v2/images?marker=zzz", 400, 152, "No image found with ID zzz"),
    // transcript 060
    unknown_sort_key => (
        "/v2/images?sort_key=bogus",
        400,
        262,
        "Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
    ),
    old_and_new_sort_syntax => (
        "/v2/images?sort=name&sort_key=id",
        400,
        171,
        "Old and new sorting syntax cannot be combined",
    ),
});

#[tokio::test]
async fn marker_the_caller_cannot_see() {
    let (mock, _, b_image) = bulk().await;
    let hidden = mock.get(Who::A, &format!("/v2/images?marker={b_image}")).await;
    assert_eq!(hidden.status, 403);
    assert!(
        hidden
            .text()
            .contains(&format!("Forbidding request, image {b_image} not visible"))
    );
}

/// The names on a sorted page (after `ids[marker]` if given).
async fn sorted(query: &str, marker: Option<usize>, expected: &[&str]) {
    let (mock, ids, _) = bulk().await;
    let path = match marker {
        Some(marker) => format!("/v2/images?{query}&marker={}", ids[marker]),
        None => format!("/v2/images?{query}"),
    };
    assert_eq!(names_of(&mock.get(Who::A, &path).await), expected);
}

cases!(sorted {
    // transcript 058
    by_name => ("sort=name:asc&limit=2", None, &["bulk-01", "bulk-02"]),
    by_name_next_page => ("sort=name%3Aasc&limit=2", Some(8), &["bulk-03", "bulk-04"]),
    // transcript 059
    by_name_descending_old_syntax => ("sort_key=name&sort_dir=desc&limit=2", None, &["bulk-10", "bulk-09"]),
    by_status_then_name_descending => ("sort=status:asc,name:desc&limit=2", None, &["bulk-10", "bulk-09"]),
    by_status_then_name_descending_next_page => (
        "sort=status:asc,name:desc&limit=2",
        Some(1),
        &["bulk-08", "bulk-07"],
    ),
});

#[tokio::test]
async fn sort_links_are_encoded() {
    // transcript 058
    let (mock, ids, _) = bulk().await;
    let by_name = mock.get(Who::A, "/v2/images?sort=name:asc&limit=2").await;
    assert_eq!(by_name.json()["first"], "/v2/images?sort=name%3Aasc&limit=2");
    assert_eq!(
        by_name.json()["next"],
        format!("/v2/images?sort=name%3Aasc&limit=2&marker={}", ids[8])
    );
}

#[tokio::test]
async fn old_sort_syntax_link() {
    // transcript 059
    let (mock, _, _) = bulk().await;
    let desc = mock.get(Who::A, "/v2/images?sort_key=name&sort_dir=desc&limit=2").await;
    assert_eq!(desc.json()["first"], "/v2/images?sort_key=name&sort_dir=desc&limit=2");
}

#[tokio::test]
async fn sort_dir_alone_reverses_the_default_order() {
    let (mock, ids, _) = bulk().await;
    let asc = mock.get(Who::A, "/v2/images?sort_dir=asc&limit=3").await;
    assert_eq!(page_of(&asc).0, ids.iter().rev().take(3).cloned().collect::<Vec<_>>());
}

#[tokio::test]
async fn pages_sorted_by_id() {
    let (mock, ids, _) = bulk().await;
    let mut by_id = ids.clone();
    by_id.sort();
    let first_by_id = mock.get(Who::A, "/v2/images?sort_key=id&sort_dir=asc&limit=3").await;
    assert_eq!(page_of(&first_by_id).0, by_id[..3]);
    let next_by_id = mock
        .get(
            Who::A,
            &format!("/v2/images?sort_key=id&sort_dir=asc&limit=3&marker={}", by_id[2]),
        )
        .await;
    assert_eq!(page_of(&next_by_id).0, by_id[3..6]);
}
