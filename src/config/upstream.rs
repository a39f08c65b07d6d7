//! `[upstream]`: memory for upstream answers.

use std::time::Duration;

use serde::Deserialize;

/// Memory for upstream answers (`[upstream]`), which are read whole before
/// they are judged: one budget for every namespace and thread together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamLimits {
    /// All upstream answers held at once.
    pub buffer_bytes: usize,
    /// A larger answer is refused (502) without being read whole.
    pub max_answer_bytes: usize,
    /// How long an answer may wait for room in `buffer_bytes` before its
    /// request is refused with 503.
    pub buffer_wait_ms: u64,
}

impl Default for UpstreamLimits {
    fn default() -> Self {
        UpstreamLimits {
            buffer_bytes: 128 * 1024 * 1024,
            max_answer_bytes: 32 * 1024 * 1024,
            buffer_wait_ms: 5_000,
        }
    }
}

impl UpstreamLimits {
    pub fn buffer_wait(&self) -> Duration {
        Duration::from_millis(self.buffer_wait_ms)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.max_answer_bytes == 0
            || self.max_answer_bytes > self.buffer_bytes
            || u32::try_from(self.max_answer_bytes).is_err()
        {
            return Err(
                "upstream.max_answer_bytes must be positive, below 4 GiB and at most upstream.buffer_bytes".into(),
            );
        }
        Ok(())
    }
}
