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
    let prec = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let r = format!("{:.*}", prec, v);
    let r = if r.contains('.') {
        r.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        r
    };
    format!("{r}{}", units[i])
}

/// Columns as docker's tabwriter lays them out: at least 20 wide, 3 spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let n = rows.first().map(|r| r.len()).unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(20)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == n {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

pub fn images(store: &Store, a: ImagesArgs) -> Result<i32> {
    let now = timefmt::now_unix();
    let filter = a.repository.as_deref().map(split);
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        .map(String::from)
        .to_vec()];
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
        // docker's SIZE: the layers' uncompressed content (store::sizes).
        let size = store.image_size(&img)?;
        rows.push(vec![
            repo.to_string(),
            tag.unwrap_or("<none>").to_string(),
            id.to_string(),
            created,
            human_size(size),
        ]);
    }
    if !a.quiet {
        print!("{}", table(&rows));
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
            "Size": store.image_size(&img)?,
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
        assert_eq!(super::human_size(158_000_000), "158MB");
        assert_eq!(super::human_size(4_608), "4.61kB");
    }
}
