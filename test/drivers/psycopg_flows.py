"""The flows psycopg 3 programs run against Sluice on the port given: one "name=value" line per result."""
import sys

import psycopg

port = sys.argv[1]
conn = psycopg.connect(f"host=127.0.0.1 port={port} user=sluice dbname=sluice application_name=psycopg-flows", autocommit=True)
print("application_name=" + conn.execute("SHOW application_name").fetchone()[0])
conn.execute("CREATE FOREIGN TABLE py_events (k text, n int) SERVER pipelinedb")
conn.execute("CREATE VIEW py_counts AS SELECT k, count(*) FROM py_events GROUP BY k")
for i in range(50):
    conn.execute("INSERT INTO py_events VALUES (%s, %s)", (f"k{i % 3}", i))
print("counted=%d" % conn.execute("SELECT sum(count) FROM py_counts").fetchone()[0])

with conn.transaction():
    with conn.cursor(name="server_side") as cur:
        cur.itersize = 25
        cur.execute("SELECT g FROM generate_series(1, 1000) g")
        first = cur.fetchmany(10)
        rest = sum(1 for _ in cur)
print("named_cursor_rows=%d" % (len(first) + rest))

conn.execute("SET TimeZone = 'Asia/Tokyo'")
other = psycopg.connect(f"host=127.0.0.1 port={port} user=sluice dbname=sluice", autocommit=True)
print("own_timezone=" + conn.execute("SHOW TimeZone").fetchone()[0])
print("other_timezone=" + other.execute("SHOW TimeZone").fetchone()[0])
print("other_application_name=" + other.execute("SHOW application_name").fetchone()[0])
