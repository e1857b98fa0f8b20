-- PipelineDB behaviours a migrating user's SQL relies on, run with PostgreSQL's regression settings
-- (what PGTZ=PST8PDT, PGDATESTYLE='Postgres, MDY' and PGOPTIONS='-c intervalstyle=postgres_verbose
-- -c extra_float_digits=0' give a session). Expected output follows PipelineDB 1.0's documented behaviour.
SET TimeZone = 'PST8PDT';
SET DateStyle = 'Postgres, MDY';
SET IntervalStyle = 'postgres_verbose';
SET extra_float_digits = 0;

CREATE FOREIGN TABLE events (user_id int, took interval, ts timestamptz, url text) SERVER pipelinedb;

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

-- Catalog: the streams with the views reading them.
SELECT * FROM pipelinedb.get_streams() ORDER BY name;
SELECT * FROM pipelinedb.stream_readers ORDER BY stream;

-- The internals stay intact.
DROP SERVER pipelinedb;
DROP SCHEMA pipelinedb CASCADE;
DROP TABLE sluice.views;
CREATE FOREIGN TABLE still_works (x int) SERVER pipelinedb;
