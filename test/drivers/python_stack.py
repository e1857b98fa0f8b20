"""psycopg2, SQLAlchemy and pandas against Sluice on the port given: one "name=value" line per result."""
import datetime
import decimal
import sys

import pandas
import psycopg2
import sqlalchemy

port = sys.argv[1]
conn = psycopg2.connect(host="127.0.0.1", port=port, user="sluice", dbname="sluice")
conn.autocommit = True
cur = conn.cursor()
cur.execute("CREATE FOREIGN TABLE orders (city text, amount numeric, at timestamptz) SERVER pipelinedb")
cur.execute("CREATE VIEW revenue AS SELECT city, count(*), sum(amount) AS total FROM orders GROUP BY city")
cur.executemany(
    "INSERT INTO orders VALUES (%s, %s, %s)",
    [("paris", decimal.Decimal("10.50"), datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)), ("lyon", decimal.Decimal("3"), None), ("paris", decimal.Decimal("1.25"), None)],
)
cur.execute("SELECT city, count, total FROM revenue ORDER BY city")
print("psycopg2=" + ";".join(f"{c}:{n}:{t}" for c, n, t in cur.fetchall()))

engine = sqlalchemy.create_engine(f"postgresql+psycopg2://sluice@127.0.0.1:{port}/sluice")
inspector = sqlalchemy.inspect(engine)
print("views=" + ",".join(sorted(inspector.get_view_names())))
print("revenue_columns=" + ",".join(f"{c['name']}:{c['type']}" for c in inspector.get_columns("revenue")))
print("foreign_tables=" + ",".join(sorted(inspector.get_foreign_table_names())))

frame = pandas.read_sql("SELECT city, count, total FROM revenue ORDER BY city", engine)
print("read_sql=" + frame.to_csv(index=False, header=False).strip().replace("\n", ";"))
pandas.DataFrame({"city": ["nice", "nice"], "amount": [2.5, 4.0]}).to_sql("targets", engine, index=False)
print("to_sql=" + pandas.read_sql("SELECT city, sum(amount) AS s FROM targets GROUP BY city", engine).to_csv(index=False, header=False).strip())
