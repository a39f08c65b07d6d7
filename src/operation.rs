//! The five Alliance calls, once: which path and method name each, whether
//! it changes images, its name in logs and metrics and its CADF action in
//! the audit trail. Routing
//! (`inbound`), the callers' rules (read-only callers), the request log and
//! the metric labels all use [`Operation`]; `Allow` is derived from
//! [`ROUTES`].

use http::Method;

/// One of the five Alliance calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    List,
    Show,
    Create,
    Update,
    Delete,
}

/// The two resources of the Alliance API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `/images` (and `/images/`).
    Collection,
    /// `/images/{ref}`.
    Item,
}

/// Which call a method on a resource is; a method missing here is 405 on
/// that resource, with `Allow` listing the resource's rows in this order.
pub const ROUTES: &[(Resource, Method, Operation)] = &[
    (Resource::Collection, Method::GET, Operation::List),
    (Resource::Collection, Method::POST, Operation::Create),
    (Resource::Item, Method::GET, Operation::Show),
    (Resource::Item, Method::PATCH, Operation::Update),
    (Resource::Item, Method::PUT, Operation::Update),
    (Resource::Item, Method::DELETE, Operation::Delete),
];

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::List,
        Operation::Show,
        Operation::Create,
        Operation::Update,
        Operation::Delete,
    ];

    /// Its name in the request log and the `operation` metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Operation::List => "list",
            Operation::Show => "show",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// Its CADF action in the audit trail (keystonemiddleware's names).
    pub fn cadf_action(self) -> &'static str {
        match self {
            Operation::List => "read/list",
            Operation::Show => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// Create, update and delete change images; list and show only read.
    pub fn writes(self) -> bool {
        match self {
            Operation::List | Operation::Show => false,
            Operation::Create | Operation::Update | Operation::Delete => true,
        }
    }

    /// The call `method` is on `resource`, if it is one.
    pub fn routed(resource: Resource, method: &Method) -> Option<Operation> {
        ROUTES
            .iter()
            .find(|(on, allowed, _)| *on == resource && allowed == method)
            .map(|(_, _, operation)| *operation)
    }
}

impl Resource {
    /// `Allow` of the resource: the methods of its rows, in order.
    pub fn allow(self) -> String {
        let methods: Vec<&str> = ROUTES
            .iter()
            .filter(|(on, _, _)| *on == self)
            .map(|(_, method, _)| method.as_str())
            .collect();
        methods.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_route_and_allow_follows_the_rows() {
        for operation in Operation::ALL {
            assert!(
                ROUTES.iter().any(|(_, _, routed)| *routed == operation),
                "{operation:?}"
            );
        }
        assert_eq!(Resource::Collection.allow(), "GET, POST");
        assert_eq!(Resource::Item.allow(), "GET, PATCH, PUT, DELETE");
        assert_eq!(Operation::routed(Resource::Item, &Method::PUT), Some(Operation::Update));
        assert_eq!(Operation::routed(Resource::Collection, &Method::DELETE), None);
    }
}
