//! Turning what Redis answers into swarm's store errors, and keeping secrets out of them.

use crate::address::mask;
use crate::store::StoreError;

pub(super) fn fenced(e: StoreError, run_id: &str) -> StoreError {
    if let StoreError::Backend { message, .. } = &e {
        // The client shows a script error as `"CONFLICT": detail`; take the words after the code.
        if let Some(rest) = message.split("CONFLICT").nth(1) {
            let mut words = rest.trim_start_matches(['"', ':', ' ']).split_whitespace();
            let (task, expected, found) = (words.next(), words.next(), words.next());
            return StoreError::Conflict {
                run_id: run_id.into(),
                task: task.unwrap_or("?").into(),
                expected: expected.unwrap_or("?").into(),
                found: found
                    .unwrap_or("?")
                    .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '_')
                    .into(),
            };
        }
    }
    match &e {
        StoreError::Backend { message, .. } if message.contains("FENCED") => StoreError::Fenced {
            run_id: run_id.into(),
            holder: message
                .split("FENCED")
                .nth(1)
                .unwrap_or("")
                .trim_start_matches(['"', ':', ' '])
                .trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_string(),
        },
        _ => e,
    }
}

/// A refused login (`NOAUTH`, `WRONGPASS`) or a command the ACL user may not run (`NOPERM`).
pub(super) fn is_auth_error(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || e.code().is_some_and(|c| matches!(c, "NOAUTH" | "WRONGPASS" | "NOPERM"))
        || ["NOAUTH", "WRONGPASS", "NOPERM"].iter().any(|code| e.to_string().contains(code))
}

/// `redis://host:6379?password=pw` (also `pass=`, and `user=`/`username=`), a form other
/// clients accept, as the `redis://user:pw@host:6379` the client library understands. A URL
/// with credentials before the host is left as it is.
pub(super) fn password_from_query(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.into() };
    let Some((before, query)) = rest.split_once('?') else { return url.into() };
    let authority = before.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return url.into();
    }
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, format!("#{f}")),
        None => (query, String::new()),
    };
    let (mut user, mut pass, mut kept) = (None, None, Vec::new());
    for param in query.split('&') {
        match param.split_once('=') {
            Some(("password" | "pass", v)) => pass = Some(v),
            Some(("user" | "username", v)) => user = Some(v),
            _ => kept.push(param),
        }
    }
    let Some(pass) = pass else { return url.into() };
    let query = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
    format!("{scheme}://{}:{pass}@{before}{query}{fragment}", user.unwrap_or(""))
}

/// Redis error texts may echo the URL; never let a password through.
pub(super) fn scrub(message: &str, url: &str) -> String {
    message.replace(url, &mask(url))
}

#[cfg(test)]
mod tests {
    use super::password_from_query;

    #[test]
    fn a_password_in_the_query_moves_before_the_host() {
        assert_eq!(password_from_query("redis://h:1?password=pw"), "redis://:pw@h:1");
        assert_eq!(
            password_from_query("redis://h:1/2?user=bob&pass=pw&protocol=resp3"),
            "redis://bob:pw@h:1/2?protocol=resp3"
        );
        assert_eq!(password_from_query("rediss://h/?password=pw#x"), "rediss://:pw@h/#x");
        for unchanged in ["redis://h:1", "redis://h:1?protocol=resp3", "redis://a:b@h:1?password=pw"] {
            assert_eq!(password_from_query(unchanged), unchanged);
        }
    }
}
