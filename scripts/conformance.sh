#!/usr/bin/env bash
# The OCI runtime-spec conformance suite: berth, differential against runc.
# Its last line is "N passed, M failed, K skipped" for berth. Strict: any berth failure fails
# the run unless conformance/known-failures lists the case with its reason (and a listed
# case that passes fails it too), whatever runc does.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/reports
exec target/release/berth-conformance --runtime "$PWD/target/release/berth" --report target/reports/conformance.md --fail-on any --known-failures conformance/known-failures "$@"
