//! Stages: resolve bases, run each instruction, build only what the target needs.

use super::state::StageState;
use super::Ctx;
use crate::dockerfile::parser::parse_instruction;
use crate::dockerfile::{expand, Instruction};
use crate::error::{Error, Result};
use crate::plan::stages::{deps, needed, stage_index};
use crate::store::types::ImageConfig;
use crate::store::Image;
use crate::timefmt;

/// Build the target stage (and the stages it needs); write its image.
pub fn build_all(cx: &Ctx) -> Result<Image> {
    let n = cx.df.stages.len();
    let target = match &cx.opts.target {
        None => n - 1,
        Some(t) => stage_index(&cx.df, t, n)
            .filter(|&i| cx.df.stages[i].name.is_some() || t.parse::<usize>().is_ok())
            .ok_or_else(|| Error::invalid(format!("--target {t:?}"), "no stage with that name"))?,
    };
    if let Some(s) = cx.store.session() {
        s.set_target(target);
    }
    let bases: Vec<String> = (0..n).map(|i| base_ref(cx, i)).collect::<Result<_>>()?;
    let base_of = |i: usize| bases[i].clone();
    let mut todo = needed(&cx.df, target, &base_of);
    let mut results: Vec<Option<StageState>> = vec![None; n];
    // Waves: every stage whose dependencies are built runs now, concurrently.
    while !todo.is_empty() {
        let (ready, rest): (Vec<usize>, Vec<usize>) = todo.iter().partition(|&&i| {
            deps(&cx.df, i, &base_of)
                .iter()
                .all(|&d| results[d].is_some())
        });
        if ready.is_empty() {
            let i = todo[0];
            let name = cx.df.stages[i]
                .name
                .clone()
                .unwrap_or_else(|| i.to_string());
            return Err(Error::Build(format!(
                "circular dependency detected on stage: {name}"
            )));
        }
        for batch in ready.chunks(MAX_PARALLEL) {
            let done = run_batch(cx, batch, &bases, &results);
            for (i, r) in done {
                results[i] = Some(r?);
            }
        }
        todo = rest;
    }
    let st = results[target]
        .take()
        .ok_or_else(|| Error::Build("the target stage was not built".into()))?;
    let mut config = st.config;
    config.created = Some(st.clock.clone());
    if !cx.opts.labels.is_empty() {
        let labels = config.config.labels.get_or_insert_with(Default::default);
        labels.extend(cx.opts.labels.clone());
    }
    cx.store.write_image(&config, &st.layers)
}

/// Stages built at once, at most (a Dockerfile may hold thousands of independent ones).
const MAX_PARALLEL: usize = 16;

/// A stage's thread stack: its walks of deep trees recurse (bounded by PATH_MAX).
const STAGE_STACK: usize = 16 << 20;

/// Builds `batch` (stages whose dependencies are built), each on a thread of its own.
fn run_batch(
    cx: &Ctx,
    batch: &[usize],
    bases: &[String],
    results: &[Option<StageState>],
) -> Vec<(usize, Result<StageState>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .iter()
            .map(|&i| {
                let h = std::thread::Builder::new()
                    .name(format!("stage-{i}"))
                    .stack_size(STAGE_STACK)
                    .spawn_scoped(s, move || build_stage(cx, i, &bases[i], results));
                (i, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(i, h)| {
                let r = match h {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|_| Err(Error::Build("stage thread panicked".into()))),
                    Err(e) => Err(Error::Build(format!("cannot start stage {i}: {e}"))),
                };
                (i, r)
            })
            .collect()
    })
}

fn base_ref(cx: &Ctx, i: usize) -> Result<String> {
    let s = &cx.df.stages[i];
    let env = |n: &str| cx.meta.get(n).cloned();
    let b = expand::word(&s.base, &env, cx.df.escape)
        .map_err(|e| Error::invalid(format!("{}:{}", cx.file_name, s.from_line), e))?;
    if b.is_empty() {
        return Err(Error::invalid(
            format!("{}:{}", cx.file_name, s.from_line),
            format!("base name ({}) should not be blank", s.base),
        ));
    }
    Ok(b)
}

/// The result of stage `j`, which `name` refers to.
pub fn built(cx: &Ctx, results: &[Option<StageState>], j: usize, name: &str) -> Result<StageState> {
    results[j].clone().ok_or_else(|| {
        Error::invalid(
            format!("{}: --from={name}", cx.file_name),
            "a stage named through a variable the planner cannot see; name it literally",
        )
    })
}

pub fn now_or_epoch(cx: &Ctx) -> String {
    timefmt::rfc3339(cx.opts.epoch.unwrap_or_else(timefmt::now_unix))
}

fn stage_label(cx: &Ctx, i: usize, k: usize, total: usize) -> String {
    let multi = cx.df.stages.len() > 1;
    match (&cx.df.stages[i].name, multi) {
        (Some(n), true) => format!("[{n} {k}/{total}]"),
        (None, true) => format!("[stage-{i} {k}/{total}]"),
        _ => format!("[{k}/{total}]"),
    }
}

fn base_state(
    cx: &Ctx,
    i: usize,
    base: &str,
    results: &[Option<StageState>],
) -> Result<(StageState, Vec<String>)> {
    if let Some(j) = stage_index(&cx.df, base, i) {
        let mut st = built(cx, results, j, base)?;
        // A stage built FROM another inherits the ARGs in scope there (BuildKit appends
        // the base's build args to the child's; docs: "inherited from parent stages").
        st.cmd_set = false;
        return Ok((st, vec![]));
    }
    if base == "scratch" {
        let clock = cx
            .opts
            .epoch
            .map(timefmt::rfc3339)
            .unwrap_or_else(|| timefmt::rfc3339(0));
        return Ok((
            StageState::new(ImageConfig::empty(), vec![], "scratch", clock),
            vec![],
        ));
    }
    let img = cx.store.resolve(base).map_err(|e| match e {
        Error::ImageNotFound(_) => Error::invalid(
            format!(
                "{}:{}: FROM {base}",
                cx.file_name, cx.df.stages[i].from_line
            ),
            "image not found in the store (berth-build import or load it first)",
        ),
        e => e,
    })?;
    let mut config = img.config.clone();
    let triggers = config.config.on_build.take().unwrap_or_default();
    let clock = match cx.opts.epoch {
        Some(e) => timefmt::rfc3339(e),
        None => config
            .created
            .clone()
            .unwrap_or_else(|| timefmt::rfc3339(0)),
    };
    let st = StageState::new(
        config,
        img.manifest.layers.clone(),
        &img.manifest_desc.digest,
        clock,
    );
    Ok((st, triggers))
}

fn check_platform(cx: &Ctx, i: usize) -> Result<()> {
    let Some(p) = &cx.df.stages[i].platform else {
        return Ok(());
    };
    let env = |n: &str| cx.meta.get(n).cloned().or_else(|| super::platform_arg(n));
    let p = expand::word(p, &env, cx.df.escape).unwrap_or_else(|_| p.clone());
    let host = format!("linux/{}", crate::store::types::host_arch());
    if p != host && !p.is_empty() {
        return Err(Error::invalid(
            format!(
                "{}:{}: --platform={p}",
                cx.file_name, cx.df.stages[i].from_line
            ),
            format!("only the host platform ({host}) can be built"),
        ));
    }
    Ok(())
}

fn build_stage(
    cx: &Ctx,
    i: usize,
    base: &str,
    results: &[Option<StageState>],
) -> Result<StageState> {
    check_platform(cx, i)?;
    let (mut st, triggers) = base_state(cx, i, base, results)?;
    let mut instructions: Vec<Instruction> = vec![];
    for t in &triggers {
        let line = cx.df.stages[i].from_line;
        instructions.push(parse_instruction(
            t,
            &format!("{} (ONBUILD of {base})", cx.file_name),
            line,
            '\\',
        )?);
    }
    instructions.extend(cx.df.stages[i].instructions.iter().cloned());
    let total = instructions.len() + 1;
    let from = format!("{} FROM {base}", stage_label(cx, i, 1, total));
    let step = cx.progress.start(&from);
    cx.progress.done(&step);
    for (k, ins) in instructions.iter().enumerate() {
        let label = format!("{} {}", stage_label(cx, i, k + 2, total), ins.text);
        let step = cx.progress.start(&label);
        let before = st.key.clone();
        let r = super::run_step(cx, &mut st, ins, i, &step, results);
        if let (Some(s), true) = (cx.store.session(), st.key != before) {
            s.note_step(i, &st.key); // a layer step: its record is this build's (--cache-to)
        }
        match r {
            Ok(cached) if cached => cx.progress.cached(&step),
            Ok(_) => cx.progress.done(&step),
            Err(e) => {
                cx.progress.error(&step, &e.to_string());
                return Err(e);
            }
        }
    }
    Ok(st)
}
