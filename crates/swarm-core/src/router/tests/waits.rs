//! Waiting for the model that frees first, within `max_wait`; `models_exhausted` past it.

use super::*;

#[test]
fn waits_for_the_model_that_frees_first_within_max_wait() {
    let c = three();
    let s = vec![cooling(NOW + 40_000), cooling(NOW + 20_000), cooling(NOW + 30_000)];
    assert_eq!(route(&c, &s, &req()), Route::Wait { until_ms: NOW + 20_000, model: 1 });
    // Exactly max_wait away still waits; one millisecond more does not.
    let s = vec![cooling(NOW + 60_000), cooling(NOW + 90_000), cooling(NOW + 90_000)];
    assert_eq!(route(&c, &s, &req()), Route::Wait { until_ms: NOW + 60_000, model: 0 });
    let s = vec![cooling(NOW + 60_001), cooling(NOW + 90_000), cooling(NOW + 90_000)];
    let (why, frees) = exhausted(route(&c, &s, &req()));
    assert_eq!(frees, Some(NOW + 60_001));
    assert_eq!(
        why,
        "every allowed model is cooling down or at its limit; the first frees up at 15:07:41 UTC (in 1m1s, past max_wait 1m)"
    );
    // max_wait 0: never wait.
    let s = vec![cooling(NOW + 1), cooling(NOW + 1), cooling(NOW + 1)];
    assert_eq!(exhausted(route(&c, &s, &RouteRequest { max_wait_ms: 0, ..req() })).1, Some(NOW + 1));
}

#[test]
fn a_full_minute_window_is_waited_for_like_a_cooldown() {
    let mut c = three();
    for m in &mut c.models {
        m.rpm = Some(5);
        m.tpm = Some(100_000);
    }
    let s = vec![
        Standing { minute_requests: 5, minute_frees_at_ms: Some(NOW + 12_000), ..Standing::default() },
        Standing { minute_tokens: 99_500, minute_frees_at_ms: Some(NOW + 8_000), ..Standing::default() },
        cooling(NOW + 50_000),
    ];
    assert_eq!(route(&c, &s, &req()), Route::Wait { until_ms: NOW + 8_000, model: 1 });
    // Cooling and full: free once both have passed.
    let s = vec![
        Standing { minute_requests: 5, minute_frees_at_ms: Some(NOW + 12_000), ..cooling(NOW + 30_000) },
        Standing { minute_requests: 5, ..cooling(NOW + 2_000) },
        disabled(),
    ];
    assert_eq!(route(&c, &s, &req()), Route::Wait { until_ms: NOW + 30_000, model: 0 });
}

#[test]
fn nothing_to_wait_for_is_exhausted_at_once() {
    let mut c = three();
    for m in &mut c.models {
        m.rpd = Some(1);
        m.tpm = Some(500);
    }
    // Daily limits, and a request larger than a tpm, don't pass within a wait.
    let s = vec![
        Standing { day_requests: 1, ..Standing::default() },
        Standing { day_requests: 1, ..cooling(NOW + 1_000) },
        Standing::default(),
    ];
    let (why, frees) = exhausted(route(&c, &s, &req()));
    assert_eq!(frees, None);
    assert_eq!(
        why,
        "no model of layer 1 or later can take this request: 1 at its per-minute limit, 2 at their daily limit"
    );
}

#[test]
fn exhausted_names_every_kind_of_obstacle() {
    let mut c =
        catalog(&[("p/a", 1), ("p/b", 1), ("p/c", 2), ("p/d", 2), ("p/e", 3), ("p/f", 3), ("p/g", 4)]);
    c.models[1].rpm = Some(1);
    c.models[2].rpd = Some(1);
    c.models[4].paid = true;
    c.models[5].context = Some(100);
    let s = vec![
        cooling(NOW + 3_600_000),
        Standing { minute_requests: 1, ..Standing::default() },
        Standing { day_requests: 1, ..Standing::default() },
        disabled(),
        Standing::default(),
        Standing::default(),
        Standing::default(),
    ];
    let r = RouteRequest { tried: vec![6], max_wait_ms: 30_000, ..req() };
    let (why, frees) = exhausted(route(&c, &s, &r));
    assert_eq!(frees, Some(NOW + 60_000));
    assert_eq!(
        why,
        "no model of layer 1 or later can take this request: 1 cooling down, 1 at its per-minute limit, \
         1 at its daily limit, 1 disabled for this run, 1 paid while allow_paid is off, \
         1 with too small a context window, 1 already failed this request (the request is ~1000 tokens); \
         the first frees up at 15:07:40 UTC (in 1m, past max_wait 30s)"
    );
    // Within max_wait, the same standings wait for the per-minute window.
    assert_eq!(
        route(&c, &s, &RouteRequest { max_wait_ms: 60_000, ..r }),
        Route::Wait { until_ms: NOW + 60_000, model: 1 }
    );
}

#[test]
fn only_paid_models_left() {
    const ONLY_PAID: &str =
        "only paid models are left and allow_paid is off (set `allow_paid = true` in [models] or run with --allow-paid)";
    let mut c = three();
    c.models[1].paid = true;
    c.models[2].paid = true;
    // Something else in the way too: each kind is named.
    let s = vec![disabled(), Standing::default(), Standing::default()];
    let (why, _) = exhausted(route(&c, &s, &req()));
    assert_eq!(
        why,
        "no model of layer 1 or later can take this request: 1 disabled for this run, 2 paid while allow_paid is off"
    );
    // From the task's tier on, only paid models: said plainly.
    assert_eq!(
        exhausted(route(&c, &idle(3), &RouteRequest { start_layer: 2, ..req() })),
        (ONLY_PAID.into(), None)
    );
    c.models[0].paid = true;
    assert_eq!(exhausted(route(&c, &idle(3), &req())), (ONLY_PAID.into(), None));
}

#[test]
fn an_empty_hierarchy_is_exhausted() {
    let (why, frees) = exhausted(route(&Catalog::default(), &[], &req()));
    assert_eq!((why.as_str(), frees), ("no model hierarchy is configured ([models] layers is empty)", None));
}

#[test]
fn a_free_time_on_another_day_names_the_date() {
    let c = catalog(&[("p/a", 1)]);
    let midnight = 1_750_032_000_000; // 2025-06-16T00:00:00Z
    let (why, frees) = exhausted(route(&c, &[cooling(midnight)], &req()));
    assert_eq!(frees, Some(midnight));
    assert!(
        why.ends_with("the first frees up at 2025-06-16 00:00:00 UTC (in 8h53m20s, past max_wait 1m)"),
        "{why}"
    );
}

#[test]
fn skip_names_are_snake_case() {
    assert_eq!(Skip::OverRpm { frees_at_ms: None }.to_string(), "over_rpm");
    assert_eq!(Skip::ContextTooSmall.as_str(), "context_too_small");
}
