-- PipelineDB 1.0 spellings and Sluice's aliases all declare the same things.
CREATE EXTENSION IF NOT EXISTS pipelinedb;
CREATE EXTENSION pipeline_kafka;
CREATE STREAM orders (city text, amount numeric(10,2), qty int2, ts timestamptz);
CREATE CONTINUOUS VIEW by_city AS SELECT city, count(*), sum(amount), avg(qty), min(ts), max(ts) FROM orders GROUP BY city;
CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(amount * qty) AS revenue FROM orders;
CREATE VIEW big WITH (action = materialize) AS SELECT upper(city) AS city, count(*) FROM orders WHERE amount >= 100 GROUP BY upper(city);
CREATE VIEW per_hour AS SELECT date_trunc('hour', ts) AS hour, count(*), max(amount) FROM orders GROUP BY hour;
INSERT INTO orders (city, amount, qty, ts) VALUES
  ('lyon', 120.50, 2, '2026-11-21 10:15:00+00'),
  ('paris', 99.99, 1, '2026-11-21 10:45:00+00'),
  ('lyon', 5, 10, '2026-11-21 11:05:00+01'),
  ('nice', NULL, NULL, NULL);
INSERT INTO orders SELECT 'paris', g * 10, g::int2, timestamptz '2026-11-21 12:00:00+00' + g * interval '20 minutes' FROM generate_series(1, 5) g;
SELECT * FROM by_city ORDER BY city;
SELECT * FROM total;
SELECT * FROM big ORDER BY city;
SELECT * FROM per_hour ORDER BY hour;
-- COPY in text and CSV format feeds the same views.
COPY orders (city, amount, qty) FROM STDIN;
lyon	1.25	1
nice	\N	3
\.
COPY orders (city, amount) FROM STDIN WITH (FORMAT csv, HEADER true);
city,amount
"bordeaux, sud",300
lyon,
\.
SELECT * FROM by_city ORDER BY city;
SELECT * FROM total;
SELECT view_name FROM (SELECT name AS view_name FROM pipelinedb.get_views()) v ORDER BY 1;
SELECT name FROM pipelinedb.get_streams();
-- Order-sensitive aggregates follow arrival order; HAVING and FILTER apply as in PostgreSQL.
CREATE STREAM words (w text, n int);
CREATE VIEW sentence AS SELECT string_agg(w, ' ') AS text, array_agg(n) AS ns, bool_and(n > 0) AS positive, count(*) FILTER (WHERE n > 1) AS big FROM words;
CREATE VIEW repeated AS SELECT w, count(*) FROM words GROUP BY w HAVING count(*) > 1;
INSERT INTO words VALUES ('the', 1), ('quick', 2), ('brown', 3);
INSERT INTO words VALUES ('fox', 4), ('the', 5);
SELECT * FROM sentence;
SELECT * FROM repeated;
-- Ordinary tables, joins of views with tables, and catalog queries are plain PostgreSQL.
CREATE TABLE cities (name text PRIMARY KEY, country text);
INSERT INTO cities VALUES ('lyon', 'FR'), ('paris', 'FR'), ('nice', 'FR');
SELECT c.country, sum(b.count) FROM by_city b JOIN cities c ON c.name = b.city GROUP BY c.country;
COPY cities FROM STDIN;
bordeaux, sud	FR
\.
SELECT count(*) FROM cities;
DROP FOREIGN TABLE orders CASCADE;
SELECT count(*) FROM pipelinedb.get_views();
\d
