//! A provider's day: daily quotas (rpd) count from the provider's midnight and reset at the
//! next one, in the provider's own time zone (Gemini counts in Pacific time, OpenRouter in
//! UTC). Daylight saving time makes some days 23 or 25 hours long; chrono-tz knows which.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Where a provider's day begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayReset {
    pub tz: Tz,
}

impl Default for DayReset {
    fn default() -> DayReset {
        DayReset { tz: Tz::UTC }
    }
}

impl DayReset {
    /// An IANA zone name (`America/Los_Angeles`, `UTC`).
    pub fn parse(name: &str) -> Option<DayReset> {
        name.parse::<Tz>().ok().map(|tz| DayReset { tz })
    }

    pub fn name(self) -> &'static str {
        self.tz.name()
    }

    /// The provider's day that holds `now_ms`: its first and its last-plus-one millisecond.
    pub fn window(self, now_ms: u64) -> (u64, u64) {
        let now = ms_to_utc(now_ms).with_timezone(&self.tz);
        let today = now.date_naive();
        let start = self.midnight(today);
        let end = today.checked_add_days(Days::new(1)).map_or(u64::MAX, |d| self.midnight(d));
        (start, end)
    }

    /// When the provider's day that holds `now_ms` ends (its next midnight).
    pub fn next_reset(self, now_ms: u64) -> u64 {
        self.window(now_ms).1
    }

    /// The first moment of `day` in the zone (midnight, or the first minute after it on the rare
    /// day a DST change skips midnight itself).
    fn midnight(self, day: chrono::NaiveDate) -> u64 {
        let mut t = day.and_time(NaiveTime::MIN);
        for _ in 0..24 * 4 {
            if let Some(at) = self.tz.from_local_datetime(&t).earliest() {
                return at.with_timezone(&Utc).timestamp_millis().max(0) as u64;
            }
            t += chrono::Duration::minutes(15);
        }
        day.and_time(NaiveTime::MIN).and_utc().timestamp_millis().max(0) as u64
    }
}

fn ms_to_utc(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> u64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis() as u64
    }

    #[test]
    fn utc_days_are_utc_midnights() {
        let d = DayReset::default();
        assert_eq!(
            d.window(at("2026-12-05T15:00:00Z")),
            (at("2026-12-05T00:00:00Z"), at("2026-12-06T00:00:00Z"))
        );
        assert_eq!(
            d.next_reset(at("2026-12-05T00:00:00Z")),
            at("2026-12-06T00:00:00Z"),
            "midnight starts a day"
        );
    }

    #[test]
    fn pacific_days_reset_at_pacific_midnight_whatever_utc_says() {
        let la = DayReset::parse("America/Los_Angeles").unwrap();
        // 05:00 UTC on the 5th is still the 4th in Los Angeles (21:00 PST).
        let now = at("2026-12-05T05:00:00Z");
        assert_eq!(la.window(now), (at("2026-12-04T08:00:00Z"), at("2026-12-05T08:00:00Z")));
        // Summer time: UTC-7.
        assert_eq!(la.next_reset(at("2026-07-01T12:00:00Z")), at("2026-07-02T07:00:00Z"));
    }

    #[test]
    fn days_around_daylight_saving_changes_are_23_and_25_hours() {
        let la = DayReset::parse("America/Los_Angeles").unwrap();
        // 2026-03-08: clocks go forward at 02:00 → a 23-hour day.
        let (start, end) = la.window(at("2026-03-08T12:00:00Z"));
        assert_eq!((start, end), (at("2026-03-08T08:00:00Z"), at("2026-03-09T07:00:00Z")));
        assert_eq!(end - start, 23 * 3_600_000);
        // 2026-11-01: clocks go back at 02:00 → a 25-hour day.
        let (start, end) = la.window(at("2026-11-01T12:00:00Z"));
        assert_eq!((start, end), (at("2026-11-01T07:00:00Z"), at("2026-11-02T08:00:00Z")));
        assert_eq!(end - start, 25 * 3_600_000);
    }

    #[test]
    fn a_zone_whose_midnight_is_skipped_starts_its_day_after_the_gap() {
        // Santiago moves clocks forward at midnight: 2026-09-06 has no 00:00.
        let scl = DayReset::parse("America/Santiago").unwrap();
        let (start, _) = scl.window(at("2026-09-06T12:00:00Z"));
        assert_eq!(start, at("2026-09-06T04:00:00Z"), "01:00 local (UTC-3) is the day's first moment");
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(DayReset::parse("Mars/Olympus").is_none());
        assert_eq!(DayReset::parse("UTC").unwrap().name(), "UTC");
    }
}
