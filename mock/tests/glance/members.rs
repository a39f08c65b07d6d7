//! Image members: sharing a shared image with another project, the member's
//! answer, and what the member may then see and do.

use super::*;

/// A's shared image S1 (transcript 182) with B added as member (transcript 183).
async fn shared_with_b(mock: &Mock) -> (String, Value) {
    let s1 = mock
        .create_id(Who::A, json!({"name": "S1-shared", "visibility": "shared"}))
        .await;
    let added = mock
        .post_json(Who::A, &format!("/v2/images/{s1}/members"), &json!({"member": B}))
        .await;
    assert_eq!(added.status, 200);
    (s1, added.json())
}

/// B answers for itself on `image`.
async fn answer_as_b(mock: &Mock, who: Who, image: &str, body: &'static str) -> Answer {
    mock.send(
        mock.request(who, Method::PUT, &format!("/v2/images/{image}/members/{B}"))
            .body(body),
    )
    .await
}

#[tokio::test]
async fn adding_a_member() {
    // transcript 183
    let mock = Mock::start().await;
    let (_, member) = shared_with_b(&mock).await;
    assert_eq!(
        keys(&member),
        ["member_id", "image_id", "status", "created_at", "updated_at", "schema"]
    );
    assert_eq!(
        (member["member_id"].clone(), member["status"].clone()),
        (json!(B), json!("pending"))
    );
    assert_eq!(member["schema"], "/v2/schemas/member");
}

#[tokio::test]
async fn listing_members() {
    // transcript 184
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    let listed = mock.get(Who::A, &format!("/v2/images/{s1}/members")).await.json();
    assert_eq!(keys(&listed), ["members", "schema"]);
    assert_eq!(listed["members"][0]["member_id"], B);
}

#[tokio::test]
async fn adding_a_member_twice_conflicts() {
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    assert_eq!(
        mock.post_json(Who::A, &format!("/v2/images/{s1}/members"), &json!({"member": B}))
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn a_pending_member_sees_the_image() {
    // transcript 185
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    assert_eq!(mock.show(Who::B, &s1).await["name"], "S1-shared");
}

/// What B lists while the share is pending: its own B1, and S1 only on request.
async fn pending_share_in_lists(path: &str, with_s1: bool) {
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    let b1 = mock.create_id(Who::B, json!({"name": "B1"})).await;
    let expected = if with_s1 { vec![b1, s1] } else { vec![b1] };
    assert_eq!(page_of(&mock.get(Who::B, path).await).0, expected);
}

cases!(pending_share_in_lists {
    default_list => ("/v2/images", false),
    // transcript 186
    shared_images => ("/v2/images?visibility=shared", false),
    // transcript 187
    shared_images_of_any_member_status => ("/v2/images?visibility=shared&member_status=all", true),
    pending_member_status => ("/v2/images?member_status=pending", true),
});

#[tokio::test]
async fn the_owner_cannot_answer_for_the_member() {
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    expect_error(
        &answer_as_b(&mock, Who::A, &s1, r#"{"status":"accepted"}"#).await,
        403,
        178,
        "You are not authorized to complete modify_member action.",
    );
}

#[tokio::test]
async fn unknown_member_status_is_refused() {
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    assert_eq!(
        answer_as_b(&mock, Who::B, &s1, r#"{"status":"maybe"}"#).await.status,
        400
    );
}

#[tokio::test]
async fn accepting_a_share() {
    // transcripts 188 and 189
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    let b1 = mock.create_id(Who::B, json!({"name": "B1"})).await;
    let accepted = answer_as_b(&mock, Who::B, &s1, r#"{"status":"accepted"}"#).await;
    assert_eq!(accepted.json()["status"], "accepted");
    assert_eq!(
        page_of(&mock.get(Who::B, "/v2/images").await).0,
        [b1.clone(), s1.clone()]
    );
    assert_eq!(
        mock.get(Who::B, &format!("/v2/images/{s1}/members")).await.json()["members"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        mock.get(Who::B, &format!("/v2/images/{s1}/members/{B}")).await.json()["status"],
        "accepted"
    );
}

#[tokio::test]
async fn a_member_may_not_modify_the_image() {
    // transcript 190
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    answer_as_b(&mock, Who::B, &s1, r#"{"status":"accepted"}"#).await;
    b_may_not_edit(&mock, &s1).await;
}

#[tokio::test]
async fn members_only_exist_on_shared_images() {
    let mock = Mock::start().await;
    let private = mock
        .create_id(Who::A, json!({"name": "private", "visibility": "private"}))
        .await;
    expect_error(
        &mock
            .post_json(Who::A, &format!("/v2/images/{private}/members"), &json!({"member": B}))
            .await,
        403,
        199,
        &format!("Not allowed to create members for image {private}."),
    );
}

#[tokio::test]
async fn removing_the_member_hides_the_image() {
    let mock = Mock::start().await;
    let (s1, _) = shared_with_b(&mock).await;
    answer_as_b(&mock, Who::B, &s1, r#"{"status":"accepted"}"#).await;
    assert_eq!(
        mock.delete(Who::A, &format!("/v2/images/{s1}/members/{B}"))
            .await
            .status,
        204
    );
    assert_eq!(mock.get(Who::B, &format!("/v2/images/{s1}")).await.status, 404);
}
