"""target-duckdb 0.8.0 with two loading bugs fixed, run from this checkout without installing anything more:

    .e2e-venvs/target-duckdb/bin/python scripts/run_target_duckdb.py --config target.json

The fixes live in loaders/target-duckdb-fixed/target_duckdb_fixed.py (its docstring says what they are), the
package the Meltano example installs as its `target-duckdb` loader; `make demo` and
tests/e2e/test_target_duckdb.py run that same file through here."""
import pathlib
import runpy

FIXED = pathlib.Path(__file__).resolve().parent.parent / "loaders" / "target-duckdb-fixed" / "target_duckdb_fixed.py"

if __name__ == "__main__":
    runpy.run_path(str(FIXED), run_name="__main__")
