//! Build cache between runners (issue 23.1): runner A exports its cache to a registry or a
//! folder, runner B (an empty store with only the base image) imports it. Against a real
//! docker-registry on 127.0.0.1 whose access log counts the blobs B fetched.

mod common;
#[path = "common/registry.rs"]
mod server;
use common::*;
use server::*;
use std::path::Path;

/// A builder stage whose files only a COPY --from takes, then the final stage.
const DF: &str = "FROM busybox AS build
RUN echo one > /one && mkdir /out && echo built > /out/bin
RUN cat /one >> /out/bin
FROM busybox
COPY --from=build /out/bin /app/bin
COPY app.txt /app/app.txt
RUN cat /app/app.txt /app/bin > /app/all
CMD [\"cat\", \"/app/all\"]
";

fn cached(log: &str) -> usize {
    log.lines().filter(|l| l.ends_with(" CACHED")).count()
}

/// Whether the step whose label ends with `step` was cached (plain progress: `#N label`,
/// then `#N CACHED`), the last time it ran (a build may start again, see build_checked).
fn was_cached(log: &str, step: &str) -> bool {
    let ids: Vec<&str> = log
        .lines()
        .filter(|l| l.ends_with(step))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!ids.is_empty(), "no step {step:?} in:\n{log}");
    let id = ids[ids.len() - 1];
    log.lines().any(|l| l == format!("{id} CACHED"))
}

fn runner(app: &str) -> (Env, std::path::PathBuf) {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF), ("app.txt", app)]);
    (e, ctx)
}

fn file(e: &Env, tag: &str, name: &str, path: &str) -> String {
    std::fs::read_to_string(e.umoci_unpack(tag, name).join(path)).unwrap()
}

/// Non-base layers of an image, in order.
fn own_layers(e: &Env, tag: &str) -> Vec<String> {
    layers(&e.inspect(tag))[1..].to_vec()
}

#[test]
fn registry_cache_mode_max_gives_every_step_and_fetches_only_needed_layers() {
    let rd = Env::empty();
    let reg = Registry::start_logged(rd.dir.path());
    let cache = format!("type=registry,ref={}/cache/app:c,mode=max", reg.host());
    let (a, ctx_a) = runner("hello\n");
    let (_, err) = a.build(&ctx_a, &["-t", "app:v1", "--cache-to", &cache]);
    assert!(err.contains("exported cache to"), "{err}");
    let before = reg.blob_gets().len();

    let (b, ctx_b) = runner("hello\n");
    let from = format!("type=registry,ref={}/cache/app:c", reg.host());
    // B imports and exports to the same ref, as a CI job does: the layers it did not need
    // are mounted or found present in the registry, never downloaded to be uploaded.
    let args = ["-t", "app:v1", "--cache-from", &from, "--cache-to", &cache];
    let (_, err) = b.build(&ctx_b, &args);
    assert_eq!(
        cached(&err),
        5,
        "every step of both stages is cached:\n{err}"
    );
    assert!(
        err.contains("exported cache to") && !err.contains(": Pushed"),
        "{err}"
    );
    assert_eq!(
        b.inspect("app:v1")["Digest"],
        a.inspect("app:v1")["Digest"],
        "the same image"
    );
    // Lazy: the cache's config and the image's own layers (the output needs their bytes),
    // once each; never the build stage's layers (no later step needed their files).
    let gets = reg.blob_gets()[before..].to_vec();
    let want = own_layers(&a, "app:v1");
    assert_eq!(want.len(), 3);
    assert_eq!(gets.len(), want.len() + 1, "blob GETs: {gets:?}");
    for l in &want {
        assert_eq!(gets.iter().filter(|g| *g == l).count(), 1, "{l}: {gets:?}");
    }
    assert_eq!(file(&b, "app:v1", "u1", "app/all"), "hello\nbuilt\none\n");

    // A one-line change to a copied file: only the COPY and later steps run (on a fresh
    // runner C, which then needs the COPY --from layer's files for the RUN).
    let (c, ctx_c) = runner("hello, world\n");
    let before = reg.blob_gets().len();
    let (_, err) = c.build(&ctx_c, &["-t", "app:v2", "--cache-from", &from]);
    assert_eq!(cached(&err), 3, "{err}");
    assert!(!was_cached(&err, "COPY app.txt /app/app.txt"), "{err}");
    assert!(
        was_cached(&err, "COPY --from=build /out/bin /app/bin"),
        "{err}"
    );
    let gets = reg.blob_gets()[before..].to_vec();
    assert!(
        gets.contains(&want[0]),
        "COPY --from layer for the RUN: {gets:?}"
    );
    assert_eq!(gets.len(), 2, "config + the COPY --from layer: {gets:?}");
    assert_eq!(
        file(&c, "app:v2", "u2", "app/all"),
        "hello, world\nbuilt\none\n"
    );
}

#[test]
fn mode_min_exports_the_final_stage_only() {
    let rd = Env::empty();
    let reg = Registry::start(rd.dir.path(), None);
    let cache = format!("{}/cache/app:min", reg.host());
    // Reproducible layers: B's own build stage gives the layers A's did, so the final
    // stage's COPY --from keys match.
    let ts = ["--timestamp", "1700000000"];
    let (a, ctx_a) = runner("hello\n");
    a.build(
        &ctx_a,
        &[&ts[..], &["-t", "app:v1", "--cache-to", &cache]].concat(),
    );
    let (b, ctx_b) = runner("hello\n");
    let (_, err) = b.build(
        &ctx_b,
        &[&ts[..], &["-t", "app:v1", "--cache-from", &cache]].concat(),
    );
    assert!(!was_cached(&err, "RUN cat /one >> /out/bin"), "{err}");
    assert_eq!(cached(&err), 3, "the final stage's steps only:\n{err}");
    assert_eq!(b.inspect("app:v1")["Digest"], a.inspect("app:v1")["Digest"]);
}

#[test]
fn local_cache_folder_round_trip_and_tampered_blob() {
    let (a, ctx_a) = runner("hello\n");
    let dir = a.path("cache-dir");
    let to = format!("type=local,dest={},mode=max", dir.display());
    a.build(&ctx_a, &["-t", "app:v1", "--cache-to", &to]);
    assert!(dir.join("index.json").is_file() && dir.join("oci-layout").is_file());
    let left: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");

    let (b, ctx_b) = runner("hello\n");
    let from = format!("type=local,src={}", dir.display());
    let (_, err) = b.build(&ctx_b, &["-t", "app:v1", "--cache-from", &from]);
    assert_eq!(cached(&err), 5, "{err}");
    assert_eq!(b.inspect("app:v1")["Digest"], a.inspect("app:v1")["Digest"]);

    // A second export replaces the first and leaves no blob it does not refer to.
    std::fs::write(ctx_a.join("app.txt"), "v2\n").unwrap();
    a.build(&ctx_a, &["-t", "app:v2", "--cache-to", &to]);
    let blobs = std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 5 + 2, "5 layers, config, manifest");

    // Tampered: the final RUN's layer blob swapped for another blob's bytes. Refused with a
    // warning; that step runs; the build succeeds with the right content.
    let run_layer = own_layers(&a, "app:v2")[2].clone();
    let copy_layer = own_layers(&a, "app:v2")[1].clone();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    std::fs::copy(blob(&copy_layer), blob(&run_layer)).unwrap();
    let (c, ctx_c) = runner("v2\n");
    let (_, err) = c.build(&ctx_c, &["-t", "app:v2", "--cache-from", &from]);
    assert!(
        err.contains("warning: cache") && err.contains("digest mismatch"),
        "{err}"
    );
    assert!(
        !was_cached(&err, "RUN cat /app/app.txt /app/bin > /app/all"),
        "{err}"
    );
    assert_eq!(file(&c, "app:v2", "u", "app/all"), "v2\nbuilt\none\n");
}

fn walk(d: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn tampered_registry_blob_is_refused_and_the_build_succeeds() {
    let rd = Env::empty();
    let reg = Registry::start(rd.dir.path(), None);
    let cache = format!("type=registry,ref={}/cache/app:t,mode=max", reg.host());
    let (a, ctx_a) = runner("hello\n");
    a.build(&ctx_a, &["-t", "app:v1", "--cache-to", &cache]);
    let own = own_layers(&a, "app:v1");
    // One byte changed in the registry's storage (same size: the registry serves it).
    let mut data = std::fs::read(reg.blob_data(&own[2])).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(reg.blob_data(&own[2]), data).unwrap();
    let (b, ctx_b) = runner("hello\n");
    let (_, err) = b.build(
        &ctx_b,
        &[
            "-t",
            "app:v1",
            "--cache-from",
            &cache.replace(",mode=max", ""),
        ],
    );
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(file(&b, "app:v1", "u", "app/all"), "hello\nbuilt\none\n");
}

#[test]
fn import_failures_are_warnings_and_bad_specs_one_line_errors() {
    let rd = Env::empty();
    let reg = Registry::start(rd.dir.path(), None);
    let (b, ctx) = runner("hello\n");
    for from in [
        "127.0.0.1:1/none/x:y".to_string(),
        format!("type=registry,ref={}/no/such:ref", reg.host()),
        format!("type=local,src={}", b.path("no-such-dir").display()),
    ] {
        let (_, err) = b.build(&ctx, &["--no-cache", "--cache-from", &from]);
        let warn: Vec<_> = err
            .lines()
            .filter(|l| l.contains("warning: --cache-from"))
            .collect();
        assert_eq!(warn.len(), 1, "{from}: {err}");
        assert_eq!(cached(&err), 0);
    }
    for (flag, spec) in [
        ("--cache-to", "type=s3,bucket=x"),
        ("--cache-to", "type=local,dest=/x,compression=zstd"),
        ("--cache-from", "type=gha"),
        ("--cache-to", "type=inline"),
    ] {
        let err = b.fails(&["build", flag, spec, ctx.to_str().unwrap()]);
        assert_eq!(err.trim().lines().count(), 1, "{spec}: {err}");
        assert!(
            !err.contains("FROM busybox"),
            "refused before the build: {err}"
        );
    }
}

/// A --secret value never enters a key, a record or the artifact: a build with another
/// value hits the cache, and no file of the exported folder (layers decompressed) holds it.
#[test]
fn secret_values_never_enter_the_cache() {
    let df = "FROM busybox\nRUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo used > /used\n";
    let a = Env::with_busybox();
    let ctx = a.context("ctx", &[("Dockerfile", df)]);
    let value = "S3CRET-VALUE-4a1b9c";
    std::fs::write(a.path("tok"), value).unwrap();
    let dir = a.path("cache-dir");
    let sec = format!("id=tok,src={}", a.path("tok").display());
    let to = format!("type=local,dest={},mode=max", dir.display());
    a.build(&ctx, &["--secret", &sec, "--cache-to", &to]);
    for f in walk(&dir)
        .into_iter()
        .chain(walk(&a.store().join("berth/cache")))
    {
        let raw = std::fs::read(&f).unwrap();
        let gz = std::process::Command::new("gzip")
            .args(["-dc", &f])
            .output()
            .unwrap()
            .stdout;
        for data in [raw, gz] {
            assert!(
                !String::from_utf8_lossy(&data).contains(value),
                "the secret is in {f}"
            );
        }
    }
    let b = Env::with_busybox();
    let ctx_b = b.context("ctx", &[("Dockerfile", df)]);
    std::fs::write(b.path("tok"), "another value").unwrap();
    let sec = format!("id=tok,src={}", b.path("tok").display());
    let from = format!("type=local,src={}", dir.display());
    let (_, err) = b.build(&ctx_b, &["--secret", &sec, "--cache-from", &from]);
    assert_eq!(cached(&err), 1, "{err}");
}
