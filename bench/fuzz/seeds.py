#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the repo's fixtures and tests (bench/README.md).
Usage: seeds.py REPO_ROOT OUT_DIR  (writes OUT_DIR/<target>/<name>)."""
import gzip, hashlib, io, json, os, re, subprocess, sys, tarfile

repo, out = sys.argv[1], sys.argv[2]


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tar(entries):
    """entries: (name, kind, arg, extra) with kind file/dir/sym/link/chr/fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            name, kind, arg = e[:3]
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644 if kind == "file" else 0o755
            ti.mtime = 1700000000
            data = None
            if kind == "file":
                data = arg.encode() if isinstance(arg, str) else arg
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 0, 0
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            if len(e) > 3:
                ti.pax_headers = e[3]
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- config: berth spec, the docker seccomp fixture, a process document -----------------
berth = os.path.join(repo, "target/release/berth")
tmp = os.path.join(out, ".spec")
os.makedirs(tmp, exist_ok=True)
subprocess.run([berth, "spec", "--bundle", tmp], check=True)
spec = json.load(open(os.path.join(tmp, "config.json")))
os.remove(os.path.join(tmp, "config.json"))
os.rmdir(tmp)
put("config", "spec.json", json.dumps(spec, indent=1))
seccomp = json.load(open(os.path.join(repo, "runtime/tests/fixtures/docker-default.json")))
s2 = json.loads(json.dumps(spec))
s2["linux"]["seccomp"] = seccomp
put("config", "spec-seccomp.json", json.dumps(s2))
s3 = json.loads(json.dumps(spec))
s3["process"]["user"] = {"uid": 4294967295, "gid": 0}
s3["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 1, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
s3["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_RT", "priority": 1}
s3["process"]["capabilities"]["bounding"].append("CAP_NOT_A_CAP")
s3["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 1}]}
s3["linux"]["cgroupsPath"] = ""
s3["mounts"].append({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]})
put("config", "spec-odd.json", json.dumps(s3))
put("config", "process.json", json.dumps(spec["process"]))

# --- dockerfile: the example, the parser tests' literals, a few covering every instruction
dfs = [open(os.path.join(repo, "examples/helloworld/Dockerfile")).read()]
src = open(os.path.join(repo, "builder/src/dockerfile/tests.rs")).read()
for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', src):
    if "\\n" not in lit:
        continue
    s = lit.encode().decode("unicode_escape")
    dfs.append(s if "FROM" in s else "FROM scratch\n" + s)
dfs.append("""# syntax=docker/dockerfile:1
# escape=`
ARG BASE=alpine V
FROM ${BASE:-busybox}:${V:+latest} AS b0
ENV A=1 B="two words" C=${A}x
LABEL a=b "c d"=e
RUN --mount=type=bind,from=b0,source=/,target=/m --network=none echo ${B%%w*} `
    && true
COPY --from=b0 --chown=1:1 --chmod=0755 /a /b/
ADD --checksum=sha256:00 https://example.com/x /y
COPY <<EOF <<-'E2' /d/
$A ${B#two}
EOF
\tlit
\tE2
WORKDIR /w/$A
USER 1000:1000
EXPOSE 80/tcp 53/udp
VOLUME ["/v"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=3 CMD ["true"]
SHELL ["/bin/sh", "-c"]
ONBUILD RUN x
FROM b0
CMD ["sh"]
ENTRYPOINT exec x
MAINTAINER m
""")
for i, d in enumerate(dfs):
    put("dockerfile", f"df{i:03}", d)

# --- unpack: [mode byte] + layer tar (plain, gzip, zstd) -----------------------------------
cap = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}
layers = {
    "plain": tar([("d", "dir", None), ("d/f", "file", "x"), ("d/l", "sym", "f"), ("d/h", "link", "d/f")]),
    "escape": tar([("evil", "sym", "/tmp"), ("evil/f", "file", "x"), ("up", "sym", "../../.."),
                   ("up/g", "file", "y"), ("evil/d", "dir", None), ("evil/.wh.f", "file", ""),
                   ("evil/sub/.wh..wh..opq", "file", ""), ("evil/c", "chr", None)]),
    "dotdot": tar([("../x", "file", "x"), ("/abs", "file", "y"), ("a/../../b", "file", "z"),
                   ("h", "link", "../../etc/passwd")]),
    "whiteouts": tar([("a", "dir", None), ("a/b", "file", "1"), ("a/.wh.b", "file", ""),
                      ("a/.wh..wh..opq", "file", ""), (".wh.", "file", ""), ("p", "fifo", None)]),
    "cap": tar([("bin", "dir", None), ("bin/ping", "file", b"\x7fELF", cap), ("x", "file", "1"),
                ("x", "dir", None), ("x", "sym", "/"), ("x/y", "file", "2")]),
}
for name, t in layers.items():
    for mode in range(4):
        put("unpack", f"{name}-{mode}", bytes([mode]) + t)
    put("unpack", f"{name}-gz", bytes([1]) + gzip.compress(t, mtime=0))
    put("unpack", f"{name}-zst", bytes([1]) + zstd(t))

# --- archive: docker-archive and oci-archive, sound and hostile ------------------------------
layer = layers["plain"]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
                  "history": [{"created_by": "x"}]}).encode()


def docker(manifest, extra=()):
    return tar([("manifest.json", "file", json.dumps(manifest)), ("c.json", "file", cfg),
                ("l0", "dir", None), ("l0/layer.tar", "file", layer)] + list(extra))


good = [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l0/layer.tar"]}]
put("archive", "docker", docker(good))
put("archive", "docker-gz", gzip.compress(docker(good), mtime=0))
put("archive", "docker-evil", docker([{"Config": "/etc/passwd", "RepoTags": ["x:1"], "Layers": ["../../x"]}],
                                     [("l1", "sym", "/etc/passwd")]))
put("archive", "docker-link", docker([{"Config": "c.json", "RepoTags": ["y:1"], "Layers": ["l2/layer.tar"]}],
                                     [("l2", "dir", None), ("l2/layer.tar", "sym", "../l0/layer.tar")]))
mani = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                              "digest": sha(cfg), "size": len(cfg)},
                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                               "digest": sha(layer), "size": len(layer)}]}).encode()
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                             "digest": sha(mani), "size": len(mani),
                                             "annotations": {"org.opencontainers.image.ref.name": "1"},
                                             "platform": {"architecture": "amd64", "os": "linux"}}]}
blobs = [("blobs", "dir", None), ("blobs/sha256", "dir", None)] + [
    ("blobs/sha256/" + sha(b)[7:], "file", b) for b in (cfg, layer, mani)]
oci = [("oci-layout", "file", '{"imageLayoutVersion":"1.0.0"}'), ("index.json", "file", json.dumps(index))]
put("archive", "oci", tar(oci + blobs))
bad = json.loads(json.dumps(index))
bad["manifests"][0]["digest"] = "sha256:../../../etc/passwd"
put("archive", "oci-evil", tar([oci[0], ("index.json", "file", json.dumps(bad))] + blobs +
                               [("blobs/sha256/" + "0" * 64, "sym", "/etc/shadow")]))

# --- manifest: the documents above ----------------------------------------------------------
put("manifest", "index", json.dumps(index))
put("manifest", "manifest", mani)
put("manifest", "config", cfg)
put("manifest", "docker-list", json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                   "digest": "sha256:" + "a" * 64, "size": 1,
                   "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]}))

# --- auth: WWW-Authenticate challenges as registries send them --------------------------------
for i, h in enumerate([
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
    'Basic realm="Registry Realm"',
    'bearer realm=https://ghcr.io/token, scope="repository:a/b:pull,push"',
    'Bearer service="x",realm="http://127.0.0.1:5000/token"',
    'Bearer realm="a,b", error="insufficient_scope"',
]):
    put("auth", f"c{i}", h)
