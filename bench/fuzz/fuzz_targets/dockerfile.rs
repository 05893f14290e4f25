//! Dockerfile → parse → expand every instruction's words and heredocs (BuildKit's
//! shell-word rules) with an environment that defines some names: any panic, abort,
//! stack overflow or timeout is a bug.
#![no_main]
use berth_builder::dockerfile::{expand, parse};
use libfuzzer_sys::fuzz_target;

fn env(name: &str) -> Option<String> {
    match name {
        "A" => Some("a b".into()),
        "EMPTY" => Some(String::new()),
        "P" => Some("/usr/local/bin:$A".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(df) = parse(src, "Dockerfile") else {
        return;
    };
    let all = df
        .meta_args
        .iter()
        .chain(df.stages.iter().flat_map(|s| s.instructions.iter()));
    for s in &df.stages {
        let _ = expand::word(&s.base, &env, df.escape);
    }
    for ins in all {
        let _ = expand::words(&ins.text, &env, df.escape);
        let _ = expand::word(&ins.text, &env, df.escape);
        let heredocs = match &ins.kind {
            berth_builder::dockerfile::ast::Kind::Copy(c)
            | berth_builder::dockerfile::ast::Kind::Add(c) => &c.heredocs[..],
            berth_builder::dockerfile::ast::Kind::Run(_, r) => &r.heredocs[..],
            _ => &[],
        };
        for h in heredocs {
            let _ = expand::heredoc(&h.content, &env);
        }
    }
    let last = df.stages.len().saturating_sub(1);
    if !df.stages.is_empty() {
        let base_of = |i: usize| df.stages[i].base.clone();
        let _ = berth_builder::plan::stages::needed(&df, last, &base_of);
    }
});
