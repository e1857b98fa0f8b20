-- PipelineDB behaviours a migrating user's SQL relies on, run with PostgreSQL's regression settings
-- (what PGTZ=PST8PDT, PGDATESTYLE='Postgres, MDY' and PGOPTIONS='-c intervalstyle=postgres_verbose
-- -c extra_float_digits=0' give a session). Expected output follows PipelineDB 1.0's documented behaviour.
SET TimeZone = 'PST8PDT';
SET DateStyle = 'Postgres, MDY';
SET IntervalStyle = 'postgres_verbose';
SET extra_float_digits = 0;

CREATE FOREIGN TABLE events (user_id int, took interval, ts timestamptz, url text) SERVER pipelinedb;

-- INSERT into a stream from wherever SQL runs: PREPARE/EXECUTE, a DO block, a function, a table trigger
-- (pipelinedb.insert_into_stream too), a CTE; the views see the rows when the statement or transaction commits.
CREATE FOREIGN TABLE signups (plan text, seats int) SERVER pipelinedb;
CREATE VIEW seats_per_plan AS SELECT plan, count(*), sum(seats) FROM signups GROUP BY plan;
PREPARE signup(text, int) AS INSERT INTO signups VALUES ($1, $2);
EXECUTE signup('free', 1);
DO $$ BEGIN INSERT INTO signups VALUES ('team', 5); END $$;
CREATE FUNCTION sign_up(p text, n int) RETURNS void LANGUAGE sql AS $$ INSERT INTO signups VALUES (p, n) $$;
SELECT sign_up('team', 3);
CREATE TABLE accounts (plan text, seats int);
CREATE TRIGGER mirror AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION pipelinedb.insert_into_stream('signups');
BEGIN;
INSERT INTO accounts VALUES ('enterprise', 50), ('free', 1);
SELECT plan, count FROM seats_per_plan WHERE plan = 'enterprise';
COMMIT;
WITH more AS (SELECT 'free' AS plan, g AS seats FROM generate_series(1, 3) g) INSERT INTO signups SELECT * FROM more;
INSERT INTO signups VALUES ('free', 1) RETURNING *;
SELECT * FROM seats_per_plan ORDER BY plan;
-- ttl_expire takes the view's name as text.
CREATE VIEW recent_signups WITH (ttl = '1 hour', ttl_column = 'm') AS SELECT minute(arrival_timestamp) AS m, count(*) FROM signups GROUP BY m;
SELECT pipelinedb.ttl_expire('recent_signups');

-- date_round: any interval (months count as 30 days, years as 365.25 days), from 2000-01-01;
-- a NULL interval leaves the timestamp as it is.
SELECT date_round('2026-12-04 10:11:12+00', '15 minutes') AS quarter,
       date_round('2026-12-04 10:11:12+00', '1 month') AS month_of_30_days,
       date_round('2026-12-04 10:11:12+00', NULL) AS unrounded;
CREATE VIEW per_month AS SELECT date_round(ts, '1 month') AS bucket, count(*) FROM events GROUP BY bucket;

-- avg, sum, min and max over interval.
CREATE VIEW timings AS SELECT url, avg(took), sum(took), min(took), max(took) FROM events GROUP BY url;

-- LIMIT/OFFSET in a view without aggregates: every row is kept, the limit applies when it is read.
CREATE VIEW first_events AS SELECT user_id, url FROM events WHERE user_id > 0 LIMIT 2 OFFSET 1;
-- With aggregates a LIMIT would cut groups, not rows: refused.
CREATE VIEW top_url AS SELECT url, count(*) FROM events GROUP BY url LIMIT 1;

-- Read with combine() below.
CREATE VIEW by_url AS SELECT url, count(*), avg(user_id) AS avg_user FROM events GROUP BY url;

INSERT INTO events VALUES
  (1, '1 second', '2026-12-04 10:00:00+00', '/a'),
  (2, '3 seconds', '2026-12-04 11:00:00+00', '/a'),
  (3, '1 minute', '2026-11-20 09:00:00+00', '/b'),
  (4, '2 minutes', '2026-01-31 08:00:00+00', '/b');

SELECT bucket, count FROM per_month ORDER BY bucket;
SELECT url, avg, sum, min, max FROM timings ORDER BY url;
SELECT * FROM first_events;

-- Indexes on a continuous view index the table under it; DROP INDEX works.
CREATE INDEX timings_url ON timings (url);
CREATE INDEX ON per_month (bucket) WHERE count > 1;
SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('timings_mrel', 'per_month_mrel') ORDER BY indexname;
DROP INDEX timings_url;

-- combine() in a CTE, a sub-select and either side of a UNION: merged from the groups' states.
INSERT INTO events VALUES (5, '5 seconds', '2026-12-04 12:00:00+00', '/c'), (9, '9 seconds', '2026-12-04 12:00:00+00', '/c');
WITH merged AS (SELECT combine(count) AS n, combine(avg_user) AS avg_user FROM by_url) SELECT * FROM merged;
SELECT (SELECT combine(avg_user) FROM by_url WHERE url <> '/c') AS without_c, (SELECT avg_user FROM by_url WHERE url = '/c') AS c;
SELECT * FROM (SELECT combine(count) FROM by_url_mrel WHERE url = '/c') q
UNION ALL SELECT combine(count) FROM by_url;
SELECT combine(url) FROM by_url;

-- An output stream's delta is the change's partial state (an _mrel row): combine((delta).col) rolls a view up exactly.
CREATE VIEW per_minute AS SELECT url, minute(ts) AS m, count(*), avg(user_id) AS avg_user FROM events GROUP BY url, m;
CREATE VIEW per_hour AS SELECT (delta).url, hour((delta).m) AS h, combine((delta).count) AS count, combine((delta).avg_user) AS avg_user
  FROM output_of('per_minute') GROUP BY (delta).url, h;
INSERT INTO events VALUES (10, '1 second', '2026-12-04 10:01:00+00', '/d'), (20, '1 second', '2026-12-04 10:02:00+00', '/d'), (60, '1 second', '2026-12-04 11:00:00+00', '/d');
INSERT INTO events VALUES (30, '1 second', '2026-12-04 10:01:30+00', '/d');
SELECT url, h, count, avg_user FROM per_hour ORDER BY h;
CREATE VIEW not_an_aggregate AS SELECT combine((delta).url) FROM output_of('per_minute');

-- A sliding window's _mrel holds buckets by arrival_timestamp: an ordinary view over it combine()s a shorter window.
-- combine() over the sliding-window view itself sees only the buckets still in its window.
CREATE FOREIGN TABLE hits (url text, ts timestamptz) SERVER pipelinedb;
CREATE VIEW hits_hour WITH (sw = '1 hour') AS SELECT url, count(*) FROM hits GROUP BY url;
CREATE VIEW hits_by_ts WITH (sw = '1 hour', sw_column = 'ts') AS SELECT url, count(*) FROM hits GROUP BY url;
INSERT INTO hits VALUES ('/a', now()), ('/a', now() - interval '2 hours'), ('/b', now() - interval '3 hours');
CREATE VIEW hits_10_minutes AS SELECT url, combine(count) FROM hits_hour_mrel WHERE arrival_timestamp > clock_timestamp() - interval '10 minutes' GROUP BY url;
SELECT * FROM hits_10_minutes ORDER BY url;
SELECT combine(count) AS in_window FROM hits_by_ts;

-- Hypothetical-set aggregates over several columns, each in its own order; equal to PostgreSQL's over a table.
CREATE FOREIGN TABLE scores (a int, b int, c text) SERVER pipelinedb;
CREATE TABLE scores_table (a int, b int, c text);
CREATE VIEW ranks AS SELECT rank(7, 47, '47') WITHIN GROUP (ORDER BY a, b, c),
  dense_rank(7, 47, '47') WITHIN GROUP (ORDER BY a, b, c),
  percent_rank(7, 47, '47') WITHIN GROUP (ORDER BY a DESC, b, c NULLS FIRST),
  cume_dist(7, 47, NULL) WITHIN GROUP (ORDER BY a, b DESC, c) FROM scores;
INSERT INTO scores SELECT g % 10, g % 97, (g % 50)::text FROM generate_series(1, 3000) g;
INSERT INTO scores VALUES (7, 47, '47'), (7, 47, NULL), (NULL, 1, 'a'), (7, NULL, '1'), (7, 47, '47'), (1, 1, '1');
INSERT INTO scores_table SELECT g % 10, g % 97, (g % 50)::text FROM generate_series(1, 3000) g;
INSERT INTO scores_table VALUES (7, 47, '47'), (7, 47, NULL), (NULL, 1, 'a'), (7, NULL, '1'), (7, 47, '47'), (1, 1, '1');
SELECT * FROM ranks;
SELECT rank(7, 47, '47') WITHIN GROUP (ORDER BY a, b, c),
  dense_rank(7, 47, '47') WITHIN GROUP (ORDER BY a, b, c),
  percent_rank(7, 47, '47') WITHIN GROUP (ORDER BY a DESC, b, c NULLS FIRST),
  cume_dist(7, 47, NULL) WITHIN GROUP (ORDER BY a, b DESC, c) FROM scores_table;
CREATE VIEW bad_rank AS SELECT rank(7, 47) WITHIN GROUP (ORDER BY a, b, c) FROM scores;

-- first_values(n, v1, v2, …): the n smallest tuples, sorted field by field (NULLs last); in a view and over a table.
CREATE VIEW first_scores AS SELECT a % 2 AS parity, first_values(3, c, a, b) AS firsts FROM scores GROUP BY parity;
INSERT INTO scores VALUES (1, 5, 'a'), (2, 6, 'a'), (3, NULL, 'a'), (4, 1, NULL), (NULL, NULL, NULL), (0, 0, '0');
SELECT * FROM first_scores ORDER BY parity;
SELECT first_values(3, c, a, b) FROM scores_table WHERE a % 2 = 1;
SELECT first_values(2, x, -x) FROM generate_series(1, 5) x;

-- pipelinedb.hash_group: any number of values of any types (PostgreSQL's hash_record, so its own values).
SELECT pipelinedb.hash_group(1, 'a'::text) = hash_group(1, 'a'::text) AS same,
       hash_group(1, 'a'::text) <> hash_group(2, 'a'::text) AS differs,
       hash_group(date '2026-12-04', 1.5, true) IS NOT NULL AS mixed_types;

-- Composite and enum types in streams and views.
CREATE TYPE point2 AS (x int, y int);
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE FOREIGN TABLE feelings (p point2, m mood) SERVER pipelinedb;
CREATE VIEW by_mood AS SELECT m, count(*), sum((p).x) AS sum_x, min(p::text) AS first_p FROM feelings GROUP BY m;
CREATE VIEW happy_points AS SELECT p, (p).y * 10 AS y10 FROM feelings WHERE m > 'ok';
INSERT INTO feelings VALUES ('(1,2)', 'ok'), (ROW(3, 4), 'happy'), (ROW(5, 6)::point2, 'sad');
INSERT INTO feelings SELECT ROW(g, g), 'happy' FROM generate_series(7, 8) g;
INSERT INTO feelings VALUES ('(1,x)', 'ok');
INSERT INTO feelings VALUES ('(1,2)', 'meh');
SELECT * FROM by_mood ORDER BY m;
SELECT * FROM happy_points ORDER BY y10;

-- money, time, timetz and arrays in sum/min/max.
CREATE FOREIGN TABLE bills (amount money, at time, attz timetz, tags int[]) SERVER pipelinedb;
CREATE VIEW bill_totals AS SELECT sum(amount), min(amount) AS least, max(at) AS latest, min(attz) AS earliest_tz, max(tags) AS tags FROM bills;
INSERT INTO bills VALUES ('$1.50', '10:00', '10:00+02', '{1,2}'), ('$2.25', '09:00', '11:00+05', '{1,3}');
SELECT * FROM bill_totals;

-- get_views() and get_transforms() with PipelineDB's columns first.
CREATE VIEW urls_out WITH (action = transform, outputfunc = pipelinedb.insert_into_stream('scores')) AS SELECT user_id AS a, user_id AS b, url AS c FROM events;
SELECT id::regclass AS id, schema, name, active FROM pipelinedb.get_views() WHERE name = 'by_url';
SELECT id::regclass AS id, schema, name, active, tgfunc, tgargs FROM pipelinedb.get_transforms();

-- The sketch aggregates are ordinary aggregates too, over tables, generate_series, sub-selects and UNION ALL,
-- and their results feed the sketch functions.
SELECT bloom_contains((SELECT bloom_agg(g) FROM generate_series(1, 100) g), 50) AS has_50,
       bloom_contains((SELECT bloom_agg(g) FROM generate_series(1, 100) g), 500) AS has_500;
SELECT hll_cardinality(hll_agg(g % 1000)) AS about_1000 FROM generate_series(1, 100000) g;
SELECT topk_values(topk_agg(url, 2)) AS top_urls, topk_freqs(topk_agg(url, 2)) AS counts FROM (SELECT url FROM scores_table JOIN (VALUES ('/a'), ('/a'), ('/b')) v(url) ON true WHERE a = 7) q;
SELECT freq(freq_agg(x), 'a') AS a, freq(freq_agg(x), 'z') AS z FROM (SELECT 'a' AS x UNION ALL SELECT 'a' UNION ALL SELECT 'b') u;
SELECT round(dist_quantile(dist_agg(g), 0.5)) AS median FROM generate_series(1, 1001) g;
SELECT keyed_max(a, c) AS c_of_largest_a, keyed_min(b, c) AS c_of_smallest_b FROM scores_table WHERE c IS NOT NULL;
-- In a view and over the same rows in a table: the same state.
CREATE VIEW score_sketch AS SELECT hll_agg(b) AS h FROM scores;
INSERT INTO scores SELECT g % 10, g % 97, 'x' FROM generate_series(1, 500) g;
INSERT INTO scores_table SELECT g % 10, g % 97, 'x' FROM generate_series(1, 500) g;
SELECT (SELECT h FROM score_sketch) = (SELECT hll_agg(b) FROM scores_table WHERE c = 'x') AS same_state;

-- Catalog: the streams with the views reading them.
SELECT * FROM pipelinedb.get_streams() ORDER BY name;
SELECT * FROM pipelinedb.stream_readers ORDER BY stream;

-- The internals stay intact.
DROP SERVER pipelinedb;
DROP SCHEMA pipelinedb CASCADE;
DROP TABLE sluice.views;
CREATE FOREIGN TABLE still_works (x int) SERVER pipelinedb;
