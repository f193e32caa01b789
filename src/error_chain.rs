//! An error and its causes on one line, for logs, conditions and events: every part of the
//! operator describes a failure the same way. Errors here never carry a credential (see the
//! README's security model), so the chain is safe to record.

/// `error` and each of its causes, joined with `": "`; a cause whose text is empty or
/// already in the message (kube and reqwest errors often repeat their source) is left out.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Link {
        text: &'static str,
        #[source]
        cause: Option<Box<Link>>,
    }

    fn chain_of(texts: &[&'static str]) -> Link {
        texts
            .iter()
            .rev()
            .fold(None, |cause, text| {
                Some(Link {
                    text,
                    cause: cause.map(Box::new),
                })
            })
            .expect("at least one link")
    }

    #[test]
    fn causes_follow_the_error_and_repeats_and_blanks_are_left_out() {
        assert_eq!(
            error_chain(&chain_of(&["failed to sync", "connection refused"])),
            "failed to sync: connection refused"
        );
        assert_eq!(
            error_chain(&chain_of(&[
                "read failed: timed out",
                "timed out",
                "",
                "os error"
            ])),
            "read failed: timed out: os error"
        );
    }
}
