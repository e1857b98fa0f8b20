"""psycopg 3 over TLS (sslmode=require), against Sluice on the port given."""
import sys

import psycopg

conn = psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=sluice dbname=sluice sslmode=require")
print("count=%s" % conn.execute("SELECT count FROM tls_v").fetchone()[0])
print("ssl=%s" % (conn.pgconn.ssl_in_use,))
