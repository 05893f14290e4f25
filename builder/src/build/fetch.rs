//! ADD <url>: download over http(s) (proxy from the environment, the system's CA
//! store), check `--checksum=sha256:…`, keep the Last-Modified time as the mtime.

use crate::digest::HashWriter;
use crate::error::{Error, IoContext, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// File name an URL is saved under: its last path segment.
pub fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    match after_host.rsplit('/').next() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "index.html".to_string(),
    }
}

/// "Sun, 06 Nov 1994 08:49:37 GMT" → unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, d, mon, y, hms, _] = parts.as_slice() else {
        return None;
    };
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = M.iter().position(|x| x == mon)? + 1;
    let iso = format!("{y}-{m:02}-{:02}T{hms}Z", d.parse::<u32>().ok()?);
    crate::timefmt::parse_rfc3339(&iso)
}

/// Download `url` into `dir`; returns the file's path.
pub fn fetch(url: &str, dir: &Path, checksum: Option<&str>) -> Result<PathBuf> {
    let fail = |why: String| Error::invalid(format!("ADD {url}"), why);
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let loopback = host == "localhost" || host.starts_with("127.") || host == "[";
    let agent = ureq::AgentBuilder::new()
        .try_proxy_from_env(!loopback)
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(300))
        .build();
    let resp = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let mtime = resp.header("Last-Modified").and_then(parse_http_date);
    let path = dir.join(file_name(url));
    let f = File::create(&path).at(&path)?;
    let mut w = HashWriter::new(BufWriter::new(f));
    std::io::copy(&mut resp.into_reader(), &mut w).map_err(|e| fail(e.to_string()))?;
    let (buf, digest, _) = w.finish();
    buf.into_inner()
        .map_err(|e| e.into_error())
        .at(&path)?
        .flush()
        .at(&path)?;
    if let Some(want) = checksum {
        if want != digest {
            return Err(fail(format!(
                "checksum mismatch: expected {want}, got {digest}"
            )));
        }
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).at(&path)?;
    if let Some(t) = mtime {
        super::fsutil::set_mtime(&path, t, 0)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_and_dates() {
        assert_eq!(file_name("https://x.org/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(file_name("http://x.org/"), "index.html");
        assert_eq!(file_name("http://x.org"), "index.html");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
    }
}
