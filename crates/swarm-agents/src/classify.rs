//! An attempt's failure class from what its agent said: the errors it reported, else its stderr
//! tail, else its exit. Provider answers (status, message text, retry-after) are classified by
//! [`swarm_core::failure`].

use crate::adapter::AgentOutput;
use std::time::Duration;
use swarm_core::failure::FailureClass;
pub use swarm_core::failure::{from_status, from_text, parse_retry_after, retry_after_in_text};

/// The default classification: the first error the agent reported; else what the stderr tail
/// says; else a non-zero exit or a signal without explanation is a crash.
pub fn classify(
    exit_code: Option<i32>,
    errors: &[AgentOutput],
    stderr_tail: &[String],
) -> Option<(FailureClass, Option<Duration>)> {
    // Prefer a specific class over agent_error when several errors were reported.
    let mut found: Option<(FailureClass, Option<Duration>)> = None;
    for e in errors {
        if let AgentOutput::Error { class, retry_after, .. } = e {
            match found {
                None => found = Some((*class, *retry_after)),
                Some((FailureClass::AgentError, _)) if *class != FailureClass::AgentError => {
                    found = Some((*class, *retry_after))
                }
                Some((c, None)) if c == *class && retry_after.is_some() => found = Some((c, *retry_after)),
                _ => {}
            }
        }
    }
    if found.is_some() {
        return found;
    }
    let tail = stderr_tail.join("\n");
    if let Some(c) = from_text(&tail) {
        return Some((c, retry_after_in_text(&tail)));
    }
    match exit_code {
        Some(0) => None,
        _ => Some((FailureClass::Crashed, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classification() {
        assert_eq!(classify(Some(1), &[], &[]), Some((FailureClass::Crashed, None)));
        assert_eq!(classify(Some(0), &[], &[]), None);
        assert_eq!(
            classify(Some(1), &[], &["Error: 429 Too Many Requests".into()]),
            Some((FailureClass::RateLimited, None))
        );
        let errors = [
            AgentOutput::Error { class: FailureClass::AgentError, message: "x".into(), retry_after: None },
            AgentOutput::Error {
                class: FailureClass::RateLimited,
                message: "y".into(),
                retry_after: Some(Duration::from_secs(1)),
            },
        ];
        assert_eq!(
            classify(Some(1), &errors, &[]),
            Some((FailureClass::RateLimited, Some(Duration::from_secs(1))))
        );
    }
}
