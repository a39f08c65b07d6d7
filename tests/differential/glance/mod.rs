//! Glance v2 calls as the differential test generates them: each step is
//! sent to both sides, with placeholders ([`Ref`]) each side resolves to
//! its own ids.

pub mod generate;
pub mod run;

use std::fmt;

type Json = crate::json::Json<Ref>;

/// A value each side resolves for itself.
#[derive(Clone, Copy, PartialEq)]
pub enum Ref {
    /// The image created by the n-th successful create of the sequence
    /// (modulo their number); an unknown id when there is none yet.
    Image(usize),
    /// One of a few UUIDs drawn for the run, the same on both sides: ids a
    /// create may ask for, and ids of no image.
    Fresh(usize),
    /// The sequence's own project, and another one.
    Project,
    OtherProject,
    /// A URL on the image server that `up.sh` runs (web-download sources).
    File(File),
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Image(n) => write!(f, "image-{n}"),
            Ref::Fresh(n) => write!(f, "fresh-{n}"),
            Ref::Project => f.write_str("project"),
            Ref::OtherProject => f.write_str("other-project"),
            Ref::File(file) => write!(f, "{file:?}"),
        }
    }
}

/// Sources for web-download.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum File {
    /// `image.qcow2`, a valid qcow2.
    Qcow2,
    /// `image.raw`, random bytes.
    Raw,
    /// `garbage.bin`: bytes that are no image format.
    Garbage,
    /// A path the server answers 404 to.
    Missing,
    /// The image server on a port Glance's import filtering refuses.
    RefusedPort,
}

/// Text made of literal parts and placeholders (a path segment, a query value).
#[derive(Clone, PartialEq)]
pub struct Text(pub Vec<Piece>);

#[derive(Clone, PartialEq)]
pub enum Piece {
    Literal(String),
    Ref(Ref),
}

impl Text {
    pub fn literal(text: impl Into<String>) -> Text {
        Text(vec![Piece::Literal(text.into())])
    }

    pub fn reference(reference: Ref) -> Text {
        Text(vec![Piece::Ref(reference)])
    }

    pub fn render(&self, resolve: &dyn Fn(&Ref) -> String) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Literal(text) => text.clone(),
                Piece::Ref(reference) => resolve(reference),
            })
            .collect()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.render(&|reference| format!("<{reference:?}>"));
        write!(f, "{:?}", crate::json::abbreviate(&text))
    }
}

/// A query parameter's name, shown shortened in reports.
#[derive(Clone, PartialEq)]
pub struct Key(pub String);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", crate::json::abbreviate(&self.0))
    }
}

/// Who makes the call (Glance's trusted identity headers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Who {
    /// The sequence's project, roles member and reader (what the facade sends).
    Member,
    /// The same project with the reader role only.
    Reader,
    /// Another project, member and reader.
    Stranger,
}

/// The `Accept` header of the call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Accept {
    /// What the facade sends.
    Json,
    Missing,
    Html,
    Anything,
    PlainText,
}

impl Accept {
    pub fn header(self) -> Option<&'static str> {
        match self {
            Accept::Json => Some("application/json"),
            Accept::Missing => None,
            Accept::Html => Some("text/html"),
            Accept::Anything => Some("*/*"),
            Accept::PlainText => Some("text/plain"),
        }
    }
}

/// A request body.
#[derive(Clone, PartialEq)]
pub enum Body {
    Json(Json),
    /// Text that is not (or not only) JSON.
    Raw(String),
    Empty,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Json(json) => write!(f, "{json:?}"),
            Body::Raw(text) => write!(f, "raw {:?}", crate::json::abbreviate(text)),
            Body::Empty => f.write_str("(no body)"),
        }
    }
}

/// Image data for uploads.
#[derive(Clone, PartialEq)]
pub enum Data {
    Empty,
    Random(Vec<u8>),
    /// A minimal qcow2 header for this virtual size.
    Qcow2(u64),
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Empty => f.write_str("no bytes"),
            Data::Random(bytes) => write!(f, "{} random bytes", bytes.len()),
            Data::Qcow2(size) => write!(f, "qcow2 header of virtual size {size}"),
        }
    }
}

impl Data {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Data::Empty => Vec::new(),
            Data::Random(bytes) => bytes.clone(),
            Data::Qcow2(size) => openstack_mock::files::tiny_qcow2(*size).to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Create {
        body: Body,
    },
    Show {
        image: Text,
    },
    Update {
        image: Text,
        media_type: Option<&'static str>,
        body: Body,
    },
    Delete {
        image: Text,
    },
    List {
        query: Vec<(Key, Text)>,
    },
    Import {
        image: Text,
        body: Body,
    },
    /// `PUT /v2/images/{id}/file`, or `/stage` for glance-direct.
    Upload {
        image: Text,
        stage: bool,
        content_type: Option<&'static str>,
        data: Data,
    },
    Tasks {
        image: Text,
    },
}

impl Call {
    pub fn kind(&self) -> &'static str {
        match self {
            Call::Create { .. } => "create",
            Call::Show { .. } => "show",
            Call::Update { .. } => "update",
            Call::Delete { .. } => "delete",
            Call::List { .. } => "list",
            Call::Import { .. } => "import",
            Call::Upload { .. } => "upload",
            Call::Tasks { .. } => "tasks",
        }
    }
}

/// One call of a sequence.
#[derive(Clone, PartialEq)]
pub struct Step {
    pub who: Who,
    pub accept: Accept,
    /// `X-Openstack-Request-Id` to send, if any.
    pub request_id: Option<String>,
    pub call: Call,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.call)?;
        if self.who != Who::Member {
            write!(f, " as {:?}", self.who)?;
        }
        if self.accept != Accept::Json {
            write!(f, " accepting {:?}", self.accept)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " with request id {:?}", crate::json::abbreviate(id))?;
        }
        Ok(())
    }
}
