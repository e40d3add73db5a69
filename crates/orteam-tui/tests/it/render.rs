use chrono::{DateTime, TimeDelta, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use orteam_core::{ApiRoute, Money, Window};
use orteam_core::{BudgetScope, Outcome};
use orteam_dashboard_types::Range;
use orteam_dashboard_types::keys::{KeyMode, KeyRow, KeyTotals};
use orteam_dashboard_types::rules::derive_alerts;
use orteam_dashboard_types::snapshot::{
    Gauge, ModelRow, RecentRequest, RefusalRow, Series, Snapshot, Totals, permille,
};
use orteam_tui::{App, Tab, ui};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:15:30Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn gauge(scope: BudgetScope, id: &str, window: Window, limit: &str, spent: &str) -> Gauge {
    let (limit, spent) = (m(limit), m(spent));
    Gauge {
        scope,
        scope_id: id.into(),
        window,
        limit,
        raised: Money::ZERO,
        spent,
        held: Money::ZERO,
        remaining: limit.saturating_sub_floor_zero(spent),
        reset_at: window.reset_at(now()),
        used_permille: permille(spent, limit),
    }
}

fn key(member: &str, key: &str, gen_: Option<u64>, due_days: Option<i64>, today: &str) -> KeyRow {
    let due = due_days.map(|d| now() + TimeDelta::days(d));
    KeyRow {
        member: member.into(),
        mode: KeyMode::Gateway,
        key: key.into(),
        generation: gen_,
        created_at: now() - TimeDelta::days(40),
        expires_at: None,
        rotation_due: due,
        rotation_overdue: due.is_some_and(|d| d <= now()),
        state: "active".into(),
        last_used_at: None,
        usage_today: Some(m(today)),
        usage_month: Some(m(today)),
        limit: None,
        limit_window: None,
        limit_reset: None,
    }
}

fn request(secs_ago: i64, member: &str, model: &str, served: &str, cost: &str) -> RecentRequest {
    RecentRequest {
        time: now() - TimeDelta::seconds(secs_ago),
        member: member.into(),
        requested_model: model.into(),
        served_model: Some(served.into()),
        prompt_tokens: 14,
        completion_tokens: 200,
        cost: m(cost),
        outcome: Outcome::Ok,
        streamed: false,
        latency_ms: 3,
        latency: "3.21 ms".into(),
        request_id: format!("req-{secs_ago}"),
        route: ApiRoute::Chat,
        served_outside_tier: false,
        reconciled: None,
    }
}

fn model(name: &str, today: &str, n: u64) -> ModelRow {
    ModelRow {
        model: name.into(),
        requests_today: n,
        spend_today: m(today),
        requests_month: n,
        spend_month: m(today),
    }
}

pub fn fixture() -> Snapshot {
    let budgets = vec![
        gauge(
            BudgetScope::Member,
            "alice",
            Window::Daily,
            "0.05",
            "0.0342",
        ),
        gauge(
            BudgetScope::Member,
            "bob",
            Window::Daily,
            "0.0012",
            "0.0012",
        ),
        gauge(BudgetScope::Team, "core", Window::Monthly, "0.05", "0.0352"),
        gauge(BudgetScope::Org, "acme", Window::Monthly, "0.25", "0.0356"),
    ];
    let keys = vec![
        key("alice", "ot-s7051buewhLA…", None, None, "0.0342"),
        key("bob", "ot-wHY0Hj8svdfm…", None, None, "0.001071"),
        key("carol", "ot-cIA5xG6c7UNS…", Some(2), Some(-10), "0"),
    ];
    let recent = vec![
        request(
            5,
            "carol",
            "openai/gpt-4o-mini",
            "openai/gpt-4o-mini",
            "0.000026",
        ),
        request(
            65,
            "bob",
            "anthropic/claude-3.5-sonnet",
            "openai/gpt-4o-mini",
            "0.000092",
        ),
        RecentRequest {
            route: ApiRoute::Messages,
            ..request(66, "alice", "openai/gpt-4o", "openai/gpt-4o", "0.003035")
        },
    ];
    let alerts = derive_alerts(&budgets, &keys, &recent, now());
    Snapshot {
        generated_at: now(),
        backend: "sqlite".into(),
        totals: Totals {
            spend_today: m("0.0356"),
            spend_month: m("0.0356"),
            requests_today: 31,
            requests_month: 31,
            failed_today: 0,
            refused_today: 12,
            members: 3,
            any_requests: true,
        },
        budgets,
        members: vec![],
        by_route: vec![],
        by_model: vec![
            model("anthropic/claude-3.5-sonnet", "0.01896", 5),
            model("openai/gpt-4o", "0.015175", 5),
            model("openai/gpt-4o-mini", "0.0014415", 15),
        ],
        series: Series {
            range: Range::Hour,
            starts: vec![],
            bucket_seconds: 60,
            by_member: vec![],
            by_model: vec![],
        },
        key_totals: KeyTotals::of(&keys),
        keys,
        recent,
        alerts,
        refusals: vec![RefusalRow {
            member: "carol".into(),
            reason: "budget_exceeded".into(),
            detail: "member \"carol\" daily".into(),
            count: 12,
            last: now(),
        }],
        anomalies: vec![],
        anomaly_detector: None,
        reconciliation: None,
        charts: None,
    }
}

fn draw(app: &App) -> Terminal<TestBackend> {
    draw_at(app, 80)
}

fn draw_at(app: &App, width: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(width, 24)).unwrap();
    t.draw(|f| ui::render(f, app)).unwrap();
    t
}

fn lines(t: &Terminal<TestBackend>) -> Vec<String> {
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect()
}

fn app() -> App {
    let mut app = App::new("http://127.0.0.1:8080");
    app.on_snapshot(Ok(fixture()));
    app
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn overview_at_80x24() {
    let t = draw(&app());
    let got = lines(&t);
    for l in &got {
        println!("{l:?}");
    }
    assert_eq!(got, OVERVIEW, "cell contents");
    // Colours carry meaning too: bob's exhausted budget is red, alice's is green.
    let buf = t.backend().buffer();
    assert_eq!(buf[(16, 4)].fg, ratatui::style::Color::Red, "bob's gauge");
    assert_eq!(
        buf[(16, 3)].fg,
        ratatui::style::Color::Green,
        "alice's gauge"
    );
}

#[test]
fn every_tab_fits_80x24() {
    let mut app = app();
    for tab in [Tab::Budgets, Tab::Requests, Tab::Keys] {
        press(&mut app, KeyCode::Right);
        assert_eq!(app.tab, tab);
        let got = lines(&draw(&app)).join("\n");
        println!("{got}");
        match tab {
            Tab::Budgets => {
                assert!(got.contains("member alice"), "{got}");
                assert!(got.contains("org    acme"), "{got}");
                assert!(got.contains("$0.05 "), "{got}");
                assert!(got.contains("13h44m"), "resets at midnight: {got}");
            }
            Tab::Requests => {
                assert!(got.contains("10:15:25 carol"), "{got}");
                assert!(got.contains("claude-3.5-sonnet→gpt-4o-mini"), "{got}");
                assert!(!got.contains("route"), "no room for the route at 80: {got}");
            }
            Tab::Keys => {
                assert!(got.contains("ot-cIA5xG6c7UNS…"), "{got}");
                assert!(got.contains("11-13!"), "overdue marker: {got}");
                assert!(got.contains("3 keys"), "totals row: {got}");
            }
            Tab::Overview => unreachable!(),
        }
    }
    press(&mut app, KeyCode::Char('q'));
    assert!(app.should_quit());
}

/// From 92 columns the requests tab shows each request's API route, and the downgrade text
/// still fits.
#[test]
fn requests_show_the_route_when_wide_enough() {
    let mut app = app();
    for _ in 0..2 {
        press(&mut app, KeyCode::Right);
    }
    assert_eq!(app.tab, Tab::Requests);
    let got = lines(&draw_at(&app, orteam_tui::ui::ROUTE_COLUMN_FROM)).join("\n");
    println!("{got}");
    assert!(got.contains("route"), "{got}");
    assert!(got.contains("carol    chat"), "{got}");
    assert!(got.contains("alice    messages"), "{got}");
    assert!(got.contains("claude-3.5-sonnet→gpt-4o-mini"), "{got}");
}

#[test]
fn a_failed_refresh_keeps_the_data_and_says_why() {
    let mut app = app();
    app.on_snapshot(Err(
        "cannot reach the gateway at http://127.0.0.1:8080".into()
    ));
    let got = lines(&draw(&app));
    assert!(got[23].contains("⚠ cannot reach the gateway"), "{got:?}");
    assert!(got.join("\n").contains("Spend vs budget"));
}

#[test]
fn empty_gateway_says_how_to_get_data() {
    let mut s = fixture();
    s.budgets.clear();
    s.by_model.clear();
    s.keys.clear();
    s.recent.clear();
    s.alerts.clear();
    s.refusals.clear();
    s.key_totals = KeyTotals::default();
    let mut app = App::new("http://x");
    app.on_snapshot(Ok(s));
    let got = lines(&draw(&app)).join("\n");
    assert!(got.contains("No budgets set."), "{got}");
    assert!(got.contains("or run `orteam demo`."), "{got}");
    assert!(got.contains("No alerts."), "{got}");
    assert!(got.contains("No key has a rotation due."), "{got}");
}

const OVERVIEW: [&str; 24] = [
    " orteam top  1 Overview │ 2 Budgets │ 3 Requests │ 4 Keys                       ",
    " today $0.0356 · month $0.0356 · 31 req · 12 refused · 3 members · 1 key due    ",
    "┌ Spend vs budget ─────────────────────┐┌ Today by model ──────────────────────┐",
    "│M alice   day ███████▌···  68% $0.0342││anthropic/claude-3… █████████  $0.0190│",
    "│M bob     day ███████████ 100% $0.0012││openai/gpt-4o       ███████▏·  $0.0152│",
    "│T core    mo  ███████▋···  70% $0.0352││openai/gpt-4o-mini  ▋········ $0.00144│",
    "│O acme    mo  █▌·········  14% $0.0356││                                      │",
    "└──────────────────────────────────────┘└──────────────────────────────────────┘",
    "┌ Alerts & anomalies ──────────────────┐┌ Keys due for rotation ───────────────┐",
    "│✖ member bob's daily budget is        ││carol   ot-cIA5xG6c7UNS… 11-13 overdue│",
    "│exhausted: $0.0012 of $0.0012 used; it││                                      │",
    "│resets at 2026-11-24 00:00 UTC        ││                                      │",
    "│! carol's gateway key ot-cIA5xG6c7UNS…││                                      │",
    "│was due for rotation on 2026-11-13    ││                                      │",
    "│⊘ carol refused 12× by the member     ││                                      │",
    "│\"carol\" daily budget                  ││                                      │",
    "└──────────────────────────────────────┘└──────────────────────────────────────┘",
    "┌ Recent requests (tab 3) ─────────────────────────────────────────────────────┐",
    "│10:15:25 carol    gpt-4o-mini                    $0.000026 ok                 │",
    "│10:14:25 bob      claude-3.5-sonnet→gpt-4o-mini  $0.000092 ok                 │",
    "│10:14:24 alice    gpt-4o                          $0.00304 ok                 │",
    "│                                                                              │",
    "└──────────────────────────────────────────────────────────────────────────────┘",
    " updated 10:15:30 UTC  q quit · ←/→ tabs · ↑/↓ scroll · r refresh               ",
];

#[test]
fn a_clean_reconciliation_is_one_quiet_line() {
    use orteam_dashboard_types::snapshot::ReconcilePanel;
    let mut snap = fixture();
    snap.refusals.clear();
    snap.reconciliation = Some(ReconcilePanel {
        finished_at: now() - TimeDelta::minutes(5),
        source: "gateway".into(),
        matched: 42,
        corrected: 0,
        inserted: 0,
        org_level: Money::ZERO,
        org_level_month: Money::ZERO,
        outstanding: 0,
        changes: vec![],
        outstanding_lines: vec![],
        incomplete: false,
    });
    let mut app = App::new("http://127.0.0.1:8080");
    app.on_snapshot(Ok(snap.clone()));
    let text = lines(&draw_at(&app, 140)).join("\n");
    assert!(
        text.contains("reconciled with OpenRouter 10:10 UTC (gateway): 42 matched"),
        "{text}"
    );
    // A run that changed money is an alert instead (derived by the dashboard's rules).
    let mut changed = snap;
    if let Some(r) = changed.reconciliation.as_mut() {
        r.inserted = 1;
    }
    let mut app = App::new("http://127.0.0.1:8080");
    app.on_snapshot(Ok(changed));
    let text = lines(&draw_at(&app, 140)).join("\n");
    assert!(!text.contains("reconciled with OpenRouter"), "{text}");
}
