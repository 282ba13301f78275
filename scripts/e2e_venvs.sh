#!/usr/bin/env bash
# One virtualenv per end-to-end tool under .e2e-venvs/, each from its fully pinned list in
# tests/e2e/requirements/<name>.txt. They cannot share one: target-jsonl brings singer-python 5,
# singer-tools singer-python 6, target-postgres singer-sdk, target-duckdb jsonschema 4 and duckdb, and each wants
# its own `singer` and jsonschema.
#
#   scripts/e2e_venvs.sh                   # all of them
#   scripts/e2e_venvs.sh meltano           # just one
#
# A venv whose list has not changed since it was built is left alone, so running this again is cheap.
# tests/e2e/requirements/meltano-map-transform.txt is not one of them: Meltano installs it, as the example
# project's mapper (examples/meltano/meltano.yml, pip_url -r), into the project's .meltano/ like any plugin.
# The venvs are made with uv (itself pinned, installed by pip into .e2e-venvs/.uv): from PyPI it builds
# all five in under a minute where pip takes about four.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9
ROOT=.e2e-venvs
REQUIREMENTS=tests/e2e/requirements
ALL=(target-jsonl target-postgres singer-tools meltano target-duckdb target-stitch)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then names=("${ALL[@]}"); fi
mkdir -p "$ROOT"
# Two runs at once (make test beside a test that builds a missing venv) take turns.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$ROOT/.lock"
    flock 9
fi

UV_HOME=$ROOT/.uv
UV=$UV_HOME/bin/uv
if [[ "$("$UV" --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
    rm -rf "$UV_HOME"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$UV_HOME" "uv==$UV_VERSION" 2>"$ROOT/uv.log" || {
        echo "e2e venvs: could not install uv $UV_VERSION with pip; see $ROOT/uv.log" >&2
        exit 1
    }
fi

build() {
    local name=$1 requirements=$REQUIREMENTS/$1.txt venv=$ROOT/$1 log=$ROOT/$1.log
    if [ ! -f "$requirements" ]; then
        echo "e2e venvs: no $requirements (known: ${ALL[*]})" >&2
        return 2
    fi
    local digest
    digest=$( (sha256sum "$requirements"; echo "$UV_VERSION") | sha256sum | cut -d' ' -f1)
    if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$digest" ]; then
        echo "e2e venvs: $name is up to date"
        return 0
    fi
    local started=$SECONDS
    rm -rf "$venv"
    if ! { "$UV" venv --quiet --python "$PYTHON" "$venv" &&
           "$UV" pip install --python "$venv/bin/python" -r "$requirements"; } >"$log" 2>&1; then
        echo "e2e venvs: installing $name failed; the end of $log:" >&2
        tail -n 25 "$log" >&2
        return 1
    fi
    echo "$digest" >"$venv/.installed"
    echo "e2e venvs: $name ready in $((SECONDS - started)) s"
}

pids=()
for name in "${names[@]}"; do
    build "$name" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
exit $status
