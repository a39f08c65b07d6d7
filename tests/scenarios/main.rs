//! The scenario suite: the Alliance calls end to end, judged only by what a
//! client sees. Every scenario runs in both auth modes against the
//! project's mock services, and - with `--include-ignored`, as
//! `scripts/test.sh` runs it - against real Glance 33 and Keystone 30.

#[path = "../support/mod.rs"]
mod support;

mod callers;
mod flows;
mod keystone_cost;
mod target;

/// Real-service scenarios take turns (see [`target::real`]).
static REAL_SERVICES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every scenario, against the mocks and the real services in both modes;
/// after the `;`, those left out of the DevStack plugin's facade
/// ([`target::external`]): `copy_from_through_the_facade` needs a namespace
/// with the facade's own transfer, which the plugin does not configure (a
/// DevStack Glance offers web-download). `scripts/test.sh` runs the
/// external ones through `devstack/tests/plugin-test.sh` and leaves them
/// out of its other runs (`--skip external_keystone`).
macro_rules! scenarios {
    ($($name:ident),* ; $($not_external:ident),*) => {
        scenarios!(@group mock_trusted, mock, Trusted, [$($name,)* $($not_external,)*]);
        scenarios!(@group mock_keystone, mock, Keystone, [$($name,)* $($not_external,)*]);
        scenarios!(@real real_trusted, crate::target::real(crate::target::Mode::Trusted),
            "needs real OpenStack: scripts/test.sh starts it", [$($name,)* $($not_external,)*]);
        scenarios!(@real real_keystone, crate::target::real(crate::target::Mode::Keystone),
            "needs real OpenStack: scripts/test.sh starts it", [$($name,)* $($not_external,)*]);
        scenarios!(@real external_keystone, crate::target::external(),
            "needs the facade devstack/tests/plugin-test.sh starts", [$($name,)*]);
    };
    (@group $module:ident, mock, $mode:ident, [$($name:ident,)*]) => {
        mod $module {
            $(#[tokio::test] async fn $name() { crate::flows::$name(&crate::target::mock(crate::target::Mode::$mode).await).await; })*
        }
    };
    (@real $module:ident, $target:expr, $why:literal, [$($name:ident,)*]) => {
        mod $module {
            $(#[tokio::test] #[ignore = $why] async fn $name() {
                let _turn = crate::REAL_SERVICES.lock().await;
                crate::flows::$name(&$target.await).await;
            })*
        }
    };
}

scenarios!(
    create_show_update_delete,
    list_follows_every_page,
    names_must_be_unique_to_be_used,
    bad_input_is_refused,
    environments_are_isolated,
    protected_images_and_active_formats,
    copy_from_reaches_active_with_the_right_checksum,
    a_failed_import_shows_killed,
    a_refused_import_leaves_no_image,
    keystone_refuses_a_project_without_a_role,
    a_revoked_token_is_replaced;
    copy_from_through_the_facade
);

#[tokio::test]
#[ignore = "needs real OpenStack: scripts/test.sh starts it"]
async fn real_keystone_random_environments_cost_one_password_check() {
    let _turn = REAL_SERVICES.lock().await;
    keystone_cost::random_environments_cost_one_password_check().await;
}

/// A name no other scenario (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
