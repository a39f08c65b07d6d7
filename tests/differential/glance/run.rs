//! Sending a sequence to both sides, step by step, and comparing the answers.

use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;

use super::generate::FRESH_IDS;
use super::{Body, Call, File, Ref, Step, Who};
use crate::normalise::{self, Answer, Seen, Symbols};

type Json = crate::json::Json<Ref>;

/// One Glance (trusted flavor) and the image server its imports read from.
pub struct Side {
    pub name: &'static str,
    /// Base URL, without `/v2`.
    pub url: String,
    /// The image server (`up.sh`'s): `image.qcow2`, `image.raw`, `garbage.bin`.
    pub files_url: String,
}

/// What both sides share in one case: the projects and the UUIDs the test chose.
struct Case {
    project: String,
    other_project: String,
    fresh: Vec<String>,
    /// An id no image ever has.
    absent: String,
}

impl Case {
    fn new() -> Self {
        let uuid = || uuid::Uuid::new_v4().to_string();
        Case {
            project: uuid::Uuid::new_v4().simple().to_string(),
            other_project: uuid::Uuid::new_v4().simple().to_string(),
            fresh: (0..FRESH_IDS).map(|_| uuid()).collect(),
            absent: uuid(),
        }
    }
}

/// Path segments keep only RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Headers compared as they are (after names replace ids and addresses).
const COMPARED_HEADERS: [&str; 8] = [
    "content-type",
    "location",
    "allow",
    "accept-patch",
    "openstack-image-import-methods",
    "openstack-image-store-ids",
    "www-authenticate",
    "content-md5",
];

/// One side during one case.
struct Run<'a> {
    side: &'a Side,
    client: &'a reqwest::Client,
    case: &'a Case,
    /// Ids of the images created so far.
    created: Vec<String>,
    symbols: Symbols,
}

impl<'a> Run<'a> {
    fn new(side: &'a Side, client: &'a reqwest::Client, case: &'a Case) -> Self {
        let mut known = vec![
            (case.project.clone(), "<project>".to_owned()),
            (case.other_project.clone(), "<other-project>".to_owned()),
            (case.absent.clone(), "<absent>".to_owned()),
            (side.url.clone(), "<glance>".to_owned()),
            (side.files_url.clone(), "<files>".to_owned()),
        ];
        known.extend(
            case.fresh
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), format!("<fresh-{i}>"))),
        );
        Run {
            side,
            client,
            case,
            created: Vec::new(),
            symbols: Symbols::new(known),
        }
    }

    fn resolve(&self, reference: &Ref) -> String {
        match reference {
            Ref::Image(_) if self.created.is_empty() => self.case.absent.clone(),
            Ref::Image(n) => self.created[n % self.created.len()].clone(),
            Ref::Fresh(n) => self.case.fresh[n % self.case.fresh.len()].clone(),
            Ref::Project => self.case.project.clone(),
            Ref::OtherProject => self.case.other_project.clone(),
            Ref::File(File::RefusedPort) => "http://127.0.0.1:1/image.qcow2".to_owned(),
            Ref::File(file) => {
                let name = match file {
                    File::Qcow2 => "image.qcow2",
                    File::Raw => "image.raw",
                    File::Garbage => "garbage.bin",
                    _ => "no-such-image.qcow2",
                };
                format!("{}/{name}", self.side.files_url)
            }
        }
    }

    fn request(&self, who: Who, method: Method, path: &str) -> reqwest::RequestBuilder {
        let roles = match who {
            Who::Reader => "reader",
            _ => "member,reader",
        };
        let project = self.request_project(who);
        self.client
            .request(method, format!("{}{path}", self.side.url))
            .header("X-Identity-Status", "Confirmed")
            .header("X-Project-Id", project)
            .header("X-User-Id", "differential")
            .header("X-Roles", roles)
    }

    fn image_path(&self, image: &super::Text, tail: &str) -> String {
        let id = image.render(&|r| self.resolve(r));
        format!("/v2/images/{}{tail}", utf8_percent_encode(&id, SEGMENT))
    }

    async fn send(&self, step: &Step) -> Answer {
        let resolve = |r: &Ref| self.resolve(r);
        let json = "application/json";
        let (method, path, content_type, body): (Method, String, Option<&str>, Option<Vec<u8>>) = match &step.call {
            Call::Create { body } => (Method::POST, "/v2/images".into(), Some(json), render(body, &resolve)),
            Call::Show { image } => (Method::GET, self.image_path(image, ""), None, None),
            Call::Update {
                image,
                media_type,
                body,
            } => (
                Method::PATCH,
                self.image_path(image, ""),
                *media_type,
                render(body, &resolve),
            ),
            Call::Delete { image } => (Method::DELETE, self.image_path(image, ""), None, None),
            Call::List { query } => {
                let pairs: Vec<String> = query
                    .iter()
                    .map(|(key, value)| {
                        let value = value.render(&resolve);
                        let encode =
                            |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
                        format!("{}={}", encode(&key.0), encode(&value))
                    })
                    .collect();
                let path = match pairs.is_empty() {
                    true => "/v2/images".to_owned(),
                    false => format!("/v2/images?{}", pairs.join("&")),
                };
                (Method::GET, path, None, None)
            }
            Call::Import { image, body } => (
                Method::POST,
                self.image_path(image, "/import"),
                Some(json),
                render(body, &resolve),
            ),
            Call::Upload {
                image,
                stage,
                content_type,
                data,
            } => (
                Method::PUT,
                self.image_path(image, if *stage { "/stage" } else { "/file" }),
                *content_type,
                Some(data.bytes()),
            ),
            Call::Tasks { image } => (Method::GET, self.image_path(image, "/tasks"), None, None),
        };
        let mut request = self.request(step.who, method, &path);
        if let Some(accept) = step.accept.header() {
            request = request.header("Accept", accept);
        }
        if let Some(id) = &step.request_id {
            request = request.header("X-Openstack-Request-Id", id);
        }
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        match request.send().await {
            Ok(response) => Answer::read(response).await,
            Err(error) => Answer::failed(&error),
        }
    }

    fn seen(&mut self, step: &Step, answer: &Answer) -> Seen {
        let mut headers = Vec::new();
        for name in COMPARED_HEADERS {
            if let Some(value) = answer.header(name) {
                headers.push((name, self.symbols.replace(value)));
            }
        }
        if let Some(value) = answer.header("x-openstack-request-id") {
            headers.push((
                "x-openstack-request-id",
                normalise::request_id(value, step.request_id.as_deref()),
            ));
        }
        Seen {
            status: answer.status,
            headers,
            body: normalise::body(answer, &mut self.symbols),
        }
    }

    /// Keeps track of created images; waits for an accepted import to end,
    /// since when it ends is not for the two sides to agree on.
    async fn after(&mut self, step: &Step, answer: &Answer) {
        match &step.call {
            Call::Create { .. } if answer.status == 201 => {
                if let Some(id) = answer.json().and_then(|image| image["id"].as_str().map(str::to_owned)) {
                    self.created.push(id);
                }
            }
            Call::Import { image, .. } if answer.status == 202 => {
                let id = image.render(&|r| self.resolve(r));
                self.settle(&id, step.who).await;
            }
            _ => {}
        }
    }

    /// Waits until the image has no import running.
    async fn settle(&self, id: &str, who: Who) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let path = format!("/v2/images/{}", utf8_percent_encode(id, SEGMENT));
        loop {
            let answer = Answer::read(
                self.request(who, Method::GET, &path)
                    .header("Accept", "application/json")
                    .send()
                    .await
                    .expect("Glance reachable"),
            )
            .await;
            let image = answer.json().unwrap_or_default();
            // Done when the task is, not only the lock (a failed import can
            // leave its lock behind, and the task is written last: a write
            // meanwhile could meet SQLite's "database is locked").
            let running = image["status"] == "importing" || !self.tasks_ended(id, who).await;
            if answer.status != 200 || !running {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: import never ended: {image}",
                self.side.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether every import task of the image has ended.
    async fn tasks_ended(&self, image: &str, who: Who) -> bool {
        let path = format!("/v2/images/{}/tasks", utf8_percent_encode(image, SEGMENT));
        let Ok(response) = self.request(who, Method::GET, &path).send().await else {
            return false;
        };
        let tasks = Answer::read(response).await.json().unwrap_or_default();
        tasks["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|task| task["status"] == "success" || task["status"] == "failure")
    }

    /// Deletes every image of the case's projects (unprotecting first),
    /// those a refused create left behind included.
    async fn clean_up(&self) {
        for who in [Who::Member, Who::Stranger] {
            for hidden in ["false", "true"] {
                let list = format!("/v2/images?visibility=all&os_hidden={hidden}&limit=1000");
                let answer = Answer::read(
                    self.request(who, Method::GET, &list)
                        .header("Accept", "application/json")
                        .send()
                        .await
                        .expect("Glance reachable"),
                )
                .await;
                let images = answer.json().unwrap_or_default()["images"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let project = self.request_project(who);
                for image in images.iter().filter(|image| image["owner"] == project.as_str()) {
                    let id = image["id"].as_str().unwrap_or_default();
                    self.delete(who, id).await;
                }
            }
        }
    }

    fn request_project(&self, who: Who) -> &String {
        match who {
            Who::Stranger => &self.case.other_project,
            _ => &self.case.project,
        }
    }

    async fn delete(&self, who: Who, id: &str) {
        let path = format!("/v2/images/{id}");
        let unprotect = r#"[{"op": "replace", "path": "/protected", "value": false}]"#;
        let _ = self
            .request(who, Method::PATCH, &path)
            .header("Content-Type", "application/openstack-images-v2.1-json-patch")
            .body(unprotect)
            .send()
            .await;
        let deleted = self.request(who, Method::DELETE, &path).send().await;
        let status = deleted.map(|r| r.status().as_u16()).unwrap_or(0);
        assert!(
            status == 204 || status == 404,
            "{}: could not delete {id} ({status})",
            self.side.name
        );
    }
}

fn render(body: &Body, resolve: &dyn Fn(&Ref) -> String) -> Option<Vec<u8>> {
    match body {
        Body::Json(json) => Some(json.render(resolve).into_bytes()),
        Body::Raw(text) => Some(text.clone().into_bytes()),
        Body::Empty => None,
    }
}

/// Brings a side's Glance into the state a long-running one is in:
/// image data has gone through its stores once (which adds the reserved
/// stores to `OpenStack-image-store-ids`).
pub async fn warm_up(side: &Side, client: &reqwest::Client) {
    let case = Case::new();
    let mut run = Run::new(side, client, &case);
    let qcow2 = |n| Step {
        who: Who::Member,
        accept: super::Accept::Json,
        request_id: None,
        call: n,
    };
    let create = qcow2(Call::Create {
        body: Body::Json(Json::object([
            ("disk_format", Json::str("qcow2")),
            ("container_format", Json::str("bare")),
        ])),
    });
    let import = qcow2(Call::Import {
        image: super::Text::reference(Ref::Image(0)),
        body: Body::Json(Json::object([(
            "method",
            Json::object([
                ("name", Json::str("web-download")),
                ("uri", Json::Ref(Ref::File(File::Qcow2))),
            ]),
        )])),
    });
    for step in [create, import] {
        let answer = run.send(&step).await;
        assert!(
            answer.status < 300,
            "{}: warm-up {:?} answered {}",
            side.name,
            step,
            answer.status
        );
        run.after(&step, &answer).await;
    }
    run.clean_up().await;
}

/// Sends `steps` to both sides, one step at a time, and compares each pair
/// of answers; the first difference is the error. Cleans up either way.
pub async fn compare(sides: &[Side; 2], client: &reqwest::Client, steps: &[Step]) -> Result<(), String> {
    let case = Case::new();
    let mut runs = [Run::new(&sides[0], client, &case), Run::new(&sides[1], client, &case)];
    let mut outcome = Ok(());
    for (index, step) in steps.iter().enumerate() {
        let [first, second] = &mut runs;
        let (a, b) = tokio::join!(first.send(step), second.send(step));
        let (seen_a, seen_b) = (first.seen(step, &a), second.seen(step, &b));
        if std::env::var_os("DIFFERENTIAL_TRACE").is_some() {
            eprintln!("TRACE {} {}", step.call.kind(), seen_a.status);
        }
        if seen_a != seen_b {
            outcome = Err(format!(
                "step {} of {}: {step:?}\n--- {}:\n{seen_a:?}--- {}:\n{seen_b:?}",
                index + 1,
                steps.len(),
                first.side.name,
                second.side.name
            ));
            break;
        }
        tokio::join!(first.after(step, &a), second.after(step, &b));
    }
    let [first, second] = &runs;
    tokio::join!(first.clean_up(), second.clean_up());
    outcome
}
