"""The report `make demo` prints from the DuckDB file target-duckdb loaded: SQL over the tables, nothing else.

Run by the Python of .e2e-venvs/target-duckdb (the DuckDB that wrote the file reads it):

    .e2e-venvs/target-duckdb/bin/python scripts/demo_report.py first demo-output/zendesk.duckdb
    .e2e-venvs/target-duckdb/bin/python scripts/demo_report.py changes demo-output/zendesk.duckdb \\
        demo-output/after-sync1.duckdb

`first`: what landed (rows per table), chats and offline messages per day, the rating mix, first response times,
chats by department, the agent leaderboard, tags and history event kinds (plain joins on the child tables, current
rows only), and the types the columns got. `changes`: per table, rows before and after the
second sync, new rows and rows updated in place, the chats that lost tags (their stale rows), and the chats that
changed, column by column."""
import json
import sys

import duckdb

SCHEMA = "zendesk_chat"
DAYS = 14
TOP = 5
# Columns whose DuckDB type shows that timestamps, booleans and nested fields arrived typed.
TYPED = (("chats", "update_timestamp"), ("agent_timeline", "start_time"), ("chats", "missed"),
         ("agents", "enabled"), ("chats", "department_id"), ("chat_agents", "agent_id"), ("chats", "response_time"),
         ("chats", "history"), ("chats", "tags"))
# Id columns and the key they name: the same type, so that they join without a cast.
REFERENCES = {("chats", "department_id"): ("departments", "id"), ("chat_agents", "agent_id"): ("agents", "id")}
# Columns of a chat a second sync may change (the export delivers a chat again when it is updated).
CHAT_COLUMNS = ("tags", "rating", "comment", "zendesk_ticket_id", "deleted")


def rows(db, sql, *params):
    return db.execute(sql, list(params)).fetchall()


def value(db, sql, *params):
    return rows(db, sql, *params)[0][0]


def tables(db, catalog=None):
    where = f"table_schema = '{SCHEMA}'" + (f" AND table_catalog = '{catalog}'" if catalog else "")
    return [name for (name,) in rows(db, f"SELECT table_name FROM information_schema.tables WHERE {where} "
                                         "ORDER BY table_name")]


def primary_keys(db):
    return {table: list(columns) for table, columns in rows(
        db, "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            f"WHERE schema_name = '{SCHEMA}' AND constraint_type = 'PRIMARY KEY' "
            "AND database_name = current_database()")}


def count(db, table, catalog=None):
    prefix = f'"{catalog}".' if catalog else ""
    return value(db, f'SELECT count(*) FROM {prefix}{SCHEMA}."{table}"')


def table_text(header, body, right=()):
    """A plain text table: columns as wide as their widest cell, numbers (and the `right` columns) right-aligned."""
    cells = [[str(c) for c in header]] + [[f"{c:,}" if isinstance(c, int) and not isinstance(c, bool) else str(c)
                                          for c in row] for row in body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [i in right or all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in body)
               for i in range(len(header))]
    return "\n".join("  " + "  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                                      for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in cells)


def first_report(db, path):
    names = tables(db)
    counts = {name: count(db, name) for name in names}
    print(f"== In DuckDB: {path}, schema {SCHEMA}: {len(names)} tables, {sum(counts.values()):,} rows")
    listed = [f"{name} {n:,}" for name, n in sorted(counts.items(), key=lambda item: -item[1])]
    for start in range(0, len(listed), 6):
        print("  " + " · ".join(listed[start:start + 6]))

    last = value(db, f"SELECT max(timestamp)::DATE FROM {SCHEMA}.chats")
    print(f"\nChats and offline messages per day, the last {DAYS} days of data (timestamp, UTC)")
    per_day = rows(db, f"""
        WITH days AS (SELECT unnest(range(?::DATE - INTERVAL {DAYS - 1} DAY, ?::DATE + INTERVAL 1 DAY,
                                          INTERVAL 1 DAY))::DATE AS day)
        SELECT day, strftime(day, '%a'),
               count(c.id) FILTER (WHERE c.type = 'chat'), count(c.id) FILTER (WHERE c.type = 'offline_msg')
        FROM days LEFT JOIN {SCHEMA}.chats c ON c.timestamp::DATE = days.day
        GROUP BY day ORDER BY day""", last, last)
    peak = max((r[2] for r in per_day), default=0) or 1
    print(table_text(("day", "", "chats", "offline", ""),
                     [(str(d), wd, n, off, "█" * round(20 * n / peak)) for d, wd, n, off in per_day]))

    print("\nRating mix (chats, not offline messages)")
    mix = rows(db, f"""
        SELECT coalesce(rating, 'not rated') AS rating, count(*) AS n,
               round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
        FROM {SCHEMA}.chats WHERE type = 'chat' GROUP BY ALL ORDER BY n DESC""")
    print(table_text(("rating", "chats", "%"), mix))

    median, p90, n = rows(db, f"""
        SELECT quantile_cont(first, 0.5), quantile_cont(first, 0.9), count(first)
        FROM (SELECT TRY_CAST(response_time->>'first' AS DOUBLE) AS first FROM {SCHEMA}.chats WHERE type = 'chat')""")[0]
    print(f"\nFirst response time (response_time->>'first', {n:,} chats): median {seconds(median)}, p90 {seconds(p90)}")

    print(f"\nChats by department (top {TOP}; chats.department_id = departments.id, no cast)")
    departments = rows(db, f"""
        SELECT coalesce(d.name, c.department_name, '(none)') AS department, count(*) AS chats,
               round(100.0 * count(*) FILTER (WHERE c.rating = 'good') / nullif(count(c.rating), 0), 0) AS good,
               round(median(TRY_CAST(c.response_time->>'first' AS DOUBLE))) AS first_response
        FROM {SCHEMA}.chats c LEFT JOIN {SCHEMA}.departments d ON d.id = c.department_id
        WHERE c.type = 'chat' GROUP BY ALL ORDER BY chats DESC, department LIMIT {TOP}""")
    print(table_text(("department", "chats", "% good of rated", "median first response s"),
                     [(d, n, "" if g is None else int(g), "" if f is None else int(f)) for d, n, g, f in departments],
                     right=(2, 3)))

    print(f"\nAgent leaderboard (top {TOP}; chat_agents.agent_id = agents.id, current rows only)")
    agents = rows(db, f"""
        SELECT a.display_name, count(DISTINCT c.id) AS chats,
               round(median(TRY_CAST(c.response_time->>'first' AS DOUBLE))) AS first_response,
               round(100.0 * count(*) FILTER (WHERE c.rating = 'good') / nullif(count(c.rating), 0), 0) AS good
        FROM {SCHEMA}.chat_agents ca
        JOIN {SCHEMA}.chats c ON c.id = ca.chat_id AND c.update_timestamp = ca.chat_update_timestamp
        JOIN {SCHEMA}.agents a ON a.id = ca.agent_id
        WHERE c.type = 'chat' GROUP BY ALL ORDER BY chats DESC, a.display_name LIMIT {TOP}""")
    print(table_text(("agent", "chats", "median first response s", "% good of rated"),
                     [(a, n, "" if f is None else int(f), "" if g is None else int(g)) for a, n, f, g in agents],
                     right=(2, 3)))

    print(f"\nTags (chat_tags, current rows only: chat_update_timestamp = chats.update_timestamp)")
    tags = rows(db, f"""
        SELECT t.tag, count(*) AS chats, count(*) FILTER (WHERE c.rating = 'bad') AS rated_bad
        FROM {SCHEMA}.chat_tags t
        JOIN {SCHEMA}.chats c ON c.id = t.chat_id AND c.update_timestamp = t.chat_update_timestamp
        GROUP BY ALL ORDER BY chats DESC, t.tag LIMIT {TOP}""")
    print(table_text(("tag", "chats", "rated bad"), tags))

    print("\nHistory events by kind (chat_history.type)")
    kinds = rows(db, f"""
        SELECT h.type, count(*) AS events, count(DISTINCT h.chat_id) AS chats
        FROM {SCHEMA}.chat_history h
        JOIN {SCHEMA}.chats c ON c.id = h.chat_id AND c.update_timestamp = h.chat_update_timestamp
        GROUP BY ALL ORDER BY events DESC, h.type""")
    print(table_text(("event", "events", "chats"), [(k or "(none)", e, n) for k, e, n in kinds]))

    print("\nColumn types (information_schema.columns) and a value read through each")
    typed = []
    for table, column in TYPED:
        kind = value(db, "SELECT data_type FROM information_schema.columns "
                         f"WHERE table_schema = '{SCHEMA}' AND table_name = ? AND column_name = ?", table, column)
        typed.append((f"{table}.{column}", kind, example(db, table, column, kind)))
    print(table_text(("column", "DuckDB type", "e.g."), typed))


def example(db, table, column, kind):
    """One query that only works on a column of that type, and its answer."""
    source = f'{SCHEMA}."{table}"'
    if kind.startswith("TIMESTAMP"):
        low, high = rows(db, f'SELECT min("{column}"), max("{column}") FROM {source}')[0]
        return "no values" if low is None else f"{low:%Y-%m-%d %H:%M} … {high:%Y-%m-%d %H:%M} (UTC)"
    if kind == "BOOLEAN":
        true, total = rows(db, f'SELECT count(*) FILTER (WHERE "{column}"), count("{column}") FROM {source}')[0]
        return f"{true:,} true of {total:,}"
    if (table, column) in REFERENCES:
        other, key = REFERENCES[(table, column)]
        joined, total = rows(db, f'SELECT count(o."{key}"), count(t."{column}") FROM {source} t '
                                 f'LEFT JOIN {SCHEMA}."{other}" o ON o."{key}" = t."{column}"')[0]
        return f"{joined:,} of {total:,} join {other}.{key} as they are"
    if column == "response_time":
        return "max(response_time->>'max') = " + str(value(db, f"SELECT max(TRY_CAST(response_time->>'max' AS DOUBLE))::INT "
                                                             f"FROM {source}")) + " s"
    if column == "history":
        events = value(db, f"SELECT sum(json_array_length(history)) FROM {source}")
        kinds = value(db, f"""SELECT count(DISTINCT e->>'type') FROM {source}, unnest(history::JSON[]) AS u(e)""")
        return f"{events:,} events in json arrays, {kinds} kinds of event"
    if column == "tags":
        tag, n = rows(db, f"SELECT t, count(*) FROM {source}, unnest(tags::VARCHAR[]) AS u(t) "
                          "GROUP BY t ORDER BY count(*) DESC, t LIMIT 1")[0]
        return f"most used tag: {tag} ({n:,} chats)"
    return ""


def changes_report(db, path, before_path):
    db.execute(f"ATTACH '{before_path}' AS before (READ_ONLY)")
    keys = primary_keys(db)
    print(f"== What the second sync changed in {path} (before it: {before_path})")
    body = []
    for table in tables(db, catalog=db.execute("SELECT current_database()").fetchone()[0]):
        after = count(db, table)
        before = count(db, table, catalog="before")
        if table in keys:
            on = " AND ".join(f'a."{k}" = b."{k}"' for k in keys[table])
            new = value(db, f'SELECT count(*) FROM {SCHEMA}."{table}" a ANTI JOIN before.{SCHEMA}."{table}" b ON {on}')
            updated = value(db, f'SELECT count(*) FROM {SCHEMA}."{table}" a JOIN before.{SCHEMA}."{table}" b ON {on} '
                                "WHERE to_json(a) IS DISTINCT FROM to_json(b)")
            duplicates = after - value(db, f'SELECT count(*) FROM (SELECT DISTINCT {", ".join(keys[table])} '
                                           f'FROM {SCHEMA}."{table}")')
        else:
            new, updated, duplicates = after - before, "-", "-"
        if after != before or updated:
            body.append((table, before, after, new, updated, duplicates))
    print(table_text(("table", "before", "after", "new rows", "updated in place", "duplicate keys"), body,
                     right=(4, 5)))
    print("  (other tables unchanged; target-duckdb upserts on the key and ignores ACTIVATE_VERSION, so rows removed\n"
          "  upstream stay, and routing_settings, which has no key, gets one row per run)")

    stale = rows(db, f"""
        SELECT t.chat_id, list(t.tag ORDER BY t.position) FILTER (WHERE t.chat_update_timestamp = c.update_timestamp),
               list(t.tag ORDER BY t.position) FILTER (WHERE t.chat_update_timestamp <> c.update_timestamp)
        FROM {SCHEMA}.chat_tags t JOIN {SCHEMA}.chats c ON c.id = t.chat_id
        GROUP BY t.chat_id HAVING count(*) FILTER (WHERE t.chat_update_timestamp <> c.update_timestamp) > 0
        ORDER BY t.chat_id""")
    print(f"\nChats that lost tags ({len(stale)}): their old rows stay in chat_tags, with the older "
          "chat_update_timestamp;\n  the join on chats.update_timestamp keeps only the current ones")
    for chat_id, current, old in stale:
        print(f"  {chat_id}: current {show(json.dumps(current or []))}, stale rows {show(json.dumps(old))}")

    changed = rows(db, f"""
        SELECT a.id, a.type, {", ".join(f"b.{c}, a.{c}" for c in CHAT_COLUMNS)}
        FROM {SCHEMA}.chats a JOIN before.{SCHEMA}.chats b ON a.id = b.id
        WHERE a.update_timestamp IS DISTINCT FROM b.update_timestamp ORDER BY a.update_timestamp, a.id""")
    print(f"\nChats updated in place ({len(changed)}), what changed:")
    for row in changed:
        chat_id, kind, values = row[0], row[1], row[2:]
        diffs = [f"{column} {show(values[2 * i])} → {show(values[2 * i + 1])}"
                 for i, column in enumerate(CHAT_COLUMNS) if values[2 * i] != values[2 * i + 1]]
        print(f"  {chat_id} ({kind}): {'; '.join(diffs) or 'update_timestamp only'}")


def seconds(value):
    """A duration for the report; n/a when no chat had one (the column may hold only nulls)."""
    return "n/a" if value is None else f"{value:.0f} s"


def show(cell):
    if isinstance(cell, str) and cell[:1] in "[{":
        try:
            return json.dumps(json.loads(cell), ensure_ascii=False)
        except ValueError:  # a text column whose value merely starts like JSON ("[sic] ...")
            pass
    return "null" if cell is None else json.dumps(cell) if isinstance(cell, (bool, str)) else str(cell)


def main(argv):
    usage = "usage: demo_report.py first DB | demo_report.py changes DB BEFORE_DB"
    if len(argv) < 2 or argv[0] not in ("first", "changes") or (argv[0] == "changes") != (len(argv) == 3):
        sys.exit(usage)
    db = duckdb.connect(argv[1], read_only=True)
    if argv[0] == "first":
        first_report(db, argv[1])
    else:
        changes_report(db, argv[1], argv[2])


if __name__ == "__main__":
    main(sys.argv[1:])
