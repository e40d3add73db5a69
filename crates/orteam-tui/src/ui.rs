//! Drawing: a pure function of [`App`], laid out to fit 80×24 (what an SSH session usually
//! has) and to use more room when there is some.

use chrono::{DateTime, Utc};
use orteam_core::Money;
use orteam_dashboard_types::alerts::Severity;
use orteam_dashboard_types::snapshot::{Gauge, Snapshot, usd};
use orteam_dashboard_types::{Alert, keys::KeyRow};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Tabs, Wrap};

use crate::app::{App, Tab};

const DIM: Style = Style::new().fg(Color::DarkGray);
const HEAD: Style = Style::new().add_modifier(Modifier::BOLD);

/// Draws the whole screen.
pub fn render(f: &mut Frame, app: &App) {
    let [top, totals, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    render_tabs(f, top, app);
    let Some(snap) = &app.snapshot else {
        f.render_widget(Paragraph::new(format!("connecting to {}…", app.url)), body);
        render_status(f, status, app);
        return;
    };
    render_totals(f, totals, snap);
    match app.tab {
        Tab::Overview => render_overview(f, body, snap),
        Tab::Budgets => render_budgets(f, body, snap, app.scroll),
        Tab::Requests => render_requests(f, body, snap, app.scroll),
        Tab::Keys => render_keys(f, body, snap, app.scroll),
    }
    render_status(f, status, app);
}

fn render_tabs(f: &mut Frame, area: Rect, app: &App) {
    let [title, tabs] =
        Layout::horizontal([Constraint::Length(12), Constraint::Min(0)]).areas(area);
    f.render_widget(
        Paragraph::new(Span::styled(" orteam top", HEAD.fg(Color::Cyan))),
        title,
    );
    let titles = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()));
    f.render_widget(
        Tabs::new(titles)
            .select(Tab::ALL.iter().position(|t| *t == app.tab))
            .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan))
            .divider("│"),
        tabs,
    );
}

fn render_totals(f: &mut Frame, area: Rect, s: &Snapshot) {
    let t = &s.totals;
    let mut spans = vec![
        Span::raw(" today "),
        Span::styled(usd(t.spend_today), HEAD),
        Span::raw(" · month "),
        Span::styled(usd(t.spend_month), HEAD),
        Span::raw(format!(" · {} req", t.requests_today)),
    ];
    if t.failed_today > 0 {
        spans.push(Span::styled(
            format!(" ({} failed)", t.failed_today),
            Style::new().fg(Color::Red),
        ));
    }
    if t.refused_today > 0 {
        spans.push(Span::styled(
            format!(" · {} refused", t.refused_today),
            Style::new().fg(Color::Yellow),
        ));
    }
    spans.push(Span::raw(format!(" · {} members", t.members)));
    let due = s.key_totals.rotation_overdue;
    if due > 0 {
        spans.push(Span::styled(
            format!(" · {due} key{} due", if due == 1 { "" } else { "s" }),
            Style::new().fg(Color::Yellow),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_status(f: &mut Frame, area: Rect, app: &App) {
    let line = match (&app.error, app.updated_at()) {
        (Some(e), _) => Line::from(vec![Span::styled(
            format!(" ⚠ {e}"),
            Style::new().fg(Color::Red),
        )]),
        (None, Some(t)) => Line::from(vec![
            Span::styled(format!(" updated {} UTC", t.format("%H:%M:%S")), DIM),
            Span::raw("  q quit · ←/→ tabs · ↑/↓ scroll · r refresh"),
        ]),
        (None, None) => Line::from(" q quit"),
    };
    f.render_widget(Paragraph::new(line), area);
}

fn block(title: &str) -> Block<'_> {
    Block::bordered()
        .title(Span::styled(format!(" {title} "), HEAD))
        .border_style(DIM)
}

fn gauge_color(permille: u32) -> Color {
    if permille >= 1000 {
        Color::Red
    } else if permille >= 800 {
        Color::Yellow
    } else {
        Color::Green
    }
}

/// A text bar `width` cells wide, filled `permille`/1000 (eighths for smoothness).
pub fn bar(permille: u32, width: usize) -> String {
    const EIGHTHS: [char; 8] = ['·', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let cells = (permille.min(1000) as usize * width * 8) / 1000;
    let full = cells / 8;
    let mut s = "█".repeat(full);
    if full < width {
        s.push(EIGHTHS[cells % 8]);
        s.push_str(&"·".repeat(width - full - 1));
    }
    s
}

/// `M`ember, `T`eam or `O`rg.
fn scope_char(g: &Gauge) -> char {
    g.scope
        .as_str()
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('?')
}

fn window_char(g: &Gauge) -> &'static str {
    match g.window {
        orteam_core::Window::Daily => "day",
        orteam_core::Window::Weekly => "wk",
        orteam_core::Window::Monthly => "mo",
    }
}

fn trunc(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn render_overview(f: &mut Frame, area: Rect, s: &Snapshot) {
    let today: Vec<_> = s.by_model.iter().filter(|m| m.requests_today > 0).collect();
    // The upper panels take what they need (up to 60%); alerts and keys get the rest.
    let need = s.budgets.len().max(today.len()).max(3) as u16 + 2;
    let upper_h = need.min(area.height * 3 / 5);
    let [upper, lower] =
        Layout::vertical([Constraint::Length(upper_h), Constraint::Min(0)]).areas(area);
    let [budgets, models] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(upper);
    let [lower, recent] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(lower);
    let [alerts, keys] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);

    // Spend against budget, member → team → org.
    let inner = budgets.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = if s.budgets.is_empty() {
        vec![
            Line::from("No budgets set."),
            Line::styled("Add `budget = { daily = \"5.00\" }`", DIM),
            Line::styled("to team.toml; `orteam team apply`.", DIM),
        ]
    } else {
        let amount_w = s
            .budgets
            .iter()
            .map(|g| usd(g.spent).len())
            .max()
            .unwrap_or(0);
        s.budgets
            .iter()
            .map(|g| {
                let label = format!("{} {}", scope_char(g), trunc(&g.scope_id, 7));
                let pct = format!("{:>3}%", g.used_permille / 10);
                let spent = format!("{:>amount_w$}", usd(g.spent));
                let fixed = 9 + 1 + 3 + 1 + 1 + 4 + 1 + amount_w;
                let w = inner.saturating_sub(fixed).max(3);
                Line::from(vec![
                    Span::raw(format!("{label:<9} {:<3} ", window_char(g))),
                    Span::styled(
                        bar(g.used_permille, w),
                        Style::new().fg(gauge_color(g.used_permille)),
                    ),
                    Span::raw(format!(" {pct} ")),
                    Span::styled(spent, DIM),
                ])
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(lines).block(block("Spend vs budget")),
        budgets,
    );

    // Today's burn by model.
    let inner = models.width.saturating_sub(2) as usize;
    let max = today
        .iter()
        .map(|m| m.spend_today)
        .max()
        .unwrap_or(Money::ZERO);
    let lines: Vec<Line> = if today.is_empty() {
        vec![
            Line::from("No requests today."),
            Line::styled("Send one through the gateway,", DIM),
            Line::styled("or run `orteam demo`.", DIM),
        ]
    } else {
        let cost_w = today
            .iter()
            .map(|m| usd(m.spend_today).len())
            .max()
            .unwrap_or(0);
        today
            .iter()
            .map(|m| {
                let cost = format!("{:>cost_w$}", usd(m.spend_today));
                let name_w = (inner / 2).min(22);
                let w = inner.saturating_sub(name_w + 2 + cost.len()).max(2);
                let pm = orteam_dashboard_types::snapshot::permille(m.spend_today, max);
                Line::from(vec![
                    Span::raw(format!("{:<name_w$} ", trunc(&m.model, name_w))),
                    Span::styled(bar(pm, w), Style::new().fg(Color::Cyan)),
                    Span::raw(format!(" {cost}")),
                ])
            })
            .collect()
    };
    f.render_widget(Paragraph::new(lines).block(block("Today by model")), models);

    // Alerts and anomalies.
    // Refusals are listed in full below, so their alerts are not repeated.
    let mut lines: Vec<Line> = s
        .alerts
        .iter()
        .filter(|a| a.kind != "refused")
        .map(alert_line)
        .collect();
    if lines.is_empty() && s.refusals.is_empty() {
        lines.push(Line::styled("No alerts.", Style::new().fg(Color::Green)));
    }
    for r in &s.refusals {
        lines.push(Line::from(vec![
            Span::styled("⊘ ", Style::new().fg(Color::Yellow)),
            Span::raw(r.describe()),
        ]));
    }
    // The newest reconciliation: its changes and differences are alerts above; a clean run
    // is one quiet line, so a lead sees that the money was checked and when.
    if let Some(r) = &s.reconciliation
        && r.corrected + r.inserted == 0
        && r.outstanding == 0
    {
        lines.push(Line::styled(
            format!(
                "✓ reconciled with OpenRouter {} ({}): {} matched{}",
                r.finished_at.format("%H:%M UTC"),
                r.source,
                r.matched,
                if r.incomplete {
                    ", some look-ups failed"
                } else {
                    ""
                }
            ),
            DIM,
        ));
    }
    match (&s.anomaly_detector, s.anomalies.is_empty()) {
        (_, false) => lines.extend(s.anomalies.iter().map(alert_line)),
        (Some(_), true) => lines.push(Line::styled("No anomalies.", DIM)),
        (None, true) => lines.push(Line::styled("No anomaly detector wired in.", DIM)),
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(block("Alerts & anomalies")),
        alerts,
    );

    // Keys due for rotation, soonest first.
    let mut due: Vec<&KeyRow> = s.keys.iter().filter(|k| k.rotation_due.is_some()).collect();
    due.sort_by_key(|k| k.rotation_due);
    let lines: Vec<Line> = if due.is_empty() {
        vec![Line::styled("No key has a rotation due.", DIM)]
    } else {
        due.iter()
            .map(|k| {
                let when = k
                    .rotation_due
                    .map(|d| d.format("%m-%d").to_string())
                    .unwrap_or_default();
                let style = if k.rotation_overdue {
                    Style::new().fg(Color::Red)
                } else {
                    Style::new()
                };
                Line::from(vec![
                    Span::raw(format!("{:<7} ", trunc(&k.member, 7))),
                    Span::styled(format!("{} ", trunc(&k.key, 17)), DIM),
                    Span::styled(
                        format!("{when}{}", if k.rotation_overdue { " overdue" } else { "" }),
                        style,
                    ),
                ])
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(lines).block(block("Keys due for rotation")),
        keys,
    );

    // The newest requests.
    let lines: Vec<Line> = if s.recent.is_empty() {
        vec![Line::styled(
            "No requests yet: send one through the gateway with a member's key, or run `orteam demo`.",
            DIM,
        )]
    } else {
        s.recent
            .iter()
            .take(recent.height.saturating_sub(2) as usize)
            .map(|r| {
                Line::from(vec![
                    Span::styled(r.time.format("%H:%M:%S ").to_string(), DIM),
                    Span::raw(format!("{:<8} ", trunc(&r.member, 8))),
                    Span::raw(format!("{:<30} ", trunc(&model_text(r), 30))),
                    Span::raw(format!("{:>9} ", usd(r.cost))),
                    Span::styled(r.outcome.as_str(), outcome_style(r.outcome.as_str())),
                ])
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(block("Recent requests (tab 3)")),
        recent,
    );
}

/// The model, or `requested→served` when the tier downgraded it (`!` marks a policy
/// violation: served outside the member's tier).
fn model_text(r: &orteam_dashboard_types::snapshot::RecentRequest) -> String {
    if r.served_outside_tier {
        return format!(
            "{}→{} !outside tier",
            short_model(&r.requested_model),
            short_model(r.served_model.as_deref().unwrap_or(&r.requested_model))
        );
    }
    match &r.served_model {
        Some(served) if *served != r.requested_model => {
            format!(
                "{}→{}",
                short_model(&r.requested_model),
                short_model(served)
            )
        }
        _ => short_model(r.served_model.as_deref().unwrap_or(&r.requested_model)).to_owned(),
    }
}

fn outcome_style(outcome: &str) -> Style {
    match outcome {
        "ok" => Style::new().fg(Color::Green),
        "failed" => Style::new().fg(Color::Red),
        _ => Style::new().fg(Color::Yellow),
    }
}

fn alert_line(a: &Alert) -> Line<'_> {
    let (mark, color) = match a.severity {
        Severity::Critical => ("✖ ", Color::Red),
        Severity::Warning => ("! ", Color::Yellow),
        Severity::Info => ("i ", Color::Blue),
    };
    Line::from(vec![
        Span::styled(mark, Style::new().fg(color).add_modifier(Modifier::BOLD)),
        Span::raw(a.message.as_str()),
    ])
}

fn until(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let d = t - now;
    if d.num_seconds() <= 0 {
        "now".into()
    } else if d.num_hours() >= 48 {
        format!("{}d", d.num_days())
    } else if d.num_hours() >= 1 {
        format!("{}h{:02}m", d.num_hours(), d.num_minutes() % 60)
    } else {
        format!("{}m", d.num_minutes().max(1))
    }
}

fn table_block<'a>(title: &'a str, shown: usize, total: usize, scroll: usize) -> Block<'a> {
    let pos = if total > shown {
        format!(
            " {}–{} of {total} ",
            scroll + 1,
            (scroll + shown).min(total)
        )
    } else {
        String::new()
    };
    block(title).title_bottom(Line::styled(pos, DIM).right_aligned())
}

fn render_budgets(f: &mut Frame, area: Rect, s: &Snapshot, scroll: usize) {
    if s.budgets.is_empty() {
        f.render_widget(
            Paragraph::new(vec![
                Line::from("No budgets set."),
                Line::styled(
                    "Add `budget = { daily = \"5.00\" }` to a member, team or [org] in team.toml, then run `orteam team apply`.",
                    DIM,
                ),
            ])
            .wrap(Wrap { trim: true })
            .block(block("Budgets")),
            area,
        );
        return;
    }
    let shown = area.height.saturating_sub(3) as usize;
    let rows = s.budgets.iter().skip(scroll).map(|g| {
        Row::new(vec![
            Cell::from(g.scope.as_str()),
            Cell::from(trunc(&g.scope_id, 10)),
            Cell::from(g.window.as_str()),
            Cell::from(Span::styled(
                bar(g.used_permille, 12),
                Style::new().fg(gauge_color(g.used_permille)),
            )),
            Cell::from(format!("{:>3}%", g.used_permille / 10)),
            Cell::from(usd(g.spent)),
            Cell::from(usd(g.limit)),
            Cell::from(until(s.generated_at, g.reset_at)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Length(4),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Min(6),
        ],
    )
    .header(
        Row::new([
            "scope", "id", "window", "used", "", "spent", "limit", "resets",
        ])
        .style(HEAD),
    )
    .block(table_block("Budgets", shown, s.budgets.len(), scroll));
    f.render_widget(table, area);
}

fn render_requests(f: &mut Frame, area: Rect, s: &Snapshot, scroll: usize) {
    if s.recent.is_empty() {
        f.render_widget(
            Paragraph::new(vec![
                Line::from("No requests yet."),
                Line::styled(
                    "Send one through the gateway with a member's key, or run `orteam demo`.",
                    DIM,
                ),
            ])
            .wrap(Wrap { trim: true })
            .block(block("Recent requests")),
            area,
        );
        return;
    }
    let shown = area.height.saturating_sub(3) as usize;
    // The API route gets a column when it fits beside a model column wide enough for a
    // downgrade (`claude-3.5-sonnet→gpt-4o-mini`): from 92 columns. At 80 there is no room.
    let with_route = area.width >= ROUTE_COLUMN_FROM;
    let rows = s.recent.iter().skip(scroll).map(|r| {
        let model = model_text(r);
        let outcome = r.outcome.as_str();
        let style = outcome_style(outcome);
        let mut cells = vec![
            Cell::from(r.time.format("%H:%M:%S").to_string()),
            Cell::from(trunc(&r.member, 8)),
        ];
        if with_route {
            cells.push(Cell::from(r.route.as_str()));
        }
        cells.extend([
            Cell::from(model),
            Cell::from(format!("{}/{}", r.prompt_tokens, r.completion_tokens)),
            Cell::from(usd(r.cost)),
            Cell::from(Span::styled(outcome, style)),
        ]);
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(8), Constraint::Length(8)];
    let mut header = vec!["time", "member"];
    if with_route {
        widths.push(Constraint::Length(11));
        header.push("route");
    }
    widths.extend([
        Constraint::Min(20),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
    ]);
    header.extend(["model", "tokens", "cost", "result"]);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(HEAD))
        .block(table_block(
            "Recent requests",
            shown,
            s.recent.len(),
            scroll,
        ));
    f.render_widget(table, area);
}

/// Terminal width from which the requests tab shows each request's API route.
pub const ROUTE_COLUMN_FROM: u16 = 92;

/// `openai/gpt-4o-mini` → `gpt-4o-mini`: the provider is clear from the name at 80 columns.
fn short_model(m: &str) -> &str {
    m.split_once('/').map(|(_, rest)| rest).unwrap_or(m)
}

fn render_keys(f: &mut Frame, area: Rect, s: &Snapshot, scroll: usize) {
    if s.keys.is_empty() {
        f.render_widget(
            Paragraph::new(vec![
                Line::from("No keys yet."),
                Line::styled("Add members to team.toml and run `orteam team apply`.", DIM),
            ])
            .block(block("Keys")),
            area,
        );
        return;
    }
    let shown = area.height.saturating_sub(3) as usize;
    let date = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%m-%d").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let rows = s.keys.iter().skip(scroll).map(|k| {
        let due = Cell::from(Span::styled(
            format!(
                "{}{}",
                date(k.rotation_due),
                if k.rotation_overdue { "!" } else { "" }
            ),
            if k.rotation_overdue {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            },
        ));
        Row::new(vec![
            Cell::from(trunc(&k.member, 8)),
            Cell::from(k.mode.as_str()),
            Cell::from(trunc(&k.key, 16)),
            Cell::from(k.usage_today.map(usd).unwrap_or_else(|| "-".into())),
            Cell::from(k.usage_month.map(usd).unwrap_or_else(|| "-".into())),
            Cell::from(date(k.expires_at)),
            due,
            Cell::from(k.state.clone()),
        ])
    });
    let t = &s.key_totals;
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(16),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Min(6),
        ],
    )
    .header(
        Row::new([
            "member", "mode", "key", "today", "month", "exp", "rotate", "state",
        ])
        .style(HEAD),
    )
    .footer(
        Row::new(vec![
            Cell::from(format!("{} keys", t.keys)),
            Cell::from(format!("{} live", t.live)),
            Cell::from(""),
            Cell::from(usd(t.usage_today)),
            Cell::from(usd(t.usage_month)),
        ])
        .style(HEAD),
    )
    .block(table_block(
        "Keys",
        shown.saturating_sub(1),
        s.keys.len(),
        scroll,
    ));
    f.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_proportionally() {
        assert_eq!(bar(0, 4), "····");
        assert_eq!(bar(500, 4), "██··");
        assert_eq!(bar(1000, 4), "████");
        assert_eq!(bar(2000, 4), "████");
        assert_eq!(bar(125, 4), "▌···");
    }

    #[test]
    fn times_until() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(until(now, now + chrono::TimeDelta::minutes(90)), "1h30m");
        assert_eq!(until(now, now + chrono::TimeDelta::days(7)), "7d");
        assert_eq!(until(now, now), "now");
    }
}
