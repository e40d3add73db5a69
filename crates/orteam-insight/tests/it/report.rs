//! Report totals equal the simulator's `/activity` and what clients were billed, to the last
//! digit, in every grouping; JSON and CSV parse and sum to the same totals.

use std::collections::BTreeMap;

use orteam_core::Money;
use orteam_insight::report::{CSV_HEADER, ReportOptions, Source, build_report};
use orteam_insight::{NoProgress, Period};
use orteam_ledger::GroupBy;
use orteam_test_support::{Backend, backend_tests};

use crate::support::{Sent, World, seed};

fn team_of(member: &str) -> &'static str {
    match member {
        "alice" | "bob" => "core",
        _ => "web",
    }
}

fn sent_dims(w: &World, s: &Sent, g: &[GroupBy], keys: &BTreeMap<String, String>) -> Vec<String> {
    g.iter()
        .map(|d| match d {
            GroupBy::Member => s.member.clone(),
            GroupBy::Team => team_of(&s.member).to_owned(),
            GroupBy::Model => s.model.clone(),
            GroupBy::Day => s.day.to_string(),
            GroupBy::Provider => s.provider.clone(),
            // The gateway serves chat completions; /activity knows no route.
            GroupBy::Route if s.direct => String::new(),
            GroupBy::Route => "chat".to_owned(),
            GroupBy::Key => {
                if s.direct {
                    w.dave_hash.clone()
                } else {
                    keys[&s.member].clone()
                }
            }
        })
        .collect()
}

fn add(map: &mut BTreeMap<Vec<String>, (Money, u64)>, k: Vec<String>, cost: Money, n: u64) {
    let e = map.entry(k).or_insert((Money::ZERO, 0));
    e.0 = e.0.checked_add(cost).unwrap();
    e.1 += n;
}

async fn report_matches_activity_and_billing(backend: Backend) {
    let w = seed(backend).await;
    let up = w.upstream();
    let range = Period::Last30d.range(w.today);
    let first = range.from.date_naive();
    let last = w.today.date_naive().pred_opt().unwrap();
    let keys: BTreeMap<String, String> =
        w.tg.admin
            .directory()
            .virtual_keys
            .values()
            .map(|k| (k.member_id.clone(), k.id.clone()))
            .collect();
    let activity = w.activity().await;
    let activity_total: Money = activity
        .iter()
        .map(|r| Money::parse(&r["usage"].to_string()).unwrap())
        .sum();
    let billed: Money = w.sent.iter().map(|s| s.cost).sum();
    assert_eq!(
        activity_total, billed,
        "the simulator billed what clients saw"
    );
    assert!(!billed.is_zero());

    let groupings: Vec<Vec<GroupBy>> = vec![
        vec![],
        vec![GroupBy::Member],
        vec![GroupBy::Team],
        vec![GroupBy::Model],
        vec![GroupBy::Day],
        vec![GroupBy::Provider],
        vec![GroupBy::Key],
        vec![GroupBy::Member, GroupBy::Model],
        vec![GroupBy::Day, GroupBy::Model],
        vec![GroupBy::Team, GroupBy::Provider, GroupBy::Day],
        vec![GroupBy::Member, GroupBy::Route],
        vec![
            GroupBy::Member,
            GroupBy::Team,
            GroupBy::Model,
            GroupBy::Day,
            GroupBy::Provider,
            GroupBy::Key,
        ],
    ];
    for g in groupings {
        let report = build_report(
            &w.tg.admin,
            &up,
            &ReportOptions {
                range,
                group_by: g.clone(),
                route: None,
                direct: true,
                anomalies: None,
            },
            &NoProgress,
        )
        .await
        .unwrap();
        assert_eq!(report.totals.cost, activity_total, "{g:?}: total");
        assert!(report.notes.is_empty(), "{g:?}: {:?}", report.notes);
        assert!(report.rows.iter().any(|r| r.source == Source::Openrouter));
        assert!(report.rows.iter().any(|r| r.source == Source::Gateway));
        // Every group equals what the clients were billed.
        let mut got = BTreeMap::new();
        for r in &report.rows {
            let k = g.iter().map(|d| r.dimension(*d)).collect();
            add(&mut got, k, r.cost, r.requests);
        }
        let mut want = BTreeMap::new();
        for s in w.sent.iter().filter(|s| s.day >= first && s.day <= last) {
            add(&mut want, sent_dims(&w, s, &g, &keys), s.cost, 1);
        }
        assert_eq!(got, want, "{g:?}: groups");
        // Groupings /activity can express equal /activity.
        if g.iter()
            .all(|d| matches!(d, GroupBy::Day | GroupBy::Model | GroupBy::Provider))
        {
            let mut act = BTreeMap::new();
            for a in &activity {
                let k = g
                    .iter()
                    .map(|d| match d {
                        GroupBy::Day => a["date"].as_str().unwrap().to_owned(),
                        GroupBy::Model => a["model"].as_str().unwrap().to_owned(),
                        _ => a["provider_name"].as_str().unwrap().to_owned(),
                    })
                    .collect();
                add(
                    &mut act,
                    k,
                    Money::parse(&a["usage"].to_string()).unwrap(),
                    a["requests"].as_u64().unwrap(),
                );
            }
            assert_eq!(got, act, "{g:?}: /activity");
        }
        // JSON parses and its decimal strings sum to the total.
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        let json_sum: Money = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Money::parse(r["cost"].as_str().unwrap()).unwrap())
            .sum();
        assert_eq!(json_sum, activity_total);
        assert_eq!(
            json["totals"]["cost"].as_str().unwrap(),
            activity_total.to_canonical_string()
        );
        // CSV parses and sums to the total.
        let csv = report.to_csv();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        let cost_col = CSV_HEADER.split(',').position(|c| c == "cost").unwrap();
        let csv_sum: Money = lines
            .map(|l| {
                let cols: Vec<&str> = l.split(',').collect();
                assert_eq!(cols.len(), CSV_HEADER.split(',').count(), "{l}");
                Money::parse(cols[cost_col]).unwrap()
            })
            .sum();
        assert_eq!(csv_sum, activity_total);
    }

    // Today's gateway traffic is in `today`; direct spend of today is not available yet.
    crate::support::set_time(&w.tg, w.today);
    let s = crate::support::chat(&w.tg, "alice", "openai/gpt-4o-mini", 12).await;
    orteam_test_support::wait_for_event(&w.tg.admin, s.request_id.as_deref().unwrap(), false)
        .await
        .expect("the event is recorded");
    let report = build_report(
        &w.tg.admin,
        &up,
        &ReportOptions {
            range: Period::Today.range(w.today),
            group_by: vec![GroupBy::Member],
            route: None,
            direct: true,
            anomalies: None,
        },
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.totals.cost, s.cost);
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
}

backend_tests!(report_matches_activity_and_billing);
