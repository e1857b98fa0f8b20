-- PipelineDB's administration functions.
CREATE STREAM s (k text, n int);
CREATE VIEW v AS SELECT k, count(*), sum(n) FROM s GROUP BY k;
INSERT INTO s VALUES ('a', 1), ('b', 2);
-- A deactivated view ignores what arrives meanwhile (as in PipelineDB), and says so in pipelinedb.views.
SELECT pipelinedb.deactivate('v');
INSERT INTO s VALUES ('a', 10);
SELECT name, active FROM pipelinedb.views;
SELECT pipelinedb.activate('v');
INSERT INTO s VALUES ('a', 100);
SELECT * FROM v ORDER BY k;
SELECT pipelinedb.truncate_continuous_view('v');
SELECT count(*) FROM v;
INSERT INTO s VALUES ('c', 3);
SELECT * FROM v ORDER BY k;
-- combine_table merges rows shaped like the _mrel into the view, as if they came from the stream.
CREATE TABLE backfill AS SELECT * FROM v_mrel LIMIT 0;
INSERT INTO backfill VALUES ('c', 10, 30), ('d', 1, 4);
SELECT pipelinedb.combine_table('v', 'backfill');
SELECT * FROM v ORDER BY k;
SELECT pipelinedb.activate('nosuch');
SELECT pipelinedb.version() LIKE 'Sluice%' AS is_sluice;
-- combine() merges the aggregates' states across groups: the average of all rows, not the average of averages.
CREATE VIEW avgs AS SELECT k, avg(n) AS a, count(*), max(n) FROM s GROUP BY k;
INSERT INTO s VALUES ('x', 1), ('x', 2), ('y', 10);
SELECT k, a FROM avgs ORDER BY k;
SELECT combine(a) AS overall, combine(count) AS total, combine(max) AS top FROM avgs;
SELECT combine(a) FROM avgs_mrel WHERE k <> 'y';
SELECT combine(k) FROM avgs;
