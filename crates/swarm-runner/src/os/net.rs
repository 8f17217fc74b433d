//! URLs swarm is given (webhooks, providers' base URLs): what messages show of them, and whether
//! they stay on this machine.

/// `scheme://host[:port]` of a URL: what messages show of it.
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop `user:password@`.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// Whether `url` (with or without a scheme) names this machine: `localhost` or a loopback
/// address, which no proxy from the environment can reach.
pub fn is_loopback(url: &str) -> bool {
    let origin = origin(url);
    let host_port = origin.split_once("://").map_or(origin.as_str(), |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_leave_out_path_and_credentials() {
        assert_eq!(origin("https://hooks.slack.com/services/T0/B0/SECRET"), "https://hooks.slack.com");
        assert_eq!(origin("http://user:pw@127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080");
    }

    #[test]
    fn loopback_urls() {
        for url in [
            "http://127.0.0.1:8999/v1",
            "http://localhost/v1",
            "http://[::1]:80/v1",
            "127.0.0.2:1",
            "http://user:pw@LOCALHOST:9?x=1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://10.0.0.1:8000/v1",
            "http://localhost.evil.com/",
            "https://hooks.example:443/x",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
