#!/usr/bin/env python3
"""Validate an OCI manifest and config against the image-spec JSON schemas.

usage: validate_oci.py SCHEMA_DIR STORE MANIFEST_DIGEST
"""
import json
import warnings
import os
import sys

import jsonschema

warnings.simplefilter("ignore", DeprecationWarning)

schema_dir, store, digest = sys.argv[1:4]
base = "https://opencontainers.org/schema/image/"
schemas = {}
for name in os.listdir(schema_dir):
    if name.endswith(".json"):
        with open(os.path.join(schema_dir, name)) as f:
            s = json.load(f)
        schemas[base + name] = s
        if "id" in s:
            schemas[s["id"]] = s


def blob(d):
    with open(os.path.join(store, "blobs", "sha256", d.split(":", 1)[1])) as f:
        return json.load(f)


by_name = {k.rsplit("/", 1)[-1]: v for k, v in schemas.items() if k.endswith(".json")}


def fetch(uri):
    # Nested "id"s move the base URI; every $ref names a file in SCHEMA_DIR.
    return by_name[uri.split("#")[0].rsplit("/", 1)[-1]]


def check(schema_file, doc):
    s = schemas[base + schema_file]
    resolver = jsonschema.RefResolver(base + schema_file, s, store=schemas, handlers={"https": fetch})
    jsonschema.Draft4Validator(s, resolver=resolver).validate(doc)


manifest = blob(digest)
check("image-manifest-schema.json", manifest)
check("config-schema.json", blob(manifest["config"]["digest"]))
with open(os.path.join(store, "index.json")) as f:
    check("image-index-schema.json", json.load(f))
with open(os.path.join(store, "oci-layout")) as f:
    check("image-layout-schema.json", json.load(f))
print("valid")
