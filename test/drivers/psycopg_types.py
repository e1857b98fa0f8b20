"""psycopg 3 inserting Python values into a stream in binary (%b) and as it chooses (%s); then the rows as the view keeps them."""
import datetime
import decimal
import sys
import uuid

import psycopg

conn = psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=sluice dbname=sluice", autocommit=True)
conn.execute("CREATE FOREIGN TABLE pt (k text, n numeric, ts timestamptz, d date, u uuid, b bytea, xs int8[], j jsonb, iv interval) SERVER pipelinedb")
conn.execute("CREATE VIEW pt_v AS SELECT k, n, ts, d, u, b, xs, j, iv FROM pt")
values = (
    decimal.Decimal("1.50"),
    datetime.datetime(2026, 12, 4, 10, 30, 0, 123456, tzinfo=datetime.timezone.utc),
    datetime.date(2026, 2, 28),
    uuid.UUID("0b7e5f4c-1d2a-4c3b-9a8e-7f6d5c4b3a21"),
    b"\x00\xff",
    [1, 2, None],
    psycopg.types.json.Jsonb({"a": [1, "x"]}),
    datetime.timedelta(days=3, seconds=5),
)
conn.execute("INSERT INTO pt VALUES ('binary', %b, %b, %b, %b, %b, %b, %b, %b)", values)
conn.execute("INSERT INTO pt VALUES ('auto', %s, %s, %s, %s, %s, %s, %s, %s)", values)
conn.execute("SET TimeZone = 'UTC'")
for row in conn.execute("SELECT k, n::text, ts::text, d::text, u::text, encode(b, 'hex'), xs::text, j::text, iv::text FROM pt_v ORDER BY k"):
    print(f"{row[0]}=" + "|".join(row[1:]))

# COPY FORMAT binary, as psycopg's copy.write_row sends it.
conn.execute("CREATE FOREIGN TABLE pc (k text, n numeric, ts timestamptz, xs int8[], f float8) SERVER pipelinedb")
conn.execute("CREATE VIEW pc_v AS SELECT k, count(*), sum(n) AS n, max(ts) AS ts, sum(f) AS f, sum(array_length(xs, 1)) AS items FROM pc GROUP BY k")
with conn.cursor() as cur:
    with cur.copy("COPY pc (k, n, ts, xs, f) FROM STDIN (FORMAT binary)") as copy:
        copy.set_types(["text", "numeric", "timestamptz", "int8[]", "float8"])
        for i in range(3000):
            copy.write_row((f"g{i % 3}", decimal.Decimal(i) / 4, datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=i), [i, None], i * 0.5))
for row in conn.execute("SELECT k, count::text, n::text, ts::text, f::text, items::text FROM pc_v ORDER BY k"):
    print(f"copy_{row[0]}=" + "|".join(row[1:]))
