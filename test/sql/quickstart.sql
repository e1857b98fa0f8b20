-- The README's first session: a stream, a continuous view, inserts, and reads.
CREATE FOREIGN TABLE clicks (url text, user_id int, latency_ms float8) SERVER pipelinedb;
CREATE VIEW per_url AS SELECT url, count(*), avg(latency_ms), max(latency_ms) FROM clicks GROUP BY url;
INSERT INTO clicks VALUES ('/a', 1, 12.5), ('/a', 2, 30), ('/b', 1, 7);
SELECT * FROM per_url ORDER BY url;
INSERT INTO clicks (url, latency_ms) VALUES ('/b', 1.25), ('/c', NULL);
SELECT * FROM per_url ORDER BY url;
\d
\d clicks
\d per_url
SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'clicks' ORDER BY ordinal_position;
SELECT * FROM per_url_mrel ORDER BY url;
-- A stream stores nothing: reading it is an error, as in PipelineDB.
SELECT * FROM clicks;
DROP FOREIGN TABLE clicks;
DROP VIEW per_url;
DROP FOREIGN TABLE clicks;
\d
