//! Which model a request gets: layers in order from the task's tier, every reason to skip one,
//! the budget.

use super::*;

// ---------------------------------------------------------------------------------------------
// Ordering and tiers

#[test]
fn takes_the_first_model_of_layer_one() {
    assert_eq!(route(&three(), &idle(3), &req()), used(0, &[]));
    // Standings left out are idle.
    assert_eq!(route(&three(), &[], &req()), used(0, &[]));
}

#[test]
fn goes_down_a_layer_in_order_then_to_the_next_layer() {
    let c = three();
    let s = vec![disabled(), Standing::default(), Standing::default()];
    assert_eq!(route(&c, &s, &req()), used(1, &[(0, Skip::Disabled)]));
    let s = vec![disabled(), disabled(), Standing::default()];
    assert_eq!(route(&c, &s, &req()), used(2, &[(0, Skip::Disabled), (1, Skip::Disabled)]));
    // A later model of the same layer is never preferred over an earlier usable one.
    let s = vec![Standing::default(), disabled(), Standing::default()];
    assert_eq!(route(&c, &s, &req()), used(0, &[]));
}

#[test]
fn starts_at_the_tasks_tier() {
    let c = catalog(&[("p/a", 1), ("p/b", 2), ("p/c", 2), ("p/d", 4)]);
    let r = RouteRequest { start_layer: 2, ..req() };
    assert_eq!(route(&c, &idle(4), &r), used(1, &[(0, Skip::BelowTier)]));
    let r = RouteRequest { start_layer: 3, ..req() };
    assert_eq!(
        route(&c, &idle(4), &r),
        used(3, &[(0, Skip::BelowTier), (1, Skip::BelowTier), (2, Skip::BelowTier)])
    );
    // Below the tier is never a fallback, even when everything else is out.
    let s = vec![Standing::default(), Standing::default(), Standing::default(), disabled()];
    let (why, frees) = exhausted(route(&c, &s, &r));
    assert_eq!(frees, None);
    assert!(why.contains("1 disabled for this run"), "{why}");
    let r = RouteRequest { start_layer: 5, ..req() };
    let (why, _) = exhausted(route(&c, &idle(4), &r));
    assert_eq!(why, "no model is in layer 5 or later (the task's tier; the hierarchy has 4 layers)");
}

// ---------------------------------------------------------------------------------------------
// Every skip

#[test]
fn skips_a_cooling_model_until_its_cooldown_ends() {
    let c = three();
    let s = vec![cooling(NOW + 5_000), Standing::default(), Standing::default()];
    assert_eq!(route(&c, &s, &req()), used(1, &[(0, Skip::Cooling { until_ms: NOW + 5_000 })]));
    // A cooldown that has ended is no cooldown.
    let s = vec![cooling(NOW), Standing::default(), Standing::default()];
    assert_eq!(route(&c, &s, &req()), used(0, &[]));
}

#[test]
fn skips_a_disabled_model() {
    let s = vec![disabled(), Standing::default(), Standing::default()];
    assert_eq!(route(&three(), &s, &req()), used(1, &[(0, Skip::Disabled)]));
}

#[test]
fn a_model_disabled_by_another_run_is_not_waited_for() {
    let mut s = idle(3);
    s[0].cooldown = Some(Cooldown::disabled(NOW - 1_000, "auth: the provider refused the API key"));
    assert_eq!(route(&three(), &s, &req()), used(1, &[(0, Skip::Disabled)]));
    // Once its time is over it is a model like any other.
    s[0].cooldown = Some(Cooldown::disabled(NOW - DISABLED_FOR_MS - 1, "auth"));
    assert_eq!(route(&three(), &s, &req()), used(0, &[]));
}

fn attempt() -> AttemptRequest {
    AttemptRequest {
        start_layer: 1,
        now_ms: NOW,
        allow_paid: false,
        failed: vec![],
        max_wait_ms: 60_000,
        spent_usd: 0.0,
        budget_usd: None,
        spent_tokens: 0,
        budget_tokens: None,
    }
}

#[test]
fn an_attempt_honours_shared_cooldowns_limits_and_its_failures() {
    let mut c = three();
    c.models[1].rpd = Some(20);
    let mut s = idle(3);
    s[0] = cooling(NOW + 30_000);
    s[1].day_requests = 20;
    assert_eq!(
        route_attempt(&c, &s, &attempt()),
        used(2, &[(0, Skip::Cooling { until_ms: NOW + 30_000 }), (1, Skip::OverRpd)])
    );
    // The model an earlier attempt failed on is left out, whatever its standing.
    let s = idle(3);
    let req = AttemptRequest { failed: vec![0], ..attempt() };
    assert_eq!(route_attempt(&c, &s, &req), used(1, &[(0, Skip::Tried)]));
    // Everything cooling: wait for the first, within max_wait.
    let s = vec![cooling(NOW + 5_000), cooling(NOW + 2_000), cooling(NOW + 9_000)];
    assert_eq!(route_attempt(&c, &s, &attempt()), Route::Wait { until_ms: NOW + 2_000, model: 1 });
    // A spent budget stops an attempt as it stops a request.
    let req = AttemptRequest { spent_usd: 3.0, budget_usd: Some(3.0), ..attempt() };
    assert!(exhausted(route_attempt(&c, &idle(3), &req)).0.contains("budget of $3.00 is spent"));
}

#[test]
fn a_model_spent_for_the_day_frees_at_its_providers_midnight() {
    let mut c = three();
    c.models[0].rpd = Some(20);
    let reset = NOW + 5 * 3_600_000;
    let mut s = idle(3);
    s[0].day_requests = 20;
    s[0].day_resets_at_ms = Some(reset);
    assert_eq!(route(&c, &s, &req()), used(1, &[(0, Skip::OverRpd)]));
    // Nothing else left: exhausted, naming when the day resets.
    let only = catalog(&[("p/a", 1)]);
    let mut one = vec![s[0].clone()];
    one[0].day_resets_at_ms = Some(reset);
    let mut c1 = only.clone();
    c1.models[0].rpd = Some(20);
    let (why, frees) = exhausted(route(&c1, &one, &req()));
    assert_eq!(frees, Some(reset));
    assert!(why.contains("daily limit") && why.contains("frees up at"), "{why}");
}

#[test]
fn a_limit_the_provider_said_wins_over_the_declared_one() {
    let mut c = three();
    c.models[0].rpd = Some(250); // what the docs once said
    let mut s = idle(3);
    s[0].day_requests = 20;
    assert_eq!(route(&c, &s, &req()), used(0, &[]), "250 declared: room left");
    s[0].learned_rpd = Some(20); // the provider's 429 said `limit: 20`
    assert_eq!(route(&c, &s, &req()), used(1, &[(0, Skip::OverRpd)]));
    // `limit: 0`: no free tier at all, whatever was declared.
    let mut s = idle(3);
    s[0].learned_rpd = Some(0);
    assert_eq!(route(&c, &s, &req()), used(1, &[(0, Skip::OverRpd)]));
}

#[test]
fn a_full_group_blocks_every_model_in_it_until_it_frees() {
    let c = three();
    let mut s = idle(3);
    let full = GroupFull { group: "openrouter-free".into(), per_day: false, frees_at_ms: Some(NOW + 4_000) };
    s[0].group_full = Some(full.clone());
    s[1].group_full = Some(full.clone());
    assert_eq!(
        route(&c, &s, &req()),
        used(2, &[(0, Skip::OverGroup { per_day: false }), (1, Skip::OverGroup { per_day: false })])
    );
    // Everything in the group: wait for the group's slot.
    let c2 = catalog(&[("p/a", 1), ("p/b", 1)]);
    let s2 = vec![s[0].clone(), s[1].clone()];
    assert_eq!(route(&c2, &s2, &req()), Route::Wait { until_ms: NOW + 4_000, model: 0 });
}

#[test]
fn a_model_at_its_rpm_is_full() {
    let mut c = three();
    c.models[0].rpm = Some(10);
    let at =
        |n, frees| vec![Standing { minute_requests: n, minute_frees_at_ms: frees, ..Standing::default() }];
    assert_eq!(route(&c, &at(9, None), &req()), used(0, &[]));
    // Unknown free time: a minute from now at the latest.
    assert_eq!(
        route(&c, &at(10, None), &req()),
        used(1, &[(0, Skip::OverRpm { frees_at_ms: Some(NOW + 60_000) })])
    );
    assert_eq!(
        route(&c, &at(11, Some(NOW + 7_000)), &req()),
        used(1, &[(0, Skip::OverRpm { frees_at_ms: Some(NOW + 7_000) })])
    );
    // A free time already past: the picture is a moment old and the slot has freed since (the
    // reservation checks for sure). Not a minute's wait: that left slots idle while requests
    // waited.
    assert_eq!(route(&c, &at(10, Some(NOW - 1)), &req()), used(0, &[]));
    assert_eq!(route(&c, &at(10, Some(NOW)), &req()), used(0, &[]));
}

#[test]
fn a_model_at_its_rpd_is_out_for_the_day() {
    let mut c = three();
    c.models[0].rpd = Some(250);
    let at = |n| vec![Standing { day_requests: n, ..Standing::default() }];
    assert_eq!(route(&c, &at(249), &req()), used(0, &[]));
    assert_eq!(route(&c, &at(250), &req()), used(1, &[(0, Skip::OverRpd)]));
}

#[test]
fn a_request_must_fit_the_models_tpm() {
    let mut c = three();
    c.models[0].tpm = Some(10_000);
    let at = |tokens| vec![Standing { minute_tokens: tokens, ..Standing::default() }];
    assert_eq!(route(&c, &at(9_000), &req()), used(0, &[]), "exactly full after it is fine");
    assert_eq!(route(&c, &at(9_001), &req()), used(1, &[(0, Skip::OverTpm)]));
    let big = RouteRequest { est_tokens: 10_001, ..req() };
    assert_eq!(route(&c, &at(0), &big), used(1, &[(0, Skip::OverTpm)]));
}

#[test]
fn paid_models_only_with_allow_paid() {
    let mut c = three();
    c.models[0].paid = true;
    assert_eq!(route(&c, &idle(3), &req()), used(1, &[(0, Skip::Paid)]));
    assert_eq!(route(&c, &idle(3), &RouteRequest { allow_paid: true, ..req() }), used(0, &[]));
}

#[test]
fn the_request_must_fit_the_context_window() {
    let mut c = three();
    c.models[0].context = Some(8_000);
    c.models[1].context = Some(32_000);
    let r = |est, larger| RouteRequest { est_tokens: est, needs_larger_than: larger, ..req() };
    assert_eq!(route(&c, &idle(3), &r(8_000, None)), used(0, &[]));
    assert_eq!(route(&c, &idle(3), &r(8_001, None)), used(1, &[(0, Skip::ContextTooSmall)]));
    // After context_too_long on a 32k model: only larger windows (an unknown one may be).
    assert_eq!(
        route(&c, &idle(3), &r(1_000, Some(32_000))),
        used(2, &[(0, Skip::ContextTooSmall), (1, Skip::ContextTooSmall)])
    );
    assert_eq!(route(&c, &idle(3), &r(1_000, Some(31_999))), used(1, &[(0, Skip::ContextTooSmall)]));
}

#[test]
fn a_model_that_failed_this_request_is_not_tried_again() {
    let r = RouteRequest { tried: vec![0, 2], ..req() };
    assert_eq!(route(&three(), &idle(3), &r), used(1, &[(0, Skip::Tried)]));
    let r = RouteRequest { tried: vec![0, 1, 2], ..req() };
    let (why, frees) = exhausted(route(&three(), &idle(3), &r));
    assert_eq!(frees, None);
    assert_eq!(why, "no model of layer 1 or later can take this request: 3 already failed this request");
}

#[test]
fn the_first_reason_is_the_one_reported() {
    let mut c = three();
    c.models[0].paid = true;
    c.models[0].rpm = Some(1);
    let s = vec![Standing { minute_requests: 5, ..disabled() }, cooling(NOW + 1), Standing::default()];
    let r = RouteRequest { tried: vec![0], ..req() };
    assert_eq!(route(&c, &s, &r), used(2, &[(0, Skip::Tried), (1, Skip::Cooling { until_ms: NOW + 1 })]));
    assert_eq!(
        route(&c, &s, &req()),
        used(2, &[(0, Skip::Disabled), (1, Skip::Cooling { until_ms: NOW + 1 })])
    );
}

// ---------------------------------------------------------------------------------------------
// Budget

#[test]
fn a_spent_budget_stops_every_request() {
    let r = RouteRequest { spent_usd: 20.0, budget_usd: Some(20.0), ..req() };
    assert_eq!(
        exhausted(route(&three(), &idle(3), &r)),
        ("the run's budget of $20.00 is spent ($20.00 used)".into(), None)
    );
    let r = RouteRequest { spent_usd: 19.99, budget_usd: Some(20.0), ..req() };
    assert_eq!(route(&three(), &idle(3), &r), used(0, &[]));
    let r = RouteRequest { spent_tokens: 2_000_001, budget_tokens: Some(2_000_000), ..req() };
    assert_eq!(
        exhausted(route(&three(), &idle(3), &r)),
        ("the run's budget of 2000000 tokens is spent (2000001 used)".into(), None)
    );
    let r = RouteRequest { spent_tokens: 1_999_999, budget_tokens: Some(2_000_000), spent_usd: 1e9, ..req() };
    assert_eq!(route(&three(), &idle(3), &r), used(0, &[]));
    // A zero budget allows nothing.
    let r = RouteRequest { budget_usd: Some(0.0), ..req() };
    assert!(matches!(route(&three(), &idle(3), &r), Route::Exhausted { .. }));
}
