//! prune [--cache [--keep-storage SIZE] [--filter until=DURATION]]

use crate::error::{Error, Result};
use crate::store::cachegc::{Bounds, CachePolicy};
use crate::store::Store;
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Also drop the build cache (all of it, unless bounded by the flags below)
    #[arg(long)]
    pub cache: bool,
    /// With --cache: keep the cache's newest records up to SIZE (bytes, or with a unit:
    /// 512MB, 10GB; KB/MB/GB are 1024-based, as docker's)
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// With --cache: until=DURATION drops only records unused for longer than DURATION
    /// (Go durations: 24h, 90m, 1h30m, 45s)
    #[arg(long, value_name = "until=DURATION")]
    pub filter: Vec<String>,
}

/// "10GB", "512mb", "1.5g", "4096": docker's RAMInBytes (binary units).
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    Some((n * (1u64 << shift) as f64) as u64)
}

/// A Go duration: one or more NUMBER UNIT (h, m, s, ms).
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|&n| n > 0)?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += v * match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

fn policy(a: &PruneArgs) -> Result<CachePolicy> {
    let mut b = Bounds::default();
    if let Some(s) = &a.keep_storage {
        b.keep_bytes = Some(parse_size(s).ok_or_else(|| {
            Error::invalid(
                format!("--keep-storage {s}"),
                "expected a size: bytes, or a number with KB, MB, GB or TB",
            )
        })?);
    }
    for f in &a.filter {
        let bad = |why: &str| Error::invalid(format!("--filter {f}"), why.to_string());
        match f.split_once('=') {
            Some(("until", d)) => {
                b.until = Some(
                    parse_duration(d)
                        .ok_or_else(|| bad("expected a duration such as 24h, 90m, 1h30m or 45s"))?,
                )
            }
            _ => return Err(bad("the only filter is until=DURATION")),
        }
    }
    let bounded = b != Bounds::default();
    Ok(match (a.cache, bounded) {
        (false, true) => {
            return Err(Error::invalid(
                "prune --keep-storage/--filter",
                "they bound the build cache: add --cache",
            ))
        }
        (false, false) => CachePolicy::Keep,
        (true, false) => CachePolicy::All,
        (true, true) => CachePolicy::Bounded(b),
    })
}

pub fn run(store: &Store, a: PruneArgs) -> Result<i32> {
    let r = store.prune_with(&policy(&a)?)?;
    println!(
        "Deleted {} blobs ({} bytes), {} snapshots, {} cache records",
        r.blobs, r.bytes, r.snapshots, r.cache_records
    );
    if let Some((before, after)) = r.cache_bytes {
        println!("Build cache: {after} bytes (was {before})");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512KB"), Some(512 << 10));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("10 GB"), Some(10 << 30));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5q"), None);
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("3d"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration(""), None);
    }
}
