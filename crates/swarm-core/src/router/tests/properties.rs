//! Properties: what `route()` must never pick.

use super::*;

fn arb_case() -> impl Strategy<Value = (Catalog, Vec<Standing>, RouteRequest)> {
    let model = (1u8..=7, any::<bool>(), proptest::option::of(1u32..4), proptest::option::of(500u64..5_000));
    (proptest::collection::vec(model, 1..12), 1u8..=8, any::<bool>(), 0u64..120_000, 0u64..4_000)
        .prop_flat_map(|(mut models, start_layer, allow_paid, max_wait_ms, est_tokens)| {
            models.sort_by_key(|m| m.0);
            let n = models.len();
            let standing = (
                proptest::option::of(NOW - 10_000..NOW + 200_000),
                any::<bool>(),
                0u64..5,
                0u64..6_000,
                0u64..5,
                proptest::option::of(NOW - 1_000..NOW + 90_000),
            )
                .prop_map(|(cool, off, minute_requests, minute_tokens, day_requests, frees)| Standing {
                    cooldown: cool.map(|until| Cooldown::cooling(until, "rate_limited")),
                    disabled: off.then(|| "auth".into()),
                    minute_requests,
                    minute_tokens,
                    day_requests,
                    minute_frees_at_ms: frees,
                    ..Standing::default()
                });
            (
                Just(models),
                proptest::collection::vec(standing, n),
                proptest::collection::vec(0..n, 0..3),
                Just((start_layer, allow_paid, max_wait_ms, est_tokens)),
            )
        })
        .prop_map(|(models, standings, tried, (start_layer, allow_paid, max_wait_ms, est_tokens))| {
            let catalog = Catalog {
                models: models
                    .iter()
                    .enumerate()
                    .map(|(i, (layer, paid, rpm, tpm))| ModelEntry {
                        paid: *paid,
                        rpm: *rpm,
                        rpd: Some(3),
                        tpm: *tpm,
                        ..entry(&format!("p/m{i}"), *layer)
                    })
                    .collect(),
                groups: vec![],
            };
            let req = RouteRequest { start_layer, allow_paid, max_wait_ms, est_tokens, tried, ..req() };
            (catalog, standings, req)
        })
}

proptest! {
    #[test]
    fn never_picks_a_model_it_must_not((catalog, standings, req) in arb_case()) {
        let out = route(&catalog, &standings, &req);
        let ruled_out = |i: usize| {
            let (m, s) = (&catalog.models[i], &standings[i]);
            m.layer < req.start_layer
                || req.tried.contains(&i)
                || s.disabled.is_some()
                || (m.paid && !req.allow_paid)
        };
        match out {
            Route::Use { model, skipped } => {
                let (m, s) = (&catalog.models[model], &standings[model]);
                prop_assert!(!ruled_out(model));
                prop_assert!(s.cooldown.as_ref().is_none_or(|c| c.until_ms <= req.now_ms), "cooling");
                // A full minute whose free time has passed has room by now (a moment-old picture).
                let freed = s.minute_frees_at_ms.is_some_and(|t| t <= req.now_ms);
                prop_assert!(freed || m.rpm.is_none_or(|l| s.minute_requests < u64::from(l)), "over rpm");
                prop_assert!(m.rpd.is_none_or(|l| s.day_requests < u64::from(l)), "over rpd");
                prop_assert!(freed || m.tpm.is_none_or(|l| s.minute_tokens + req.est_tokens <= l), "over tpm");
                prop_assert!(m.tpm.is_none_or(|l| req.est_tokens <= l), "larger than its tpm");
                // Every model before it was passed over, in order, and none after it.
                let passed: Vec<usize> = skipped.iter().map(|(i, _)| *i).collect();
                prop_assert_eq!(passed, (0..model).collect::<Vec<_>>());
            }
            Route::Wait { until_ms, model } => {
                prop_assert!(!ruled_out(model));
                prop_assert!(until_ms > req.now_ms && until_ms - req.now_ms <= req.max_wait_ms);
                // Waiting only when nothing is usable now.
                let blocked = |i: usize| {
                    let (m, s) = (&catalog.models[i], &standings[i]);
                    let full = s.minute_frees_at_ms.is_none_or(|t| t > req.now_ms);
                    s.cooldown.as_ref().is_some_and(|c| c.until_ms > req.now_ms)
                        || (full && m.rpm.is_some_and(|l| s.minute_requests >= u64::from(l)))
                        || m.rpd.is_some_and(|l| s.day_requests >= u64::from(l))
                        || (full && m.tpm.is_some_and(|l| s.minute_tokens + req.est_tokens > l))
                        // No minute, however empty, holds a request larger than its tpm.
                        || m.tpm.is_some_and(|l| req.est_tokens > l)
                };
                prop_assert!((0..catalog.models.len()).all(|i| ruled_out(i) || blocked(i)));
            }
            Route::Exhausted { why, frees_at_ms } => {
                prop_assert!(!why.is_empty());
                if let Some(at) = frees_at_ms {
                    prop_assert!(at > req.now_ms && at - req.now_ms > req.max_wait_ms);
                }
            }
        }
    }
}
