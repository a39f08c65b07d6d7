//! `cases!`: a table of test cases, one test per row.

/// Expands a table into one `#[tokio::test]` per row, in a module named after
/// the check: `cases!(check { name => (args...), ... })` makes
/// `check::name`, which awaits `check(args...)`. A failing row names itself
/// and does not stop the others.
macro_rules! cases {
    ($check:ident { $($name:ident => ($($arg:expr),* $(,)?)),+ $(,)? }) => {
        mod $check {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$check($($arg),*).await;
                }
            )+
        }
    };
}
