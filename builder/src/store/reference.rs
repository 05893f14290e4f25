//! Image names: "name[:tag]" normalised to "name:tag" (tag defaults to latest).

use crate::error::{Error, Result};

/// Normalise a user-given name; checks the OCI ref.name grammar.
pub fn normalize(name: &str) -> Result<String> {
    let (repo, tag) = split(name);
    let tag = tag.unwrap_or("latest");
    let ok_repo = !repo.is_empty()
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        });
    let ok_tag = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && tag.as_bytes()[0] != b'.'
        && tag.as_bytes()[0] != b'-';
    if !ok_repo || !ok_tag || repo.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Error::invalid(
            format!("invalid reference {name:?}"),
            "expected NAME[:TAG] with lowercase name components",
        ));
    }
    Ok(format!("{repo}:{tag}"))
}

/// ("repo", Some("tag")) — the tag is after the last ':' that follows the last '/'.
pub fn split(name: &str) -> (&str, Option<&str>) {
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names() {
        assert_eq!(normalize("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            normalize("localhost:5000/a/b:v1").unwrap(),
            "localhost:5000/a/b:v1"
        );
        assert_eq!(split("localhost:5000/a"), ("localhost:5000/a", None));
        assert!(normalize("Bad").is_err());
        assert!(normalize("a:").is_err());
        assert!(normalize("../x").is_err());
    }
}
