//! The scenarios. They share their services with other runs (the real
//! Glance), so they only ever look at images they made, by unique name.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Answer, assert_image_keys, send};
use crate::target::{Ctx, Mode};
use crate::unique;

async fn create(ctx: &Ctx, environment: &str, image: Value) -> Value {
    let answer = send(
        ctx.call(environment, Method::POST, "/images")
            .body(json!({"image": image}).to_string()),
    )
    .await;
    assert_eq!(answer.status, 201, "create: {}", String::from_utf8_lossy(&answer.body));
    answer.json()
}

async fn show(ctx: &Ctx, environment: &str, reference: &str) -> Answer {
    send(ctx.call(environment, Method::GET, &format!("/images/{reference}"))).await
}

fn id(image: &Value) -> String {
    image["id"].as_str().expect("image id").to_owned()
}

/// Waits for an image to reach `wanted`, then for Glance to be done with it.
async fn wait_for_status(ctx: &Ctx, environment: &str, image_id: &str, wanted: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let image = show(ctx, environment, image_id).await.json();
        if image["status"] == wanted {
            ctx.upstream_settled(image_id).await;
            return image;
        }
        assert!(Instant::now() < deadline, "image never became {wanted}: {image}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn create_show_update_delete(ctx: &Ctx) {
    let name = unique("crud");
    let created = create(
        ctx,
        &ctx.env_a,
        json!({"name": name, "disk_format": "qcow2", "container_format": "bare", "min_ram": 1, "min_disk": 500}),
    )
    .await;
    assert_image_keys(&created);
    assert_eq!(
        (
            created["status"].as_str(),
            created["visibility"].as_str(),
            created["owner"].as_str()
        ),
        (Some("queued"), Some("private"), Some(ctx.env_a.as_str()))
    );
    assert_eq!(
        (created["min_ram"].as_u64(), created["min_disk"].as_u64()),
        (Some(1), Some(500))
    );
    let image_id = id(&created);
    assert_eq!(created["file"], format!("/v2/images/{image_id}/file"));
    assert_eq!(created["schema"], "/v2/schemas/image");

    let by_id = show(ctx, &ctx.env_a, &image_id).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.json(), created);
    assert_eq!(show(ctx, &ctx.env_a, &name).await.json(), created, "by name");

    let listed = send(ctx.call(&ctx.env_a, Method::GET, &format!("/images?name={name}"))).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json(), json!([{"images": [created]}]));

    let patched = send(
        ctx.call(&ctx.env_a, Method::PATCH, &format!("/images/{image_id}"))
            .body(
                json!({"image": {"name": format!("{name}-2"), "disk_format": "raw", "min_ram": 2, "tags": ["a"]}})
                    .to_string(),
            ),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", String::from_utf8_lossy(&patched.body));
    let patched = patched.json();
    assert_eq!(
        (patched["name"].as_str(), patched["disk_format"].as_str()),
        (Some(format!("{name}-2").as_str()), Some("raw"))
    );
    assert_eq!(
        (patched["min_ram"].as_u64(), patched["tags"].clone()),
        (Some(2), json!(["a"]))
    );

    // v1 clients update by name with PUT.
    let put = send(
        ctx.call(&ctx.env_a, Method::PUT, &format!("/images/{name}-2"))
            .body(json!({"image": {"name": name, "is_public": false, "protected": false}}).to_string()),
    )
    .await;
    assert_eq!(put.status, 200);
    assert_eq!(put.json()["name"], name.as_str());

    let deleted = send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{name}"))).await;
    assert_eq!((deleted.status, deleted.body.len()), (200, 0));
    assert_eq!(
        show(ctx, &ctx.env_a, &image_id).await.error_message(404),
        format!("No image found with ID {image_id}")
    );
    let again = send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{image_id}"))).await;
    assert_eq!(
        again.error_message(404),
        format!("Failed to find image {image_id} to delete")
    );
}

pub async fn list_follows_every_page(ctx: &Ctx) {
    let tag = unique("page");
    let mut created = Vec::new();
    for index in 0..5 {
        created.push(
            create(
                ctx,
                &ctx.env_a,
                json!({"name": format!("{tag}-{index}"), "tags": [tag]}),
            )
            .await,
        );
    }
    // Pages of two: three Glance pages, one Alliance list, newest first.
    let listed = send(ctx.call(&ctx.env_a, Method::GET, &format!("/images?tag={tag}"))).await;
    assert_eq!(listed.status, 200);
    let expected: Vec<Value> = created.iter().rev().cloned().collect();
    assert_eq!(listed.json(), json!([{"images": expected}]));
    // Sorting is passed through.
    let sorted = send(ctx.call(
        &ctx.env_a,
        Method::GET,
        &format!("/images?tag={tag}&sort_key=name&sort_dir=asc"),
    ))
    .await;
    let names: Vec<String> = sorted.json()[0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, (0..5).map(|index| format!("{tag}-{index}")).collect::<Vec<_>>());
    for image in &created {
        assert_eq!(
            send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{}", id(image))))
                .await
                .status,
            200
        );
    }
}

pub async fn names_must_be_unique_to_be_used(ctx: &Ctx) {
    let name = unique("twin");
    let first = create(ctx, &ctx.env_a, json!({"name": name})).await;
    let second = create(ctx, &ctx.env_a, json!({"name": name})).await;
    let message = show(ctx, &ctx.env_a, &name).await.error_message(409);
    assert!(
        message.contains(&id(&first)) && message.contains(&id(&second)),
        "{message}"
    );
    let missing = unique("missing");
    assert_eq!(
        show(ctx, &ctx.env_a, &missing).await.error_message(404),
        format!("no image named \"{missing}\" is visible to this environment")
    );
    for image in [first, second] {
        assert_eq!(
            send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{}", id(&image))))
                .await
                .status,
            200
        );
    }
}

pub async fn bad_input_is_refused(ctx: &Ctx) {
    let answers = [
        (send(ctx.call(&ctx.env_a, Method::POST, "/images").body("{")).await, 400),
        (
            send(
                ctx.call(&ctx.env_a, Method::POST, "/images")
                    .body(r#"{"image": {"status": "active"}}"#),
            )
            .await,
            400,
        ),
        (
            send(
                ctx.call(&ctx.env_a, Method::POST, "/images")
                    .body(r#"{"image": {"bogus": 1}}"#),
            )
            .await,
            400,
        ),
        (send(ctx.call(&ctx.env_a, Method::DELETE, "/images")).await, 405),
        (send(ctx.call(&ctx.env_a, Method::GET, "/nowhere")).await, 404),
        (send(ctx.call("not-a-project", Method::GET, "/images")).await, 400),
    ];
    for (answer, status) in answers {
        answer.error_message(status);
    }
    // Glance's own refusals, made plain.
    let message = send(
        ctx.call(&ctx.env_a, Method::POST, "/images")
            .body(r#"{"image": {"disk_format": "qcow3"}}"#),
    )
    .await
    .error_message(400);
    assert!(
        message.starts_with("Provided object does not match schema 'image'"),
        "{message}"
    );
    let message = send(
        ctx.call(&ctx.env_a, Method::POST, "/images")
            .body(r#"{"image": {"visibility": "public"}}"#),
    )
    .await
    .error_message(403);
    assert_eq!(message, "You are not authorized to complete publicize_image action.");
}

pub async fn environments_are_isolated(ctx: &Ctx) {
    let name = unique("private");
    let image = create(ctx, &ctx.env_a, json!({"name": name, "visibility": "private"})).await;
    let image_id = id(&image);
    let as_b = |method: Method, path: String| ctx.call(&ctx.env_b, method, &path);

    assert_eq!(
        show(ctx, &ctx.env_b, &image_id).await.error_message(404),
        format!("No image found with ID {image_id}")
    );
    show(ctx, &ctx.env_b, &name).await.error_message(404);
    let update =
        send(as_b(Method::PATCH, format!("/images/{image_id}")).body(r#"{"image": {"name": "stolen"}}"#)).await;
    update.error_message(404);
    send(as_b(Method::DELETE, format!("/images/{image_id}")))
        .await
        .error_message(404);
    let listed = send(as_b(Method::GET, format!("/images?name={name}"))).await;
    assert_eq!(listed.json(), json!([{"images": []}]));
    // A's image is untouched.
    assert_eq!(show(ctx, &ctx.env_a, &image_id).await.json()["name"], name.as_str());
    assert_eq!(
        send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{image_id}")))
            .await
            .status,
        200
    );
}

pub async fn protected_images_and_active_formats(ctx: &Ctx) {
    let image = create(ctx, &ctx.env_a, json!({"name": unique("protected"), "protected": true})).await;
    let image_id = id(&image);
    let message = send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{image_id}")))
        .await
        .error_message(403);
    assert_eq!(message, format!("Image {image_id} is protected and cannot be deleted."));
    let unprotect = send(
        ctx.call(&ctx.env_a, Method::PATCH, &format!("/images/{image_id}"))
            .body(r#"{"image": {"protected": false}}"#),
    )
    .await;
    assert_eq!(unprotect.status, 200);
    assert_eq!(
        send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{image_id}")))
            .await
            .status,
        200
    );

    let active = create(
        ctx,
        &ctx.env_a,
        json!({"name": unique("active"), "disk_format": "qcow2", "container_format": "bare", "copy_from": ctx.good_image_url}),
    )
    .await;
    let active_id = id(&active);
    wait_for_status(ctx, &ctx.env_a, &active_id, "active").await;
    let message = send(
        ctx.call(&ctx.env_a, Method::PATCH, &format!("/images/{active_id}"))
            .body(r#"{"image": {"disk_format": "raw"}}"#),
    )
    .await
    .error_message(403);
    assert_eq!(
        message,
        "Attribute disk_format can be only replaced for a queued image."
    );
    assert_eq!(
        send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{active_id}")))
            .await
            .status,
        200
    );
}

pub async fn copy_from_reaches_active_with_the_right_checksum(ctx: &Ctx) {
    let created = create(
        ctx,
        &ctx.env_a,
        json!({"name": unique("copy"), "disk_format": "qcow2", "container_format": "bare", "copy_from": ctx.good_image_url}),
    )
    .await;
    assert_eq!(
        (created["status"].as_str(), created["copy_from"].as_str()),
        (Some("queued"), Some(ctx.good_image_url.as_str()))
    );
    let image = wait_for_status(ctx, &ctx.env_a, &id(&created), "active").await;
    assert_eq!(image["checksum"], ctx.good_image_md5.as_str());
    assert_eq!(image["size"], ctx.good_image_size);
    assert_eq!(image["virtual_size"], 1u64 << 20);
    assert_eq!(image["copy_from"], ctx.good_image_url.as_str());
    assert_eq!(
        send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{}", id(&image))))
            .await
            .status,
        200
    );
}

/// The first Glance release of the matrix that checks imported bytes against
/// `disk_format` (2025.2; 2024.1, Glance 28, stores bytes of no format as qcow2).
const CHECKS_IMPORTED_FORMAT: u32 = 31;

pub async fn a_failed_import_shows_killed(ctx: &Ctx) {
    for source in [&ctx.missing_image_url, &ctx.garbage_url] {
        let name = unique("killed");
        let created = create(
            ctx,
            &ctx.env_a,
            json!({"name": name, "disk_format": "qcow2", "container_format": "bare", "copy_from": source}),
        )
        .await;
        if source == &ctx.garbage_url && ctx.glance_release < CHECKS_IMPORTED_FORMAT {
            let image = wait_for_status(ctx, &ctx.env_a, &id(&created), "active").await;
            let deleted = send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{}", id(&image)))).await;
            assert_eq!(deleted.status, 200);
            continue;
        }
        let image = wait_for_status(ctx, &ctx.env_a, &id(&created), "killed").await;
        assert_eq!(
            (image["size"].clone(), image["checksum"].clone()),
            (Value::Null, Value::Null)
        );
        // The list says so too.
        let listed = send(ctx.call(&ctx.env_a, Method::GET, &format!("/images?name={name}")))
            .await
            .json();
        assert_eq!(listed[0]["images"][0]["status"], "killed", "{source}");
        assert_eq!(
            send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{}", id(&image))))
                .await
                .status,
            200
        );
    }
}

pub async fn a_refused_import_leaves_no_image(ctx: &Ctx) {
    let name = unique("refused");
    // Glance's import filtering allows only the image server's port (and 80, 443).
    let answer = send(ctx.call(&ctx.env_a, Method::POST, "/images").body(
        json!({"image": {"name": name, "disk_format": "qcow2", "container_format": "bare", "copy_from": "http://127.0.0.1:1/x.qcow2"}}).to_string(),
    ))
    .await;
    let message = answer.error_message(400);
    assert!(
        message.starts_with("the cloud refused copy_from: URI for web-download does not pass filtering"),
        "{message}"
    );
    let listed = send(ctx.call(&ctx.env_a, Method::GET, &format!("/images?name={name}"))).await;
    assert_eq!(listed.json(), json!([{"images": []}]), "no orphan image");
}

pub async fn keystone_refuses_a_project_without_a_role(ctx: &Ctx) {
    if ctx.mode != Mode::Keystone {
        return;
    }
    for _ in 0..2 {
        let answer = send(ctx.call(&ctx.env_without_role, Method::GET, "/images")).await;
        assert_eq!(
            answer.error_message(403),
            "environment not accessible in this namespace"
        );
    }
}

pub async fn a_revoked_token_is_replaced(ctx: &Ctx) {
    if ctx.mode != Mode::Keystone {
        return;
    }
    let image = create(ctx, &ctx.env_a, json!({"name": unique("revoked")})).await;
    ctx.revoke_service_tokens().await;
    // The cached token is refused by Glance; the facade gets a new one and retries once.
    let shown = show(ctx, &ctx.env_a, &id(&image)).await;
    assert_eq!(shown.status, 200, "{}", String::from_utf8_lossy(&shown.body));
    assert_eq!(
        send(ctx.call(&ctx.env_a, Method::DELETE, &format!("/images/{}", id(&image))))
            .await
            .status,
        200
    );
}

pub async fn copy_from_through_the_facade(ctx: &Ctx) {
    let namespace = ctx.mode.upload_namespace();
    let create_in = |source: &str| {
        ctx.call_in(namespace, &ctx.env_a, Method::POST, "/images").body(
            json!({"image": {"name": unique("upload"), "disk_format": "qcow2", "container_format": "bare", "copy_from": source}})
                .to_string(),
        )
    };
    let show_in = |image_id: String| ctx.call_in(namespace, &ctx.env_a, Method::GET, &format!("/images/{image_id}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    for (source, outcome) in [(&ctx.good_image_url, "active"), (&ctx.missing_image_url, "killed")] {
        let created = send(create_in(source)).await;
        assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
        let image_id = id(&created.json());
        let image = loop {
            let image = send(show_in(image_id.clone())).await.json();
            if image["status"] == outcome {
                break image;
            }
            assert!(
                Instant::now() < deadline,
                "never {outcome} (see the facade's warnings): {image}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if outcome == "active" {
            assert_eq!(image["checksum"], ctx.good_image_md5.as_str());
            assert_eq!(image["size"], ctx.good_image_size);
        }
        let deleted = send(ctx.call_in(namespace, &ctx.env_a, Method::DELETE, &format!("/images/{image_id}"))).await;
        assert_eq!(deleted.status, 200);
    }
}
