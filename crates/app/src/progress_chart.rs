//! A batch's progress over time: completed and failed requests against
//! time, drawn as inline SVG (no chart library in the WASM), with the
//! current rate and the time left at that rate.

use leptos::prelude::*;

use super::format;
use crate::i18n::{msg, t, tf, Key, Msg};
use batchboard_core::progress::{rate_and_eta, ProgressPoint};

const W: f64 = 600.0;
const H: f64 = 140.0;
/// Room for the axis labels.
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 20.0;

/// `points` as an SVG polyline of `value` against time.
fn line(
    points: &[ProgressPoint],
    t0: i64,
    t1: i64,
    top: u64,
    value: fn(&ProgressPoint) -> u64,
) -> String {
    let span = (t1 - t0).max(1) as f64;
    let top = top.max(1) as f64;
    points
        .iter()
        .map(|p| {
            let x = PAD_L + (p.at - t0) as f64 / span * (W - PAD_L);
            let y = (H - PAD_B) * (1.0 - value(p) as f64 / top);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chart and its summary; nothing until there are two observations.
#[component]
pub fn ProgressChart(points: Vec<ProgressPoint>, finished: bool) -> impl IntoView {
    let (Some(first), Some(last)) = (points.first().copied(), points.last().copied()) else {
        return ().into_any();
    };
    if points.len() < 2 {
        return ().into_any();
    }
    let (t0, t1) = (first.at, last.at.max(first.at + 1));
    let top = last.total.max(last.done());
    let completed = line(&points, t0, t1, top, |p| p.completed);
    let failed = line(&points, t0, t1, top, |p| p.failed);
    let summary = match (finished, rate_and_eta(&points)) {
        (true, _) => msg(
            &Msg::counted(Key::ChartDoneInOne, Key::ChartDoneInOther, last.done())
                .arg("duration", format::duration(last.at - first.at)),
        ),
        (false, Some((rate, eta))) => msg(&Msg::counted(
            Key::ChartRateOne,
            Key::ChartRateOther,
            (rate * 60.0).round() as u64,
        )
        .arg("eta", format::duration(eta))),
        (false, None) => t(Key::ChartNoneYet).to_string(),
    };
    let label = tf(
        Key::ChartAriaLabel,
        &[
            ("completed", &format::count(last.completed)),
            ("total", &format::count(last.total)),
            ("failed", &format::count(last.failed)),
            ("summary", &summary),
        ],
    );
    let base = H - PAD_B;
    view! {
        <section class="panel" data-testid="progress-chart">
            <h2>{t(Key::ChartTitle)}</h2>
            <svg class="chart" viewBox=format!("0 0 {W} {H}") role="img" aria-label=label>
                <line class="axis" x1=PAD_L y1="0" x2=PAD_L y2=base />
                <line class="axis" x1=PAD_L y1=base x2=W y2=base />
                <text class="tick" x=PAD_L - 6.0 y="10" text-anchor="end">{format::count(top)}</text>
                <text class="tick" x=PAD_L - 6.0 y=base text-anchor="end">"0"</text>
                <text class="tick" x=PAD_L y=H - 4.0>{format::absolute(t0)}</text>
                <text class="tick" x=W y=H - 4.0 text-anchor="end">{format::absolute(t1)}</text>
                <polyline class="done" points=completed />
                <polyline class="failed" points=failed />
            </svg>
            <p class="muted" data-testid="progress-rate">
                <span class="key key-done">{t(Key::ChartCompleted)}</span>
                " "
                <span class="key key-failed">{t(Key::ChartFailed)}</span>
                " · "
                {summary}
            </p>
        </section>
    }
    .into_any()
}
