//! The board for a terminal: the same facts as the page, as plain lines.

use std::fmt::Write;

use super::{Board, Host, Timeline};

pub fn render(board: &Board) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "GPU board, {} (totals since {})",
        board.generated, board.since
    );
    for h in &board.hosts {
        host(&mut out, h);
    }
    out
}

fn host(out: &mut String, h: &Host) {
    let _ = writeln!(out);
    match &h.sampled {
        Some(t) => {
            let _ = writeln!(out, "== {} (last sample {t})", h.host);
        }
        None => {
            let _ = writeln!(
                out,
                "== {}: no samples yet (`launch up` samples when it applies a leased GPU profile; `launch report` samples too)",
                h.host
            );
            return;
        }
    }
    let _ = writeln!(out, "\nnow:");
    for g in &h.gpus {
        let memory = match (g.memory_used, g.memory_total) {
            (Some(u), Some(t)) => format!("{} / {} GiB", gib(u), gib(t)),
            _ => "memory ?".into(),
        };
        let util = g.utilization.map_or("?".into(), |u| format!("{u}%"));
        let _ = writeln!(
            out,
            "  GPU {} {}  {util}  {memory}",
            g.index,
            g.name.as_deref().unwrap_or("?")
        );
        if g.holders.is_empty() {
            let _ = writeln!(out, "    free");
        }
        for holder in &g.holders {
            let lease = holder.lease.as_ref().map_or(String::new(), |l| {
                let mut s = format!("  lease {}", l.state);
                if let Some(at) = &l.at {
                    let _ = write!(s, " {at}");
                }
                if let Some(why) = &l.reason {
                    let _ = write!(s, " ({why})");
                }
                if let Some(idle) = &l.idle_for {
                    let _ = write!(s, ", idle for {idle}");
                }
                s
            });
            let _ = writeln!(
                out,
                "    {} {} ({}), SM {}%{lease}",
                holder.kind, holder.name, holder.owner, holder.sm
            );
        }
    }
    let _ = writeln!(out, "\nGPU-hours per owner:");
    for o in &h.owners {
        let _ = writeln!(
            out,
            "  {:<16} held {:.1}  busy {:.1}  reclaims {}",
            o.owner, o.held_hours, o.busy_hours, o.reclaims
        );
    }
    strip(out, "last day (one column per 30 minutes)", &h.day, 3, h);
    strip(out, "last week (one column per 4 hours)", &h.week, 4, h);
    if !h.events.is_empty() {
        let _ = writeln!(out, "\nlease events:");
        for e in &h.events {
            let _ = writeln!(
                out,
                "  {} {} {} ({}): {}",
                crate::lease::shown(e.ts),
                e.kind,
                e.name,
                e.owner,
                e.detail
            );
        }
    }
}

/// One row of letters per GPU: the owner's letter, upper case when its
/// processes were busy most of the time, `.` when no one held it.
fn strip(out: &mut String, title: &str, t: &Timeline, per_column: usize, h: &Host) {
    if t.lanes.is_empty() {
        return;
    }
    let letters: Vec<(&String, char)> = h.colors.keys().zip(('a'..='z').cycle()).collect();
    let letter = |owner: &str| {
        letters
            .iter()
            .find(|(o, _)| o.as_str() == owner)
            .map_or('?', |(_, l)| *l)
    };
    let buckets = usize::try_from((t.to - t.from) / t.bucket_seconds).unwrap_or(0);
    let columns = buckets.div_ceil(per_column);
    let _ = writeln!(
        out,
        "\n{title}, {} to {}:",
        crate::lease::shown(t.from),
        crate::lease::shown(t.to)
    );
    for lane in &t.lanes {
        let mut row = vec!['.'; columns];
        for (i, cell) in row.iter_mut().enumerate() {
            let start = t.from + (i * per_column) as i64 * t.bucket_seconds;
            let end = start + per_column as i64 * t.bucket_seconds;
            let in_cell: Vec<_> = lane
                .segments
                .iter()
                .filter(|s| s.start >= start && s.start < end)
                .collect();
            if let Some(first) = in_cell.first() {
                let busy = in_cell.iter().map(|s| s.busy).sum::<f64>() / in_cell.len() as f64;
                let l = letter(&first.owner);
                *cell = if busy >= 0.5 {
                    l.to_ascii_uppercase()
                } else {
                    l
                };
            }
        }
        let _ = writeln!(
            out,
            "  GPU {:<3} {}",
            lane.index,
            row.into_iter().collect::<String>()
        );
    }
    let legend: Vec<String> = letters.iter().map(|(o, l)| format!("{l} {o}")).collect();
    let _ = writeln!(out, "  ({}; upper case: busy)", legend.join(", "));
}

fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 30) as f64)
}
