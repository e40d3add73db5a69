//! Server-side SVG charts drawn with `plotters` (SVG backend only: no fonts, no bitmaps). The
//! browser only inserts the SVG, so the dashboard needs no JavaScript chart library and the
//! binary no files beside it.
//!
//! Money stays exact everywhere else; [`money_to_f64_for_drawing`] is the one place it becomes a
//! float, and only to place pixels.

use chrono::{DateTime, Utc};
use orteam_core::Money;
use orteam_core::rust_decimal::prelude::ToPrimitive;
use plotters::prelude::*;

use crate::snapshot::{ModelRow, NamedSeries, Range, Series, SplitBy, usd};

/// Why a chart could not be drawn (plotters' own error, as text).
#[derive(Debug, thiserror::Error)]
#[error("chart: {0}")]
pub struct ChartError(String);

fn err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

/// The only conversion of money to a float in orteam: pixel positions of charts.
pub fn money_to_f64_for_drawing(m: Money) -> f64 {
    m.as_decimal().to_f64().unwrap_or(0.0)
}

/// Tableau 10: distinguishable, colour-blind friendlier than plotters' defaults.
const PALETTE: [RGBColor; 8] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(156, 117, 95),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const FONT: &str = "sans-serif";
const AXIS: RGBColor = RGBColor(90, 96, 110);

fn axis_dollars(v: f64, span: f64) -> String {
    if span < 0.01 {
        format!("${v:.5}")
    } else if span < 1.0 {
        format!("${v:.3}")
    } else {
        format!("${v:.2}")
    }
}

fn time_label(range: Range, t: DateTime<Utc>) -> String {
    match range {
        Range::Hour | Range::Day => t.format("%H:%M").to_string(),
        Range::Week | Range::Month => t.format("%m-%d").to_string(),
    }
}

/// Cumulative spend over the range, one line per member or model (largest first).
pub fn spend_over_time(series: &Series, by: SplitBy) -> Result<String, ChartError> {
    let lines: &[NamedSeries] = series.split(by);
    let n = series.starts.len().max(1);
    let cumulative: Vec<Vec<f64>> = lines
        .iter()
        .map(|s| {
            let mut acc = Money::ZERO;
            s.points
                .iter()
                .map(|p| {
                    acc = acc.checked_add(*p).unwrap_or(acc);
                    money_to_f64_for_drawing(acc)
                })
                .collect()
        })
        .collect();
    let top = cumulative
        .iter()
        .filter_map(|c| c.last().copied())
        .fold(0.0_f64, f64::max);
    let y_max = if top > 0.0 { top * 1.15 } else { 0.01 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 330)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..(n as f64 - 1.0).max(1.0), 0f64..y_max)
            .map_err(err)?;
        let starts = &series.starts;
        let range = series.range;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(238, 240, 244))
            .bold_line_style(RGBColor(225, 228, 234))
            .axis_style(AXIS)
            .x_labels(7)
            .y_labels(6)
            .label_style((FONT, 12).into_font().color(&AXIS))
            .x_label_formatter(&|x| {
                let i = x.round().max(0.0) as usize;
                starts
                    .get(i)
                    .map(|t| time_label(range, *t))
                    .unwrap_or_default()
            })
            .y_label_formatter(&|y| axis_dollars(*y, y_max))
            .draw()
            .map_err(err)?;
        for (i, (s, c)) in lines.iter().zip(&cumulative).enumerate() {
            let col = color(i);
            chart
                .draw_series(LineSeries::new(
                    c.iter().enumerate().map(|(x, y)| (x as f64, *y)),
                    col.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} {}", s.name, usd(s.total)))
                .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], col.filled()));
        }
        if lines.is_empty() {
            root.draw(&Text::new(
                format!("no spend in the last {}", range.as_str()),
                (440, 150),
                (FONT, 16).into_font().color(&AXIS),
            ))
            .map_err(err)?;
        } else {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(210, 214, 222))
                .label_font((FONT, 12))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(tag_svg(svg, "spend-over-time", !lines.is_empty()))
}

/// Horizontal bars: spend by model this month, today's share darker.
pub fn spend_by_model(models: &[ModelRow]) -> Result<String, ChartError> {
    let rows: Vec<&ModelRow> = models.iter().take(8).collect();
    let m = rows.len().max(1);
    let top = rows
        .iter()
        .map(|r| money_to_f64_for_drawing(r.spend_month))
        .fold(0.0_f64, f64::max);
    let x_max = if top > 0.0 { top * 1.1 } else { 0.01 };
    let height = 60 + 34 * u32::try_from(m).unwrap_or(8);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(170)
            .build_cartesian_2d(0f64..x_max, 0f64..m as f64)
            .map_err(err)?;
        let names: Vec<String> = rows.iter().map(|r| short(&r.model, 26)).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(RGBColor(238, 240, 244))
            .bold_line_style(RGBColor(225, 228, 234))
            .axis_style(AXIS)
            .x_labels(5)
            .y_labels(m * 2 + 1)
            .label_style((FONT, 12).into_font().color(&AXIS))
            .x_label_formatter(&|x| axis_dollars(*x, x_max))
            .y_label_formatter(&|y| {
                // Label the middle of each bar: row i spans [m-1-i, m-i).
                let frac = y.fract();
                if (frac - 0.5).abs() > 0.01 {
                    return String::new();
                }
                let slot = y.floor() as usize;
                names
                    .get(m.saturating_sub(1).saturating_sub(slot))
                    .cloned()
                    .unwrap_or_default()
            })
            .draw()
            .map_err(err)?;
        for (i, r) in rows.iter().enumerate() {
            let y0 = (m - 1 - i) as f64 + 0.18;
            let y1 = (m - i) as f64 - 0.18;
            let month = money_to_f64_for_drawing(r.spend_month);
            let today = money_to_f64_for_drawing(r.spend_today);
            chart
                .draw_series([
                    Rectangle::new([(0.0, y0), (month, y1)], color(i).mix(0.45).filled()),
                    Rectangle::new([(0.0, y0), (today, y1)], color(i).filled()),
                ])
                .map_err(err)?;
        }
        if rows.is_empty() {
            root.draw(&Text::new(
                "no spend this month",
                (170, 40),
                (FONT, 16).into_font().color(&AXIS),
            ))
            .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(tag_svg(svg, "spend-by-model", !rows.is_empty()))
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let head: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

/// Marks the root element so the page (and its tests) can tell which chart it is and whether it
/// has data, and makes it scale with its container.
fn tag_svg(svg: String, id: &str, has_data: bool) -> String {
    svg.replacen(
        "<svg ",
        &format!(
            "<svg data-chart=\"{id}\" data-has-data=\"{has_data}\" preserveAspectRatio=\"xMinYMin meet\" role=\"img\" "
        ),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn series() -> Series {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let m = |s: &str| Money::parse(s).unwrap();
        Series {
            range: Range::Hour,
            starts: (0..60).map(|i| t0 + TimeDelta::minutes(i)).collect(),
            bucket_seconds: 60,
            by_member: vec![NamedSeries {
                name: "alice<script>".into(),
                points: (0..60)
                    .map(|i| if i % 10 == 0 { m("0.25") } else { Money::ZERO })
                    .collect(),
                total: m("1.5"),
            }],
            by_model: vec![],
        }
    }

    #[test]
    fn draws_lines_and_escapes_names() {
        let svg = spend_over_time(&series(), SplitBy::Member).unwrap();
        assert!(svg.starts_with("<svg data-chart=\"spend-over-time\" data-has-data=\"true\""));
        assert!(svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("alice&lt;script&gt;"));
        assert!(!svg.contains("<script>"));
        let empty = spend_over_time(&series(), SplitBy::Model).unwrap();
        assert!(empty.contains("data-has-data=\"false\""));
        assert!(empty.contains("no spend in the last 1h"));
    }

    #[test]
    fn draws_bars() {
        let m = |s: &str| Money::parse(s).unwrap();
        let rows = vec![ModelRow {
            model: "openai/gpt-4o-mini".into(),
            requests_today: 2,
            spend_today: m("0.001"),
            requests_month: 3,
            spend_month: m("0.002"),
        }];
        let svg = spend_by_model(&rows).unwrap();
        assert!(svg.contains("openai/gpt-4o-mini"), "{svg}");
        assert!(svg.contains("<rect"));
        assert_eq!(money_to_f64_for_drawing(m("0.5")), 0.5);
    }
}
