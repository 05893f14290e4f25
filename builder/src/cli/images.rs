//! images, inspect, save.

use crate::error::{Error, Result};
use crate::store::archive::{save as save_archive, ArchiveFormat};
use crate::store::reference::split;
use crate::store::Store;
use crate::timefmt;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only images of this repository (or name:tag)
    pub repository: Option<String>,
    /// Show only IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full IDs
    #[arg(long)]
    pub no_trunc: bool,
}

/// Sizes as docker prints them (decimal units, 3 significant digits).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{:.3}", v);
    let s = format!("{}", s.parse::<f64>().unwrap_or(v));
    let prec = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let r = format!("{:.*}", prec, v);
    let r = r.trim_end_matches('0').trim_end_matches('.').to_string();
    let _ = s;
    format!("{r}{}", units[i])
}

pub fn images(store: &Store, a: ImagesArgs) -> Result<i32> {
    let now = timefmt::now_unix();
    let filter = a.repository.as_deref().map(split);
    if !a.quiet {
        println!(
            "{:<30} {:<12} {:<14} {:<22} SIZE",
            "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
        );
    }
    for (name, img) in store.list()? {
        let (repo, tag) = split(&name);
        if let Some((frepo, ftag)) = filter {
            if frepo != repo || ftag.is_some_and(|t| Some(t) != tag) {
                continue;
            }
        }
        let id = img.id().trim_start_matches("sha256:");
        let id = if a.no_trunc { img.id() } else { &id[..12] };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let created = img
            .config
            .created
            .as_deref()
            .and_then(timefmt::parse_rfc3339)
            .map(|t| timefmt::ago(t, now))
            .unwrap_or_else(|| "N/A".into());
        let size: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
        println!(
            "{:<30} {:<12} {:<14} {:<22} {}",
            repo,
            tag.unwrap_or("<none>"),
            id,
            created,
            human_size(size)
        );
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn inspect(store: &Store, a: InspectArgs) -> Result<i32> {
    let mut out = vec![];
    for r in &a.images {
        let img = store.resolve(r)?;
        let names: Vec<String> = store
            .list()?
            .into_iter()
            .filter(|(_, i)| i.manifest_desc.digest == img.manifest_desc.digest)
            .map(|(n, _)| n)
            .collect();
        out.push(serde_json::json!({
            "Id": img.id(),
            "RepoTags": names,
            "Digest": img.manifest_desc.digest,
            "Created": img.config.created,
            "Architecture": img.config.architecture,
            "Os": img.config.os,
            "Size": img.manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            "Config": img.config.config,
            "RootFS": {"Type": "layers", "Layers": img.config.rootfs.diff_ids},
            "History": img.config.history,
            "Manifest": img.manifest,
        }));
    }
    let s = serde_json::to_string_pretty(&out).map_err(|e| Error::Build(e.to_string()))?;
    println!("{s}");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Output file
    #[arg(short, long)]
    pub output: PathBuf,
    /// oci-archive or docker-archive
    #[arg(long, default_value = "oci-archive")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn parse_format(s: &str) -> Result<ArchiveFormat> {
    match s {
        "oci-archive" | "oci" => Ok(ArchiveFormat::Oci),
        "docker-archive" | "docker" => Ok(ArchiveFormat::Docker),
        _ => Err(Error::invalid(
            format!("archive format {s:?}"),
            "expected oci-archive or docker-archive",
        )),
    }
}

pub fn save(store: &Store, a: SaveArgs) -> Result<i32> {
    let fmt = parse_format(&a.format)?;
    let mut imgs = vec![];
    for r in &a.images {
        let img = store.resolve(r)?;
        let name = crate::store::reference::normalize(r).unwrap_or_else(|_| r.clone());
        imgs.push((name, img));
    }
    save_archive(store, &imgs, fmt, &a.output)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::human_size(0), "0B");
        assert_eq!(super::human_size(1_234_567), "1.23MB");
        assert_eq!(super::human_size(123_456_789), "123MB");
    }
}
