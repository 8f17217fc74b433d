//! Conformance checks of model pacing: windows, cooldowns, groups, standings, races.

use super::*;

pub const FLASH: &str = "gemini/gemini-2.5-flash";
pub const FREE: &str = "openrouter/deepseek/deepseek-chat-v3-0324:free";

/// Usage-only queries of `keys`.
pub fn plain(keys: &[&str]) -> Vec<StandingQuery> {
    keys.iter().map(|k| StandingQuery::plain(*k)).collect()
}

pub fn granted(r: Result<Reservation, StoreError>) -> u64 {
    match r {
        Ok(Reservation::Granted { at_ms }) => at_ms,
        other => panic!("expected a grant, got {other:?}"),
    }
}

pub fn rpm(n: u32) -> ModelLimits {
    ModelLimits { rpm: Some(n), ..ModelLimits::default() }
}

pub fn model_rpm_is_a_sliding_minute(store: &dyn Store) {
    let limits = rpm(3);
    let ats: Vec<u64> = (0..3).map(|_| granted(store.model_reserve("ns", FLASH, 10, &limits, &[]))).collect();
    let oldest = *ats.iter().min().unwrap();
    assert_eq!(
        store.model_reserve("ns", FLASH, 10, &limits, &[]).unwrap(),
        Reservation::Full { limit: "rpm", free_at_ms: oldest + MINUTE_MS },
        "the oldest request leaves the window a minute after it was made"
    );
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!(
        (standing.minute_requests, standing.minute_tokens, standing.day_requests, standing.day_tokens),
        (3, 30, 3, 30),
        "a refused request is not recorded: {standing:?}"
    );
    assert!(standing.now_ms >= *ats.iter().max().unwrap());
    // Limits come with each call: a higher one has room again.
    granted(store.model_reserve("ns", FLASH, 10, &rpm(4), &[]));
    // Four recorded, room for two: the third oldest must leave too.
    assert_eq!(
        store.model_reserve("ns", FLASH, 10, &rpm(2), &[]).unwrap(),
        Reservation::Full { limit: "rpm", free_at_ms: ats[2] + MINUTE_MS },
        "a lowered limit waits for enough requests to leave"
    );
    assert_eq!(
        store.model_reserve("ns", FLASH, 10, &rpm(0), &[]).unwrap(),
        Reservation::Full { limit: "rpm", free_at_ms: NEVER }
    );
}

pub fn model_tpm_sums_tokens(store: &dyn Store) {
    let tpm = ModelLimits { tpm: Some(100), ..ModelLimits::default() };
    let ats: Vec<u64> =
        [10, 40, 50].iter().map(|t| granted(store.model_reserve("ns", FLASH, *t, &tpm, &[]))).collect();
    assert_eq!(
        store.model_reserve("ns", FLASH, 45, &tpm, &[]).unwrap(),
        Reservation::Full { limit: "tpm", free_at_ms: ats[1] + MINUTE_MS },
        "45 tokens fit once the first two requests (50 tokens) have left"
    );
    assert_eq!(
        store.model_reserve("ns", FLASH, 5, &tpm, &[]).unwrap(),
        Reservation::Full { limit: "tpm", free_at_ms: ats[0] + MINUTE_MS }
    );
    assert_eq!(
        store.model_reserve("ns", FREE, 101, &tpm, &[]).unwrap(),
        Reservation::Full { limit: "tpm", free_at_ms: NEVER },
        "more tokens than the window holds never fit"
    );
    granted(store.model_reserve("ns", FLASH, 0, &tpm, &[]));
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.minute_requests, standing.minute_tokens), (4, 100));
}

pub fn model_rpd_counts_the_day(store: &dyn Store) {
    let limits = ModelLimits { rpm: Some(5), rpd: Some(2), tpm: None, day: None };
    let ats: Vec<u64> = (0..2).map(|_| granted(store.model_reserve("ns", FLASH, 1, &limits, &[]))).collect();
    assert_eq!(
        store.model_reserve("ns", FLASH, 1, &limits, &[]).unwrap(),
        Reservation::Full { limit: "rpd", free_at_ms: ats.iter().min().unwrap() + DAY_MS }
    );
    // Both full: the request waits for the window that frees last.
    let both = ModelLimits { rpm: Some(2), rpd: Some(2), tpm: Some(2), day: None };
    assert!(matches!(
        store.model_reserve("ns", FLASH, 1, &both, &[]).unwrap(),
        Reservation::Full { limit: "rpd", .. }
    ));
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.day_requests, standing.day_tokens), (2, 2));
}

pub fn model_limits_none_are_unlimited(store: &dyn Store) {
    for _ in 0..50 {
        granted(store.model_reserve("ns", FLASH, 1_000_000, &ModelLimits::default(), &[]));
    }
    let standing = &store.model_standings("ns", &plain(&[FLASH])).unwrap()[0];
    assert_eq!((standing.minute_requests, standing.minute_tokens), (50, 50_000_000));
}

pub fn model_budgets_are_per_namespace_and_model(store: &dyn Store) {
    let one = rpm(1);
    let twin = format!("{FLASH}:free"); // its keys must not be FLASH's
    granted(store.model_reserve("a", FLASH, 1, &one, &[]));
    assert!(matches!(store.model_reserve("a", FLASH, 1, &one, &[]).unwrap(), Reservation::Full { .. }));
    granted(store.model_reserve("b", FLASH, 1, &one, &[]));
    granted(store.model_reserve("a", FREE, 1, &one, &[]));
    granted(store.model_reserve("a", &twin, 1, &one, &[]));
    let now = store.now_ms().unwrap();
    store.model_cool("a", FREE, &Cooldown::cooling(now + 60_000, "rate_limited")).unwrap();
    assert!(matches!(store.model_reserve("a", FREE, 1, &rpm(9), &[]).unwrap(), Reservation::Cooling(_)));
    granted(store.model_reserve("b", FREE, 1, &one, &[]));
    granted(store.model_reserve("a", "gemini/gemini-2.5-flash-lite", 1, &one, &[]));
    let standings = store.model_standings("a", &plain(&[FLASH, FREE, &twin])).unwrap();
    let summary: Vec<(&str, u64, bool)> =
        standings.iter().map(|s| (s.model.as_str(), s.minute_requests, s.cooldown.is_some())).collect();
    assert_eq!(
        summary,
        [(FLASH, 1, false), (FREE, 1, true), (twin.as_str(), 1, false)],
        "in the order asked"
    );
    assert!(store.model_standings("b", &plain(&[FREE])).unwrap()[0].cooldown.is_none());
    assert!(store.model_standings("a", &plain(&[])).unwrap().is_empty());
}

pub fn model_cooldowns_keep_the_longer_and_end(store: &dyn Store) {
    let now = store.now_ms().unwrap();
    store.model_cool("ns", FLASH, &Cooldown::cooling(now + 60_000, "quota_exhausted")).unwrap();
    store.model_cool("ns", FLASH, &Cooldown::cooling(now + 1_000, "rate_limited")).unwrap();
    let cooling = |model: &str| store.model_reserve("ns", model, 1, &ModelLimits::default(), &[]).unwrap();
    assert_eq!(
        cooling(FLASH),
        Reservation::Cooling(Cooldown::cooling(now + 60_000, "quota_exhausted")),
        "a shorter cooldown does not cut a longer one"
    );
    store.model_cool("ns", FLASH, &Cooldown::cooling(now + 120_000, "overloaded")).unwrap();
    store.model_cool("ns", FLASH, &Cooldown::cooling(now.saturating_sub(1), "over already")).unwrap();
    assert_eq!(cooling(FLASH), Reservation::Cooling(Cooldown::cooling(now + 120_000, "overloaded")));

    let short = store.now_ms().unwrap() + 1_000;
    store.model_cool("ns", FREE, &Cooldown::cooling(short, "rate_limited")).unwrap();
    assert_eq!(cooling(FREE), Reservation::Cooling(Cooldown::cooling(short, "rate_limited")));
    let standings = store.model_standings("ns", &plain(&[FLASH, FREE, "never/seen"])).unwrap();
    assert_eq!(standings[0].cooldown, Some(Cooldown::cooling(now + 120_000, "overloaded")));
    assert_eq!(standings[1].cooldown, Some(Cooldown::cooling(short, "rate_limited")));
    assert_eq!(
        standings[2],
        swarm_store::ModelStanding {
            model: "never/seen".into(),
            now_ms: standings[2].now_ms,
            ..Default::default()
        }
    );
    assert!(
        standings.iter().all(|s| s.now_ms >= now && s.now_ms == standings[0].now_ms),
        "one clock reading"
    );
    swarm_testkit::wait_until(std::time::Duration::from_secs(5), "the short cooldown to end", || {
        matches!(cooling(FREE), Reservation::Granted { .. })
    });
    let after = &store.model_standings("ns", &plain(&[FREE])).unwrap()[0];
    assert!(after.now_ms >= short);
    assert_eq!(after.cooldown, None);
    assert_eq!(after.minute_requests, 1, "refusals while cooling are not recorded");
    // "Until further notice" is as far as both backends count exactly.
    store.model_cool("ns", "forever", &Cooldown::cooling(u64::MAX, "auth")).unwrap();
    assert_eq!(cooling("forever"), Reservation::Cooling(Cooldown::cooling(1 << 53, "auth")));
    // An ended cooldown is replaced by any new one.
    let again = store.now_ms().unwrap() + 30_000;
    store.model_cool("ns", FREE, &Cooldown::cooling(again, "overloaded")).unwrap();
    assert_eq!(cooling(FREE), Reservation::Cooling(Cooldown::cooling(again, "overloaded")));
}

pub fn model_cooldowns_keep_their_kind(store: &dyn Store) {
    let now = store.now_ms().unwrap();
    let off = Cooldown::disabled(now, "auth: the provider refused the API key");
    store.model_cool("ns", FLASH, &off).unwrap();
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].cooldown, Some(off.clone()));
    assert_eq!(
        store.model_reserve("ns", FLASH, 1, &ModelLimits::default(), &[]).unwrap(),
        Reservation::Cooling(off),
        "a reservation says the kind too"
    );
}

pub fn model_day_window_counts_the_providers_day(store: &dyn Store) {
    // Two requests of the rolling day, then a provider day that began after them.
    granted(store.model_reserve("ns", FLASH, 1, &ModelLimits::default(), &[]));
    granted(store.model_reserve("ns", FLASH, 1, &ModelLimits::default(), &[]));
    let now = store.now_ms().unwrap();
    let day = DayWindow { start_ms: now + 1, end_ms: now + 3_600_000 };
    let limits = ModelLimits { rpd: Some(2), day: Some(day), ..ModelLimits::default() };
    // Wait for the store's clock to enter the new day.
    swarm_testkit::wait_until(std::time::Duration::from_secs(5), "the new day", || {
        store.now_ms().unwrap() > now + 1
    });
    granted(store.model_reserve("ns", FLASH, 1, &limits, &[]));
    granted(store.model_reserve("ns", FLASH, 1, &limits, &[]));
    assert_eq!(
        store.model_reserve("ns", FLASH, 1, &limits, &[]).unwrap(),
        Reservation::Full { limit: "rpd", free_at_ms: day.end_ms },
        "a provider's day frees at its end, all at once"
    );
    let q = StandingQuery { key: FLASH.into(), limits };
    let s = &store.model_standings("ns", &[q]).unwrap()[0];
    assert_eq!((s.day_requests, s.frees_at_ms), (2, Some(day.end_ms)));
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].day_requests, 4, "the rolling day");
}

pub fn model_groups_share_one_budget(store: &dyn Store) {
    let group = Bucket { key: "group:free".into(), limits: rpm(2) };
    granted(store.model_reserve("ns", FLASH, 1, &rpm(5), std::slice::from_ref(&group)));
    granted(store.model_reserve("ns", FREE, 1, &rpm(5), std::slice::from_ref(&group)));
    let third = store.model_reserve("ns", "other/model", 1, &rpm(5), std::slice::from_ref(&group)).unwrap();
    assert!(
        matches!(third, Reservation::Full { limit: "rpm", .. }),
        "the group's minute is spent: {third:?}"
    );
    // Nothing of the refused request was recorded anywhere; the models' own windows have room.
    let s = store.model_standings("ns", &plain(&[FLASH, FREE, "other/model", "group:free"])).unwrap();
    let counts: Vec<u64> = s.iter().map(|s| s.minute_requests).collect();
    assert_eq!(counts, [1, 1, 0, 2]);
    granted(store.model_reserve("ns", FLASH, 1, &rpm(5), &[]));
}

pub fn model_standings_say_when_a_full_window_frees(store: &dyn Store) {
    let first = granted(store.model_reserve("ns", FLASH, 1, &rpm(2), &[]));
    granted(store.model_reserve("ns", FLASH, 1, &rpm(2), &[]));
    let q = StandingQuery { key: FLASH.into(), limits: rpm(2) };
    let s = &store.model_standings("ns", &[q]).unwrap()[0];
    assert_eq!(s.frees_at_ms, Some(first + MINUTE_MS), "when the oldest request leaves the minute");
    let roomy = StandingQuery { key: FLASH.into(), limits: rpm(3) };
    assert_eq!(store.model_standings("ns", &[roomy]).unwrap()[0].frees_at_ms, None);
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].frees_at_ms, None);
    let never = StandingQuery { key: FLASH.into(), limits: rpm(0) };
    assert_eq!(store.model_standings("ns", &[never]).unwrap()[0].frees_at_ms, Some(NEVER));
}

pub fn model_learned_limits_are_kept_and_merged(store: &dyn Store) {
    assert_eq!(store.model_standings("ns", &plain(&[FLASH])).unwrap()[0].learned, None);
    let day = Learned { rpm: None, rpd: Some(20), source: "429: limit: 20 per day".into() };
    store.model_learn("ns", FLASH, &day).unwrap();
    let minute = Learned { rpm: Some(10), rpd: None, source: "429: limit: 10 per minute".into() };
    store.model_learn("ns", FLASH, &minute).unwrap();
    let learned = store.model_standings("ns", &plain(&[FLASH])).unwrap().remove(0).learned;
    assert_eq!(learned, Some(Learned { rpm: Some(10), rpd: Some(20), source: minute.source.clone() }));
    assert_eq!(store.model_standings("other", &plain(&[FLASH])).unwrap()[0].learned, None, "per namespace");
}

pub fn now_ms_is_the_wall_clock(store: &dyn Store) {
    let wall =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let (before, now, after) = (wall(), store.now_ms().unwrap(), wall());
    assert!(now + 5_000 >= before && now <= after + 5_000, "store {now}, system {before}..{after}");
}

const RACE_RPM: u32 = 25;
const RACE_EACH: usize = 20;

/// Reservations of one racer: how many were granted (every refusal must be the rpm window).
fn race(store: &dyn Store) -> usize {
    (0..RACE_EACH)
        .filter(|_| match store.model_reserve("race", FLASH, 1, &rpm(RACE_RPM), &[]).unwrap() {
            Reservation::Granted { .. } => true,
            Reservation::Full { limit: "rpm", .. } => false,
            other => panic!("unexpected {other:?}"),
        })
        .count()
}

pub fn racing_reservers_share_one_budget(reopen: &Reopen) {
    const THREADS: usize = 8;
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let racers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (mine, barrier) = (reopen(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                race(&*mine)
            })
        })
        .collect();
    let granted: usize = racers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(granted, RACE_RPM as usize, "exactly the budget is granted");
    let standing = &reopen().model_standings("race", &plain(&[FLASH])).unwrap()[0];
    assert_eq!(standing.minute_requests, u64::from(RACE_RPM));
}

/// Child processes of a test, killed if the test ends before they do.
struct Racers(Vec<std::process::Child>);
impl Drop for Racers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two processes (this test binary again, running only `model_race_child`) race on `store`.
pub fn racing_processes_share_one_budget(store: &dyn Store) {
    const PROCESSES: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let mut racers = Racers(
        (0..PROCESSES)
            .map(|me| {
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "models::model_race_child", "--test-threads=1", "--quiet"])
                    .env("SWARM_RACE_STORE", store.describe())
                    .env("SWARM_RACE_DIR", dir.path())
                    .env("SWARM_RACE_ME", me.to_string())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let ready = |me: usize| dir.path().join(format!("ready-{me}")).exists();
    swarm_testkit::wait_until(std::time::Duration::from_secs(60), "both racers to be ready", || {
        (0..PROCESSES).all(ready)
    });
    std::fs::write(dir.path().join("go"), "").unwrap();
    for c in &mut racers.0 {
        assert!(c.wait().unwrap().success(), "a racer failed");
    }
    let granted: usize = (0..PROCESSES)
        .map(|me| {
            std::fs::read_to_string(dir.path().join(format!("granted-{me}")))
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(granted, RACE_RPM as usize, "exactly the budget is granted across processes");
    assert_eq!(
        store.model_standings("race", &plain(&[FLASH])).unwrap()[0].minute_requests,
        u64::from(RACE_RPM)
    );
}

/// Not a check of its own: the body of a racing process that `racing_processes_share_one_budget`
/// starts (this binary again with `SWARM_RACE_STORE` set); without it, it does nothing.
#[test]
fn model_race_child() {
    let Ok(address) = std::env::var("SWARM_RACE_STORE") else { return };
    let dir = std::path::PathBuf::from(std::env::var("SWARM_RACE_DIR").unwrap());
    let me = std::env::var("SWARM_RACE_ME").unwrap();
    let address = swarm_store::Address::parse(&address, std::path::Path::new("/")).unwrap();
    let store = swarm_store::open(&address, swarm_store::Options::default()).unwrap();
    store.now_ms().unwrap(); // connected
    std::fs::write(dir.join(format!("ready-{me}")), "").unwrap();
    swarm_testkit::wait_until(std::time::Duration::from_secs(60), "the go", || dir.join("go").exists());
    std::fs::write(dir.join(format!("granted-{me}")), race(&*store).to_string()).unwrap();
}
