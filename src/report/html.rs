//! The board as one static page: HTML with inline SVG, no script, nothing
//! fetched (its Content-Security-Policy forbids it). Each owner has one
//! colour of a colour-blind safe palette; busy time is drawn as the filled
//! height of a bar, not by hue, so it reads in grey too.

use std::fmt::Write;

use super::{Board, Host, OTHERS, Timeline};
use crate::lease::shown;

/// Escapes text for HTML and SVG, in elements and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1040px}\
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}\
h3{font-size:15px;margin:20px 0 6px}table{border-collapse:collapse}\
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}\
th{font-weight:600}.num{text-align:right}.swatch{display:inline-block;width:12px;height:12px;\
margin-right:4px;vertical-align:-1px;border:1px solid #555}.legend span{margin-right:14px}\
svg text{font:12px system-ui,sans-serif;fill:#222}.muted{color:#666}";

pub fn render(board: &Board) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>GPU board</title><style>{STYLE}</style></head><body>\n\
         <h1>GPU board</h1>\n<p class=\"muted\">Made {} by <code>launch report</code>; totals since {}.</p>\n",
        board.generated, board.since
    );
    for h in &board.hosts {
        host(&mut out, h);
    }
    out.push_str("</body></html>\n");
    out
}

fn color<'a>(h: &'a Host, owner: &str) -> &'a str {
    h.colors.get(owner).map_or(OTHERS, String::as_str)
}

fn host(out: &mut String, h: &Host) {
    let _ = writeln!(
        out,
        "<section class=\"host\" data-host=\"{0}\"><h2>{0}</h2>",
        escape(&h.host)
    );
    let Some(sampled) = &h.sampled else {
        out.push_str(
            "<p class=\"empty\">No samples yet: <code>launch up</code> samples the GPUs when it applies a \
             leased GPU profile, and <code>launch report</code> does when it runs on the host.</p></section>\n",
        );
        return;
    };
    let _ = writeln!(out, "<p class=\"muted\">Last sample {sampled}.</p>");
    legend(out, h);
    now(out, h);
    out.push_str("<h3>Last day</h3>\n");
    timeline(out, h, &h.day, "day");
    out.push_str("<h3>Last week</h3>\n");
    timeline(out, h, &h.week, "week");
    owners(out, h);
    events(out, h);
    out.push_str("</section>\n");
}

fn legend(out: &mut String, h: &Host) {
    out.push_str("<p class=\"legend\">");
    for (owner, c) in &h.colors {
        let _ = write!(
            out,
            "<span><i class=\"swatch\" style=\"background:{c}\"></i>{}</span>",
            escape(owner)
        );
    }
    out.push_str(
        "<span class=\"muted\">Light: held. Filled height: the share of that time its processes used the GPU.</span></p>\n",
    );
}

fn now(out: &mut String, h: &Host) {
    out.push_str(
        "<h3>Now</h3>\n<table class=\"now\"><tr><th>GPU</th><th>model</th><th class=\"num\">util</th>\
         <th class=\"num\">memory</th><th>holder</th><th>owner</th><th class=\"num\">SM</th><th>lease</th></tr>\n",
    );
    for g in &h.gpus {
        let memory = match (g.memory_used, g.memory_total) {
            (Some(u), Some(t)) => format!("{:.1} / {:.1} GiB", gib(u), gib(t)),
            _ => "?".into(),
        };
        let util = g.utilization.map_or("?".into(), |u| format!("{u}%"));
        let cells = |holder: &str, owner: &str, sm: &str, lease: &str| {
            format!(
                "<tr class=\"gpu\" data-index=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{util}</td>\
                 <td class=\"num\">{memory}</td><td>{holder}</td><td>{owner}</td><td class=\"num\">{sm}</td><td>{lease}</td></tr>\n",
                g.index,
                g.index,
                escape(g.name.as_deref().unwrap_or("?")),
            )
        };
        if g.holders.is_empty() {
            out.push_str(&cells("<span class=\"muted\">free</span>", "", "", ""));
        }
        for holder in &g.holders {
            let what = match holder.kind.as_str() {
                "launch" => escape(&holder.name),
                "container" => format!("container {}", escape(&holder.name)),
                _ => format!("process {}", escape(&holder.name)),
            };
            let owner = format!(
                "<i class=\"swatch\" style=\"background:{}\"></i>{}",
                color(h, &holder.owner),
                escape(&holder.owner)
            );
            let lease = holder.lease.as_ref().map_or(String::new(), |l| {
                let mut s = escape(&l.state);
                if let Some(at) = &l.at {
                    let verb = if l.state == "reclaimed" { "at" } else { "ends" };
                    let _ = write!(s, ", {verb} {at}");
                }
                if let Some(why) = &l.reason {
                    let _ = write!(s, " ({})", escape(why));
                }
                if let Some(idle) = &l.idle_for {
                    let _ = write!(s, "; idle for {idle}");
                }
                s
            });
            out.push_str(&cells(&what, &owner, &format!("{}%", holder.sm), &lease));
        }
    }
    out.push_str("</table>\n");
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 10.0;
const LANE: f64 = 22.0;
const GAP: f64 = 6.0;

fn timeline(out: &mut String, h: &Host, t: &Timeline, range: &str) {
    let lanes = t.lanes.len().max(1) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let bottom = TOP + lanes * (LANE + GAP);
    let height = bottom + 44.0;
    let span = (t.to - t.from).max(1) as f64;
    let x = |at: i64| LEFT + (at - t.from) as f64 / span * plot;
    let _ = writeln!(
        out,
        "<svg class=\"timeline\" data-range=\"{range}\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         role=\"img\" aria-label=\"Who held each GPU over the last {range}, and how busy\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, lane) in t.lanes.iter().enumerate() {
        let y = TOP + i as f64 * (LANE + GAP);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">GPU {}</text>",
            LEFT - 8.0,
            y + LANE / 2.0 + 4.0,
            lane.index
        );
        let _ = writeln!(
            out,
            "<rect x=\"{LEFT}\" y=\"{y}\" width=\"{plot}\" height=\"{LANE}\" fill=\"#f4f4f4\"/>"
        );
        let w = (t.bucket_seconds as f64 / span * plot).max(0.5);
        for s in &lane.segments {
            let c = color(h, &s.owner);
            let x0 = x(s.start);
            let tip = format!(
                "{} ({}), {} from {}: busy {:.0}%{}",
                s.holder,
                s.owner,
                if range == "day" {
                    "10 minutes"
                } else {
                    "an hour"
                },
                shown(s.start),
                s.busy * 100.0,
                if s.others > 0 {
                    format!(", with {} other holder(s)", s.others)
                } else {
                    String::new()
                }
            );
            let _ = writeln!(
                out,
                "<rect class=\"held\" data-owner=\"{}\" x=\"{x0:.2}\" y=\"{y}\" width=\"{w:.2}\" height=\"{LANE}\" fill=\"{c}\" fill-opacity=\"0.35\"><title>{}</title></rect>",
                escape(&s.owner),
                escape(&tip)
            );
            if s.busy > 0.0 {
                let bh = LANE * s.busy;
                let _ = writeln!(
                    out,
                    "<rect class=\"busy\" data-owner=\"{}\" x=\"{x0:.2}\" y=\"{:.2}\" width=\"{w:.2}\" height=\"{bh:.2}\" fill=\"{c}\"/>",
                    escape(&s.owner),
                    y + LANE - bh
                );
            }
        }
    }
    // The time axis: ticks every 3 hours (day) or every day (week), UTC.
    let step = if range == "day" { 3 * 3600 } else { 86_400 };
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#555\"/>",
        LEFT + plot
    );
    let mut tick = t.from - t.from.rem_euclid(step) + step;
    while tick < t.to {
        let label = shown(tick);
        let label = if range == "day" {
            label.get(11..16).unwrap_or(&label).to_string()
        } else {
            label.get(5..10).unwrap_or(&label).to_string()
        };
        let _ = writeln!(
            out,
            "<line x1=\"{0:.2}\" y1=\"{bottom}\" x2=\"{0:.2}\" y2=\"{1}\" stroke=\"#555\"/><text x=\"{0:.2}\" y=\"{2}\" text-anchor=\"middle\">{label}</text>",
            x(tick),
            bottom + 5.0,
            bottom + 18.0
        );
        tick += step;
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time (UTC)</text>\
         <text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">GPU</text></svg>",
        LEFT + plot / 2.0,
        bottom + 38.0,
        TOP + (bottom - TOP) / 2.0,
        TOP + (bottom - TOP) / 2.0
    );
}

fn owners(out: &mut String, h: &Host) {
    let _ = writeln!(out, "<h3>GPU-hours per owner</h3>");
    if h.owners.is_empty() {
        out.push_str("<p class=\"muted\">None in this period.</p>\n");
        return;
    }
    let left = 120.0;
    let plot = WIDTH - left - 170.0;
    let row = 26.0;
    let bottom = TOP + h.owners.len() as f64 * row;
    let height = bottom + 44.0;
    let max = h
        .owners
        .iter()
        .map(|o| o.held_hours)
        .fold(0.0, f64::max)
        .max(0.1);
    let x = |hours: f64| left + hours / max * plot;
    let _ = writeln!(
        out,
        "<svg class=\"owners\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"GPU-hours held and busy per owner\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, o) in h.owners.iter().enumerate() {
        let y = TOP + i as f64 * row;
        let c = color(h, &o.owner);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar held\" data-owner=\"{}\" data-hours=\"{:.1}\" x=\"{left}\" y=\"{y}\" width=\"{:.2}\" height=\"18\" fill=\"{c}\" fill-opacity=\"0.35\" stroke=\"{c}\"/>\
             <rect class=\"bar busy\" data-owner=\"{}\" data-hours=\"{:.1}\" x=\"{left}\" y=\"{y}\" width=\"{:.2}\" height=\"18\" fill=\"{c}\"/>\
             <text x=\"{:.2}\" y=\"{}\">{:.1} held, {:.1} busy</text>",
            left - 8.0,
            y + 13.0,
            escape(&o.owner),
            escape(&o.owner),
            o.held_hours,
            x(o.held_hours) - left,
            escape(&o.owner),
            o.busy_hours,
            x(o.busy_hours) - left,
            x(o.held_hours) + 6.0,
            y + 13.0,
            o.held_hours,
            o.busy_hours
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#555\"/>",
        left + plot
    );
    for i in 0..=4 {
        let hours = max * f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{0:.2}\" y1=\"{bottom}\" x2=\"{0:.2}\" y2=\"{1}\" stroke=\"#555\"/><text x=\"{0:.2}\" y=\"{2}\" text-anchor=\"middle\">{hours:.1}</text>",
            x(hours),
            bottom + 5.0,
            bottom + 18.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">GPU-hours</text>\
         <text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">owner</text></svg>",
        left + plot / 2.0,
        bottom + 38.0,
        TOP + (bottom - TOP) / 2.0,
        TOP + (bottom - TOP) / 2.0
    );
    out.push_str(
        "<table class=\"owners\"><tr><th>owner</th><th class=\"num\">GPU-hours held</th><th class=\"num\">busy</th>\
         <th class=\"num\">idle</th><th class=\"num\">reclaims</th></tr>\n",
    );
    for o in &h.owners {
        let idle = if o.held_hours > 0.0 {
            (o.held_hours - o.busy_hours) / o.held_hours * 100.0
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "<tr data-owner=\"{0}\"><td>{0}</td><td class=\"num held\">{1:.1}</td><td class=\"num busy\">{2:.1}</td>\
             <td class=\"num\">{idle:.0}%</td><td class=\"num reclaims\">{3}</td></tr>",
            escape(&o.owner),
            o.held_hours,
            o.busy_hours,
            o.reclaims
        );
    }
    out.push_str("</table>\n");
}

fn events(out: &mut String, h: &Host) {
    if h.events.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Lease events</h3>\n<table class=\"events\"><tr><th>when</th><th>what</th><th>container</th><th>owner</th><th>detail</th></tr>\n",
    );
    for e in &h.events {
        let _ = writeln!(
            out,
            "<tr class=\"event\" data-kind=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.kind),
            shown(e.ts),
            escape(&e.kind),
            escape(&e.name),
            escape(&e.owner),
            escape(&e.detail)
        );
    }
    out.push_str("</table>\n");
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}
