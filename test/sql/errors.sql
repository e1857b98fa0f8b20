-- Bad input gets PostgreSQL's SQLSTATE and the session stays usable.
\set VERBOSITY verbose
CREATE STREAM s (a int, b text, c float8);
CREATE VIEW v AS SELECT b, count(*), sum(a) FROM s GROUP BY b;
INSERT INTO s VALUES ('abc', 'x', 1);
INSERT INTO s VALUES (99999999999, 'x', 1);
INSERT INTO s (nope) VALUES (1);
INSERT INTO s VALUES (1, 'x', 'one point five');
INSERT INTO s VALUES (1, 'x', 1, 2, 3);
SELEC 1;
SELECT * FROM s;
SELECT count(*) FROM v;
-- Unsupported constructs in a continuous view: 0A000, naming the construct.
CREATE VIEW v2 AS SELECT * FROM s;
CREATE VIEW v2 AS SELECT DISTINCT b, count(*) FROM s GROUP BY b;
CREATE VIEW v2 AS SELECT b, count(*) FROM s GROUP BY b ORDER BY b;
CREATE VIEW v2 AS SELECT b, mode() WITHIN GROUP (ORDER BY a) FROM s GROUP BY b;
CREATE VIEW v2 AS SELECT sum(DISTINCT a) FROM s;
CREATE VIEW v2 WITH (ttl = '1 day', ttl_column = 'x') AS SELECT count(*) FROM s;
CREATE VIEW v2 AS SELECT b, count(*) OVER () FROM s;
CREATE OR REPLACE VIEW v AS SELECT b, count(*) FROM s GROUP BY b;
-- PostgreSQL's own checks apply to the view's query.
CREATE VIEW v2 AS SELECT b, a, count(*) FROM s GROUP BY b;
CREATE VIEW v2 AS SELECT missing, count(*) FROM s GROUP BY missing;
CREATE VIEW v2 AS SELECT b, nosuchfn(a) FROM s GROUP BY b, a;
-- Inside a transaction block: DDL on streams is refused, writes follow the block.
BEGIN;
CREATE VIEW v3 AS SELECT count(*) FROM s;
ROLLBACK;
BEGIN;
INSERT INTO s VALUES (5, 'rolled back', 0);
ROLLBACK;
BEGIN;
INSERT INTO s VALUES (7, 'committed', 0);
INSERT INTO s VALUES ('bad', 'x', 0);
SELECT 1;
COMMIT;
SELECT * FROM v ORDER BY b;
-- COPY with bad data fails as a whole.
COPY s (a, b) FROM STDIN;
1	ok
2	ok	extra
\.
COPY s (a, b) FROM STDIN;
1	ok
x	bad
\.
SELECT * FROM v ORDER BY b;
DROP STREAM nosuch;
DROP VIEW nosuch;
SELECT 'still here' AS status;
