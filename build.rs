//! Names the commit the binary is built from (`ALLIANCE_GLANCE_COMMIT`, for
//! `--version` and the `alliance_glance_build_info` metric): the variable
//! itself if the builder sets it (a container build without `.git`), else
//! `git rev-parse HEAD`, else `unknown` - a build outside git still works.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ALLIANCE_GLANCE_COMMIT");
    let commit = std::env::var("ALLIANCE_GLANCE_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ALLIANCE_GLANCE_COMMIT={}", commit.trim());
}

/// The short hash of `HEAD`; asks to run again when `HEAD` moves.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // HEAD names a branch whose ref file (or packed-refs) changes on commit;
    // in a worktree HEAD is in its own git dir, refs in the common one.
    let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
    let common_dir = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let mut watched: Vec<PathBuf> = Vec::new();
    if let Some(dir) = &git_dir {
        watched.push(dir.join("HEAD"));
    }
    if let Some(dir) = &common_dir {
        watched.push(dir.join("packed-refs"));
        if let Some(branch) = &branch {
            watched.push(dir.join(branch));
        }
    }
    // A path that does not exist would make cargo run this every build.
    for path in watched.iter().filter(|path| Path::new(path).exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(commit)
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
