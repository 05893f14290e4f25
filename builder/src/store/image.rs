//! Images in the store: resolve a name or ID, write manifests, tag, untag, list.

use super::reference::normalize;
use super::types::*;
use super::Store;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// A resolved image: its manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_desc: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

impl Image {
    /// Docker's IMAGE ID: the config digest.
    pub fn id(&self) -> &str {
        &self.manifest.config.digest
    }
}

/// Name of an index entry (its ref.name annotation).
pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations
        .as_ref()?
        .get(ANN_REF_NAME)
        .map(|s| s.as_str())
}

impl Store {
    /// Load the image a manifest descriptor points to.
    pub fn load_manifest(&self, desc: &Descriptor) -> Result<Image> {
        let manifest: Manifest = self.read_json(&desc.digest)?;
        let config: ImageConfig = self.read_json(&manifest.config.digest)?;
        let mut d = desc.clone();
        d.annotations = None;
        Ok(Image {
            manifest_desc: d,
            manifest,
            config,
        })
    }

    /// Find an image by name[:tag], full digest, or an image ID (prefix, ≥ 4 hex).
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let idx = self.index()?;
        if let Ok(name) = normalize(reference) {
            if let Some(d) = idx.manifests.iter().find(|d| ref_name(d) == Some(&name)) {
                return self.load_manifest(d);
            }
        }
        let want = reference.trim_start_matches("sha256:");
        if want.len() >= 4 && want.bytes().all(|b| b.is_ascii_hexdigit()) {
            for d in &idx.manifests {
                if d.digest.trim_start_matches("sha256:").starts_with(want) {
                    return self.load_manifest(d);
                }
                // A broken entry is not this image: it must not hide the others.
                let Ok(img) = self.load_manifest(d) else {
                    continue;
                };
                if img.id().trim_start_matches("sha256:").starts_with(want) {
                    return Ok(img);
                }
            }
        }
        Err(Error::ImageNotFound(reference.to_string()))
    }

    /// Write config + manifest for `layers`; returns the image (not yet tagged).
    pub fn write_image(&self, config: &ImageConfig, layers: &[Descriptor]) -> Result<Image> {
        let cdesc = self.put_json(MT_CONFIG, config)?;
        self.write_manifest(cdesc, config, layers)
    }

    /// Write the manifest for an already-stored config blob.
    pub fn write_manifest(
        &self,
        cdesc: Descriptor,
        config: &ImageConfig,
        layers: &[Descriptor],
    ) -> Result<Image> {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MT_MANIFEST.into()),
            config: cdesc,
            layers: layers.to_vec(),
            annotations: None,
        };
        let mdesc = self.put_json(MT_MANIFEST, &manifest)?;
        Ok(Image {
            manifest_desc: mdesc,
            manifest,
            config: config.clone(),
        })
    }

    /// Point `name` at the manifest (replacing whatever it named before).
    pub fn tag(&self, manifest: &Descriptor, name: &str) -> Result<String> {
        let name = normalize(name)?;
        let mut d = manifest.clone();
        let mut ann = BTreeMap::new();
        ann.insert(ANN_REF_NAME.to_string(), name.clone());
        d.annotations = Some(ann);
        d.platform = Some(Platform {
            architecture: host_arch().into(),
            os: "linux".into(),
        });
        self.update_index(|idx| {
            idx.manifests.retain(|e| ref_name(e) != Some(&name));
            idx.manifests.push(d);
            Ok(())
        })?;
        Ok(name)
    }

    /// Remove tags: by name, or every tag of an image ID. Returns the names removed.
    pub fn untag(&self, reference: &str) -> Result<Vec<String>> {
        let by_name = normalize(reference).ok();
        let tagged = by_name.as_ref().is_some_and(|n| {
            let idx = self.index().unwrap_or_default();
            idx.manifests.iter().any(|e| ref_name(e) == Some(n))
        });
        // By name, the entry goes without reading its image (a broken one can be removed).
        let digest = match tagged {
            true => String::new(),
            false => self.resolve(reference)?.manifest_desc.digest,
        };
        self.update_index(|idx| {
            let named = by_name
                .as_ref()
                .is_some_and(|n| idx.manifests.iter().any(|e| ref_name(e) == Some(n)));
            let mut removed = vec![];
            idx.manifests.retain(|e| {
                let hit = if named {
                    ref_name(e) == by_name.as_deref()
                } else {
                    e.digest == digest
                };
                if hit {
                    removed.push(ref_name(e).unwrap_or(&e.digest).to_string());
                }
                !hit
            });
            Ok(removed)
        })
    }

    /// (name, image) for every tagged image, in index order.
    pub fn list(&self) -> Result<Vec<(String, Image)>> {
        let idx = self.index()?;
        let mut out = vec![];
        for d in &idx.manifests {
            if d.media_type != MT_MANIFEST && d.media_type != MT_DOCKER_MANIFEST {
                continue;
            }
            let name = ref_name(d).unwrap_or("<none>:<none>").to_string();
            // One broken image is reported and skipped; it never hides the others.
            match self.load_manifest(d) {
                Ok(img) => out.push((name, img)),
                Err(e) => eprintln!("warning: image {name} ({}) skipped: {e}", d.digest),
            }
        }
        Ok(out)
    }
}
