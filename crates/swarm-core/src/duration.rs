//! Human durations as written in plans (`45s`, `20m`, `1h30m`, `500ms`) and their serde form.

use std::time::Duration;

/// Parses `1h30m`, `20m`, `45s`, `500ms`, `2d`. Units must appear largest first, each at most once.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let units: [(&str, u64); 5] =
        [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];
    let mut total: u64 = 0;
    let mut rest = s;
    let mut last_rank = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration `{s}`: expected a number, e.g. `45s`, `20m`, `1h30m`"));
        }
        let n: u64 =
            rest[..digits].parse().map_err(|_| format!("invalid duration `{s}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(rank) = units.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("invalid duration `{s}`: missing unit (use ms, s, m, h or d)")
            } else {
                format!("invalid duration `{s}`: unknown unit `{unit}` (use ms, s, m, h or d)")
            });
        };
        if last_rank.is_some_and(|r| rank <= r) {
            return Err(format!("invalid duration `{s}`: units must go from largest to smallest, each once"));
        }
        last_rank = Some(rank);
        total = n
            .checked_mul(units[rank].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration `{s}`: too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way plans write it (`1h30m`, `45s`, `1m5s`, `250ms`).
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// serde adapter for `Option<Duration>` written as `"20m"`.
pub mod opt_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        v.map(|s| super::parse(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_contract_examples() {
        assert_eq!(parse("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse("20m").unwrap(), Duration::from_secs(1200));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in ["", "abc", "10", "10x", "5m1h", "1h1h", "m"] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in ["45s", "20m", "1h30m", "250ms", "1m5s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
