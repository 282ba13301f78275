"""target-duckdb 0.8.0 with three loading bugs fixed: the `target-duckdb-fixed` executable, or, from a checkout,

    .e2e-venvs/target-duckdb/bin/python scripts/run_target_duckdb.py --config target.json

target-duckdb (jwills/target-duckdb, the only Singer target for DuckDB on PyPI) writes each batch to a CSV
file and COPYs it into a typed temporary table. Three of its functions lose or refuse data the Singer spec allows;
main() replaces exactly those three, then runs the target's own main(). Everything else (tables, types, upsert by
key, state) is the target's. The Meltano example's `target-duckdb` loader, `make demo` and the e2e tests load
through here, and the e2e tests fail if either fix is taken away.

1. `db_sync._should_json_dump_value` JSON-encodes a value for a JSON column only when it is a dict or a list
   (or when the column is exactly object-or-array). A column that may also hold a scalar
   (`department_events.value` and `previous_value`: any JSON value, mostly strings) gets a JSON column, but a
   string goes into the CSV bare and a boolean as Python's `True`: DuckDB refuses the batch ("Could not convert
   string ... to 'JSON'"). Fixed: every non-null value of a JSON column is JSON-encoded, so `"a"` is stored as
   the JSON string "a".
2. `DbSync.load_rows` runs `COPY ... FROM 'file.csv' WITH (new_line '\\r\\n')` and leaves the rest of the CSV
   dialect to DuckDB's sniffer, which may take the first row for a header: a batch of one row whose columns are
   all set (the account once an odd value fills `_unexpected_values`; one ban, one shortcut) silently loads
   nothing. Fixed: the same steps with the dialect the target wrote the file in stated in full (header false,
   delimiter, quote, escape).
3. `db_sync.column_type` gives a column that may hold a string or an integer VARCHAR, but one that may hold a
   string or a number DOUBLE: a string in it (`chat_webpath.timestamp`, an ISO date or epoch seconds) refuses
   the batch ("Could not convert string ... to 'DOUBLE'"). Fixed: string-or-number is VARCHAR too, as
   target-postgres makes it TEXT.

Known and left as the target does it: an empty string loads as NULL (the target's record_to_flattened), rows
removed upstream stay (ACTIVATE_VERSION is ignored), and a stream without a key (routing_settings) is appended
to on every run, which needs `"primary_key_required": false`."""
import csv
import os

import target_duckdb
from target_duckdb import db_sync

TARGET_COLUMN_TYPE = db_sync.column_type


def should_json_dump_value(key, value, flatten_schema=None):
    """Whether a value goes into the CSV as JSON text: any value of a JSON column (see column_type), not only
    dicts and lists."""
    if isinstance(value, (dict, list)):
        return True
    types = ((flatten_schema or {}).get(key) or {}).get("type") or ()
    return value is not None and ("object" in types or "array" in types)


def load_rows(self, records, count, temp_dir):
    """DbSync.load_rows of target-duckdb 0.8.0, with the COPY given the CSV's dialect instead of sniffing it."""
    stream = self.stream_schema_message["stream"]
    self.logger.info("Loading %d rows into '%s'", count, self.table_name(stream, False))
    temp_table = self.table_name(stream, is_temporary=True)
    temp_file_csv = os.path.join(temp_dir, f"{temp_table}.csv")
    self.conn.execute(self.create_table_query(table_name=temp_table, is_temporary=True))
    with open(temp_file_csv, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=self.delimiter, quotechar=self.quotechar, quoting=csv.QUOTE_MINIMAL,
                            lineterminator="\r\n")
        for record in records:
            writer.writerow(self.record_to_flattened(record))
    dialect = {"header": "false", "delim": self.delimiter, "quote": self.quotechar, "escape": self.quotechar,
               "new_line": "\\r\\n"}
    options = ", ".join(f"{name} {value if value == 'false' else sql_string(value)}" for name, value in dialect.items())
    self.conn.execute(f"COPY {temp_table} FROM {sql_string(temp_file_csv)} WITH ({options})")
    if self.stream_schema_message["key_properties"]:
        update = self.update_from_temp_table(temp_table)
        if update:
            self.conn.execute(update)
    self.conn.execute(self.insert_from_temp_table(temp_table))
    self.conn.execute(f"DROP TABLE {temp_table}")
    os.unlink(temp_file_csv)


def column_type(schema_property):
    """The target's column type, except that a column which may hold a string and a number is VARCHAR."""
    types = schema_property.get("type") or ()
    if "string" in types and "number" in types and "object" not in types and "array" not in types:
        return "varchar"
    return TARGET_COLUMN_TYPE(schema_property)


def sql_string(text):
    return "'" + str(text).replace("'", "''") + "'"


def main():
    """The target's main() with the three functions replaced (the target offers no other way in)."""
    db_sync._should_json_dump_value = should_json_dump_value
    db_sync.column_type = column_type
    db_sync.DbSync.load_rows = load_rows
    target_duckdb.main()


if __name__ == "__main__":
    main()
