//! The state of a stage between steps: the image so far, ARGs in scope, cache key.

use super::config::{env_get, DEFAULT_PATH};
use crate::digest::{chain_ids, Hasher};
use crate::error::Result;
use crate::layer::snapshot::ensure_snapshot;
use crate::store::types::{Descriptor, History, ImageConfig};
use crate::store::Store;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct StageState {
    pub config: ImageConfig,
    pub layers: Vec<Descriptor>,
    /// ARGs declared in this stage and their values (None: declared, no value).
    pub args: BTreeMap<String, Option<String>>,
    /// The names of `args` in the order they were first declared (BuildKit's history).
    pub arg_order: Vec<String>,
    /// Cache key of the last layer-producing step (or of the base).
    pub key: String,
    /// Timestamp for history entries of config-only steps.
    pub clock: String,
    pub cmd_set: bool,
    /// Where each variable of `config.config.env` is (its last entry): ENV and lookups
    /// cost the same with 10,000 variables as with one.
    env_at: HashMap<String, usize>,
}

fn env_index(env: &[String]) -> HashMap<String, usize> {
    env.iter()
        .enumerate()
        .map(|(i, e)| {
            (
                e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string(),
                i,
            )
        })
        .collect()
}

impl StageState {
    pub fn new(
        config: ImageConfig,
        layers: Vec<Descriptor>,
        base_key: &str,
        clock: String,
    ) -> Self {
        let mut config = config;
        let env = config.config.env.get_or_insert_with(Vec::new);
        if env_get(env, "PATH").is_none() {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        let mut h = Hasher::new();
        h.field("base", base_key.as_bytes());
        let key = h.hex();
        let env_at = env_index(config.config.env.as_deref().unwrap_or(&[]));
        StageState {
            config,
            layers,
            args: BTreeMap::new(),
            arg_order: vec![],
            key,
            clock,
            cmd_set: false,
            env_at,
        }
    }

    /// Variable lookup for expansion: ENV wins over ARG.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let env = self.config.config.env.as_deref().unwrap_or(&[]);
        let indexed = self
            .env_at
            .get(name)
            .and_then(|&i| env.get(i)?.strip_prefix(name)?.strip_prefix('='));
        match indexed {
            Some(v) => Some(v.to_string()),
            None if self.env_at.contains_key(name) => env_get(env, name), // stale index
            None => self.args.get(name).cloned().flatten(),
        }
    }

    /// Apply a config-only change (ENV through the index).
    pub fn apply(&mut self, change: super::config::Change) {
        let env_at = &mut self.env_at;
        let mut set = |env: &mut Vec<String>, k: &str, v: &str| {
            let kv = format!("{k}={v}");
            match env_at.get(k) {
                Some(&i) if i < env.len() => env[i] = kv,
                _ => {
                    env_at.insert(k.to_string(), env.len());
                    env.push(kv);
                }
            }
        };
        super::config::commit(&mut self.config.config, change, &mut self.cmd_set, &mut set);
    }

    /// Declares (or re-declares) the ARG `name`.
    pub fn set_arg(&mut self, name: &str, value: Option<String>) {
        if self.args.insert(name.to_string(), value).is_none()
            && !self.arg_order.iter().any(|n| n == name)
        {
            self.arg_order.push(name.to_string());
        }
    }

    /// BuildKit's `|N K=V ... ` before a RUN command in its history: the ARGs in scope in
    /// declaration order, each with ENV's value when ENV sets the name; "" without ARGs.
    pub fn run_history_prefix(&self) -> String {
        if self.arg_order.is_empty() {
            return String::new();
        }
        let kv: Vec<String> = self
            .arg_order
            .iter()
            .map(|k| format!("{k}={}", self.lookup(k).unwrap_or_default()))
            .collect();
        format!("|{} {} ", kv.len(), kv.join(" "))
    }

    /// ARGs with values, as KEY=VALUE (for RUN's environment and cache keys).
    pub fn arg_env(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    /// Cache key for the next layer step: parent key, instruction (after expansion),
    /// config, ARGs in scope when the step sees them (RUN), content of copied files.
    pub fn step_key(&self, instruction: &str, with_args: bool, content: &str) -> String {
        let args = if with_args {
            self.arg_env().join("\n")
        } else {
            String::new()
        };
        let cfg = serde_json::to_vec(&self.config.config).unwrap_or_default();
        let mut h = Hasher::new();
        h.field("parent", self.key.as_bytes())
            .field("instruction", instruction.as_bytes())
            .field("config", &cfg)
            .field("args", args.as_bytes())
            .field("content", content.as_bytes());
        h.hex()
    }

    pub fn history(&mut self, created_by: &str, empty: bool, created: Option<String>) {
        self.config.history.push(History {
            created: Some(created.unwrap_or_else(|| self.clock.clone())),
            created_by: Some(created_by.to_string()),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: empty,
            ..Default::default()
        });
    }

    pub fn add_layer(&mut self, layer: Descriptor, diff_id: String) {
        self.layers.push(layer);
        self.config.rootfs.diff_ids.push(diff_id);
    }

    /// Snapshot dirs of all layers, top-most first (unpacking any missing).
    pub fn snapshots(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let chains = chain_ids(&self.config.rootfs.diff_ids);
        let mut out = vec![];
        let diffs = &self.config.rootfs.diff_ids;
        for ((c, d), l) in chains.iter().zip(diffs).zip(&self.layers) {
            out.push(ensure_snapshot(store, c, d, l)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Chain id the next layer with `diff_id` would have.
    pub fn next_chain(&self, diff_id: &str) -> String {
        let mut ids = self.config.rootfs.diff_ids.clone();
        ids.push(diff_id.to_string());
        chain_ids(&ids).pop().unwrap_or_default()
    }
}
