/**
 * PipelineDB's sketch aggregates and their companion functions, in the
 * serving store. Views are read by PostgreSQL itself, so every function that
 * reads a sketch state (`SELECT topk_values(top) FROM v`) is SQL or plpgsql
 * over the bytea the engine wrote: the version-2 layouts of engine/sketches
 * (fixed-width big-endian fields, values as length-prefixed UTF-8 of their
 * PostgreSQL text), documented beside each sketch's serialize().
 *
 * PipelineDB had its own types (topk, hll, cmsketch, bloom, …); Sluice's
 * states are bytea, so a view column `topk_agg(x, 10) AS top` is bytea.
 * Values come back as text (PostgreSQL's text output of the original value):
 * cast them back where the type matters (`topk_values(top)::int[]`).
 *
 * In continuous views the engine computes the aggregates (topk_agg,
 * hll_agg, …) and PostgreSQL only types the view's query with them; over
 * tables, sub-selects and anything else the store aggregates they are
 * ordinary aggregates giving the same states (see aggregateStateSql), so
 * `hll_cardinality(hll_agg(x))` works anywhere. Hashes that a function
 * recomputes (freq, freq_add, bloom_contains, freq_agg, bloom_agg) come from
 * md5() of the value's text, as engine/sketches/hash.ts sqlHash does;
 * hll_add, hll_agg and bucket_agg compute MurmurHash3 x64 128
 * (sluice.murmur3_h1s), as HyperLogLog.add and BucketAgg.add do. The
 * functions that change a state (hll_add, freq_add, topk_increment,
 * dist_add, and the aggregates hll_union_agg, freq_merge_agg,
 * bloom_union_agg, bloom_intersection_agg) and the sketch aggregates give
 * the bytes the engine's sketch gives for the same operations, except that
 * topk_agg over a table counts exactly where TopK would start to estimate.
 */

const commonSql = `
-- Checks a sketch state's version (2) and kind bytes.
CREATE OR REPLACE FUNCTION sluice.sketch_check(state bytea, kind int, what text) RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF length(state) < 2 OR get_byte(state, 1) <> kind THEN
    RAISE EXCEPTION 'expected a % state', what USING ERRCODE = 'invalid_binary_representation';
  END IF;
  IF get_byte(state, 0) <> 2 THEN
    RAISE EXCEPTION 'unsupported % format version %', what, get_byte(state, 0)
      USING ERRCODE = 'invalid_binary_representation', HINT = 'Functions over sketch states read format version 2.';
  END IF;
END $$;
CREATE OR REPLACE FUNCTION sluice.sk_u32(b bytea, o int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT (get_byte(b, o)::bigint << 24) | (get_byte(b, o + 1) << 16) | (get_byte(b, o + 2) << 8) | get_byte(b, o + 3) $$;
-- Binary search over n sorted u32 keys from byte offset start, one every width bytes: the index of key, or -1.
CREATE OR REPLACE FUNCTION sluice.sk_find_u32(state bytea, start int, n int, width int, key bigint) RETURNS int LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  lo int := 0;
  hi int := n - 1;
  mid int;
  k bigint;
BEGIN
  WHILE lo <= hi LOOP
    mid := (lo + hi) / 2;
    k := sluice.sk_u32(state, start + width * mid);
    IF k = key THEN
      RETURN mid;
    ELSIF k < key THEN
      lo := mid + 1;
    ELSE
      hi := mid - 1;
    END IF;
  END LOOP;
  RETURN -1;
END $$;
CREATE OR REPLACE FUNCTION sluice.sk_u64(b bytea, o int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT ('x' || encode(substring(b FROM o + 1 FOR 8), 'hex'))::bit(64)::bigint $$;
-- The double of its IEEE 754 bits.
CREATE OR REPLACE FUNCTION sluice.f64(bits bigint) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN bits < 0 THEN -1::float8 ELSE 1::float8 END * CASE (bits >> 52) & 2047
    WHEN 2047 THEN CASE WHEN bits & 4503599627370495 = 0 THEN 'Infinity'::float8 ELSE 'NaN'::float8 END
    WHEN 0 THEN (bits & 4503599627370495)::float8 * (2::float8 ^ -1074)
    ELSE ((bits & 4503599627370495) + 4503599627370496)::float8 * (2::float8 ^ (((bits >> 52) & 2047) - 1075)) END
$$;
-- n big-endian doubles from byte offset o (the bits read in a step of their own, so f64 reads a column).
CREATE OR REPLACE FUNCTION sluice.f64s(b bytea, o int, n int) RETURNS double precision[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(sluice.f64(x.bits) ORDER BY x.i), '{}')
  FROM (SELECT i, sluice.sk_u64(b, o + 8 * i) AS bits FROM generate_series(0, n - 1) AS i OFFSET 0) AS x
$$;
`;

/**
 * topk_agg(x, k[, weight]) and topk(state) → (value, frequency) rows, most
 * frequent first (ties by value), topk_values(state) → text[],
 * topk_freqs(state) → bigint[]. Layout: see TopK.serialize.
 */
const topkSql = `
CREATE OR REPLACE FUNCTION public.topk(state bytea, OUT value text, OUT frequency bigint) RETURNS SETOF record
  LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  n int;
  o int := 22;
  len int;
BEGIN
  PERFORM sluice.sketch_check(state, 4, 'topk');
  n := least(sluice.sk_u32(state, 18), sluice.sk_u32(state, 2));
  FOR i IN 1..n LOOP
    frequency := sluice.sk_u64(state, o);
    len := sluice.sk_u32(state, o + 17);
    value := convert_from(substring(state FROM o + 22 FOR len), 'UTF8');
    o := o + 21 + len;
    RETURN NEXT;
  END LOOP;
END $$;
CREATE OR REPLACE FUNCTION public.topk_values(state bytea) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT AS
  $$ SELECT coalesce(array_agg(t.value ORDER BY t.n), '{}') FROM public.topk(state) WITH ORDINALITY AS t(value, frequency, n) $$;
CREATE OR REPLACE FUNCTION public.topk_freqs(state bytea) RETURNS bigint[] LANGUAGE sql IMMUTABLE STRICT AS
  $$ SELECT coalesce(array_agg(t.frequency ORDER BY t.n), '{}') FROM public.topk(state) WITH ORDINALITY AS t(value, frequency, n) $$;
`;


/**
 * hll_agg(x[, p]) and hll_cardinality(state) → bigint (Ertl's estimator, as
 * HyperLogLog.cardinality), hll_union(a, b) → bytea and the aggregate
 * hll_union_agg(state) (e.g. across a view's rows). A union is sparse while
 * the merged entries fit, else dense at the lower precision: the same bytes
 * HyperLogLog.merge gives. Layout: see HyperLogLog.serialize.
 */
const hllSql = `
-- Ertl's improved raw estimate from the register histogram c (c[k + 1] = registers holding k, k = 0..q+1) of m registers.
CREATE OR REPLACE FUNCTION sluice.hll_ertl(c float8[], m float8, q int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  x float8;
  y float8;
  z float8;
  t float8;
  prev float8;
BEGIN
  x := (m - c[q + 2]) / m;
  IF x = 0 OR x = 1 THEN
    t := 0;
  ELSE
    y := 1;
    z := 1 - x;
    LOOP
      x := sqrt(x);
      prev := z;
      y := y * 0.5::float8;
      z := z - (1 - x) * (1 - x) * y;
      EXIT WHEN z = prev;
    END LOOP;
    t := z / 3;
  END IF;
  z := m * t;
  FOR k IN REVERSE q..1 LOOP
    z := 0.5::float8 * (z + c[k + 1]);
  END LOOP;
  x := c[1] / m;
  IF x = 1 THEN
    RETURN 0;
  END IF;
  y := 1;
  t := x;
  LOOP
    x := x * x;
    prev := t;
    t := t + x * y;
    y := y + y;
    EXIT WHEN t = prev;
  END LOOP;
  z := z + m * t;
  RETURN m * m / (2 * ln(2::float8) * z);
END $$;
CREATE OR REPLACE FUNCTION public.hll_cardinality(state bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  p int;
  q int;
  m float8;
  cnt bigint;
  c float8[];
BEGIN
  PERFORM sluice.sketch_check(state, 1, 'hll');
  p := get_byte(state, 2);
  IF get_byte(state, 3) = 0 THEN
    q := 39;
    m := 33554432;
    cnt := sluice.sk_u32(state, 4);
    SELECT array_agg(coalesce(h.n, 0)::float8 ORDER BY g.k) INTO c
    FROM generate_series(0, q + 1) AS g(k)
    LEFT JOIN (SELECT get_byte(state, 11 + 4 * i) & 63 AS r, count(*) AS n FROM generate_series(0, cnt::int - 1) AS i GROUP BY 1) AS h ON h.r = g.k;
    c[1] := m - cnt;
  ELSE
    q := 64 - p;
    m := 1 << p;
    SELECT array_agg(coalesce(h.n, 0)::float8 ORDER BY g.k) INTO c
    FROM generate_series(0, q + 1) AS g(k)
    LEFT JOIN (SELECT get_byte(state, 4 + i) AS r, count(*) AS n FROM generate_series(0, (1 << p) - 1) AS i GROUP BY 1) AS h ON h.r = g.k;
  END IF;
  RETURN floor(sluice.hll_ertl(c, m, q) + 0.5)::bigint;
END $$;
-- The non-zero dense registers (index j, value rho) at precision p (at most the state's) that a state stands for.
CREATE OR REPLACE FUNCTION sluice.hll_registers(state bytea, p int) RETURNS TABLE (j int, rho int) LANGUAGE sql IMMUTABLE STRICT AS $$
  WITH e AS (
    SELECT (sluice.sk_u32(state, 8 + 4 * i) >> 6)::int AS idx, get_byte(state, 11 + 4 * i) & 63 AS r, 25 - p AS d
    FROM generate_series(0, CASE WHEN get_byte(state, 3) = 0 THEN sluice.sk_u32(state, 4)::int - 1 ELSE -1 END) AS i
    UNION ALL
    SELECT i, get_byte(state, 4 + i), get_byte(state, 2) - p
    FROM generate_series(0, CASE WHEN get_byte(state, 3) = 1 THEN (1 << get_byte(state, 2)) - 1 ELSE -1 END) AS i
    WHERE get_byte(state, 4 + i) > 0
  )
  SELECT idx >> d, max(CASE WHEN idx & ((1 << d) - 1) <> 0 THEN d - length(ltrim((idx & ((1 << d) - 1))::bit(32)::text, '0')) + 1 ELSE d + r END)
  FROM e GROUP BY 1
$$;
CREATE OR REPLACE FUNCTION public.hll_union(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  p int;
  cnt int;
  entries text;
  dense text;
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  PERFORM sluice.sketch_check(a, 1, 'hll');
  PERFORM sluice.sketch_check(b, 1, 'hll');
  p := least(get_byte(a, 2), get_byte(b, 2));
  IF get_byte(a, 3) = 0 AND get_byte(b, 3) = 0 THEN
    SELECT count(*), string_agg(lpad(to_hex(y.e), 8, '0'), '' ORDER BY y.e) INTO cnt, entries
    FROM (SELECT max(x.e) AS e FROM (
      SELECT sluice.sk_u32(s, 8 + 4 * i) AS e FROM unnest(ARRAY[a, b]) AS s, generate_series(0, sluice.sk_u32(s, 4)::int - 1) AS i
    ) AS x GROUP BY x.e >> 6) AS y;
    IF cnt <= 1 << (p - 3) THEN
      RETURN decode('0201' || lpad(to_hex(p), 2, '0') || '00' || lpad(to_hex(cnt), 8, '0') || coalesce(entries, ''), 'hex');
    END IF;
  END IF;
  SELECT string_agg(lpad(to_hex(coalesce(r.rho, 0)), 2, '0'), '' ORDER BY g.j) INTO dense
  FROM generate_series(0, (1 << p) - 1) AS g(j)
  LEFT JOIN (SELECT x.j, max(x.rho) AS rho FROM (SELECT * FROM sluice.hll_registers(a, p) UNION ALL SELECT * FROM sluice.hll_registers(b, p)) AS x GROUP BY x.j) AS r ON r.j = g.j;
  RETURN decode('0201' || lpad(to_hex(p), 2, '0') || '01' || dense, 'hex');
END $$;
CREATE OR REPLACE AGGREGATE public.hll_union_agg(bytea) (sfunc = public.hll_union, stype = bytea, combinefunc = public.hll_union, parallel = safe);
`;

/**
 * The text a sketch hashes for a value: PostgreSQL's text of it, numerics
 * without trailing fractional zeros (1.0 and 1.00 are one value), as the
 * engine's canonical text (normalizeNumericText).
 */
const hashTextSql = `
CREATE OR REPLACE FUNCTION sluice.sketch_text(v anyelement) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF pg_typeof(v) = 'numeric'::regtype THEN
    RETURN trim_scale(v::text::numeric)::text;
  END IF;
  RETURN v::text;
END $$;
-- h1 and h2 of engine/sketches/hash.ts sqlHash: the first two big-endian 32-bit words of md5(text).
CREATE OR REPLACE FUNCTION sluice.sketch_hash(t text, OUT h1 bigint, OUT h2 bigint) LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT ('x' || substr(md5(t), 1, 8))::bit(32)::bigint, ('x' || substr(md5(t), 9, 8))::bit(32)::bigint $$;
`;

/**
 * freq_agg(x[, eps, p]) and freq(state, value) → bigint (never below the
 * truth, above it by at most eps·total with probability p), freq_norm(state,
 * value) → float8 (freq / total), freq_total(state) → bigint. A value's
 * counter in row i is at i·width + (h1 + i·h2) mod width. Layout: see
 * CountMinSketch.serialize.
 */
const freqSql = `
CREATE OR REPLACE FUNCTION sluice.cms_counter(state bytea, idx bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  i int;
BEGIN
  IF get_byte(state, 18) = 1 THEN
    RETURN sluice.sk_u64(state, (19 + 8 * idx)::int);
  END IF;
  i := sluice.sk_find_u32(state, 23, sluice.sk_u32(state, 19)::int, 12, idx);
  RETURN CASE WHEN i < 0 THEN 0 ELSE sluice.sk_u64(state, 27 + 12 * i) END;
END $$;
-- The estimate for a value given its text (sluice.sketch_text).
CREATE OR REPLACE FUNCTION sluice.cms_freq(state bytea, t text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  w bigint;
  h record;
  best bigint;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 3, 'cms');
  IF t IS NULL THEN
    RETURN 0;
  END IF;
  w := sluice.sk_u32(state, 2);
  SELECT * INTO h FROM sluice.sketch_hash(t);
  FOR i IN 0..sluice.sk_u32(state, 6)::int - 1 LOOP
    best := least(best, sluice.cms_counter(state, i * w + (h.h1 + i * h.h2) % w));
  END LOOP;
  RETURN best;
END $$;
CREATE OR REPLACE FUNCTION public.freq(state bytea, value anyelement) RETURNS bigint LANGUAGE sql IMMUTABLE AS
  $$ SELECT sluice.cms_freq(state, sluice.sketch_text(value)) $$;
-- For a literal ('a'): PostgreSQL cannot type an unknown literal as anyelement.
CREATE OR REPLACE FUNCTION public.freq(state bytea, value text) RETURNS bigint LANGUAGE sql IMMUTABLE AS
  $$ SELECT sluice.cms_freq(state, value) $$;
CREATE OR REPLACE FUNCTION public.freq_total(state bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  PERFORM sluice.sketch_check(state, 3, 'cms');
  RETURN sluice.sk_u64(state, 10);
END $$;
CREATE OR REPLACE FUNCTION public.freq_norm(state bytea, value anyelement) RETURNS double precision LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN public.freq_total(state) = 0 THEN 0 ELSE public.freq(state, value)::float8 / public.freq_total(state) END $$;
CREATE OR REPLACE FUNCTION public.freq_norm(state bytea, value text) RETURNS double precision LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN public.freq_total(state) = 0 THEN 0 ELSE public.freq(state, value)::float8 / public.freq_total(state) END $$;
`;

/**
 * bloom_agg(x[, p, n]) and bloom_contains(state, value) → boolean (never
 * false for a value added; true for others with probability about p while
 * at most n distinct values were added), bloom_cardinality(state) → bigint
 * (estimated from the set bits). A value's bits are (h1 + i·h2) mod m, i <
 * k. Layout: see BloomFilter.serialize.
 */
const bloomSql = `
CREATE OR REPLACE FUNCTION sluice.bloom_bit(state bytea, b bigint) RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF get_byte(state, 7) = 1 THEN
    RETURN get_bit(state, 64 + b) = 1;
  END IF;
  RETURN sluice.sk_find_u32(state, 12, sluice.sk_u32(state, 8)::int, 4, b) >= 0;
END $$;
-- Whether a value, given its text (sluice.sketch_text), may have been added.
CREATE OR REPLACE FUNCTION sluice.bloom_has(state bytea, t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  m bigint;
  h record;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 5, 'bloom');
  IF t IS NULL THEN
    RETURN false;
  END IF;
  m := sluice.sk_u32(state, 2);
  SELECT * INTO h FROM sluice.sketch_hash(t);
  FOR i IN 0..get_byte(state, 6) - 1 LOOP
    IF NOT sluice.bloom_bit(state, (h.h1 + i * h.h2) % m) THEN
      RETURN false;
    END IF;
  END LOOP;
  RETURN true;
END $$;
CREATE OR REPLACE FUNCTION public.bloom_contains(state bytea, value anyelement) RETURNS boolean LANGUAGE sql IMMUTABLE AS
  $$ SELECT sluice.bloom_has(state, sluice.sketch_text(value)) $$;
-- For a literal ('a'): PostgreSQL cannot type an unknown literal as anyelement.
CREATE OR REPLACE FUNCTION public.bloom_contains(state bytea, value text) RETURNS boolean LANGUAGE sql IMMUTABLE AS
  $$ SELECT sluice.bloom_has(state, value) $$;
CREATE OR REPLACE FUNCTION public.bloom_cardinality(state bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  m float8;
  x float8;
  fill float8;
BEGIN
  PERFORM sluice.sketch_check(state, 5, 'bloom');
  m := sluice.sk_u32(state, 2);
  x := CASE WHEN get_byte(state, 7) = 1 THEN bit_count(substring(state FROM 9)) ELSE sluice.sk_u32(state, 8) END;
  IF x = 0 THEN
    RETURN 0;
  END IF;
  fill := CASE WHEN x >= m THEN (m - 0.5::float8) / m ELSE x / m END;
  RETURN floor((-m / get_byte(state, 6)) * ln(1 - fill) + 0.5)::bigint;
END $$;
`;

/**
 * dist_agg(x[, compression]) and dist_quantile(state, q) → float8,
 * dist_cdf(state, x) → float8: the t-digest's interpolations, as
 * TDigest.quantile and TDigest.cdf compute them (same operations in the same
 * order, so the same doubles). Layout: see TDigest.serialize.
 */
const distSql = `
-- An IEEE 754 double from its 8 big-endian bytes.
CREATE OR REPLACE FUNCTION sluice.sk_f64(b bytea, o int) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
  $$ SELECT sluice.f64(sluice.sk_u64(b, o)) $$;
CREATE OR REPLACE FUNCTION sluice.weighted_average(x1 float8, w1 float8, x2 float8, w2 float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN x1 > x2 THEN greatest(x2, least((x2 * w2 + x1 * w1) / (w2 + w1), x1))
              ELSE greatest(x1, least((x1 * w1 + x2 * w2) / (w1 + w2), x2)) END
$$;
-- The centroids (means and weights, 1-based) and total weight of a digest.
CREATE OR REPLACE FUNCTION sluice.tdigest_centroids(state bytea, OUT means float8[], OUT weights float8[], OUT total float8) LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  n int;
BEGIN
  PERFORM sluice.sketch_check(state, 2, 'tdigest');
  n := sluice.sk_u32(state, 26)::int;
  SELECT array_agg(sluice.sk_f64(state, 30 + 8 * i) ORDER BY i), array_agg(sluice.sk_f64(state, 30 + 8 * (n + i)) ORDER BY i)
    INTO means, weights FROM generate_series(0, n - 1) AS i;
  total := 0;
  FOR i IN 1..n LOOP
    total := total + weights[i];
  END LOOP;
END $$;
CREATE OR REPLACE FUNCTION public.dist_quantile(state bytea, q double precision) RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  c record;
  n int;
  mn float8;
  mx float8;
  idx float8;
  so_far float8;
  dw float8;
  left_unit float8;
  right_unit float8;
  z1 float8;
  z2 float8;
BEGIN
  IF NOT (q >= 0 AND q <= 1) THEN
    RAISE EXCEPTION 'quantile must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT * INTO c FROM sluice.tdigest_centroids(state);
  n := coalesce(cardinality(c.means), 0);
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  mn := sluice.sk_f64(state, 10);
  mx := sluice.sk_f64(state, 18);
  IF n = 1 THEN
    RETURN c.means[1];
  END IF;
  idx := q * c.total;
  IF idx < 1 THEN
    RETURN mn;
  END IF;
  IF c.weights[1] > 1 AND idx < c.weights[1] / 2 THEN
    RETURN mn + ((idx - 1) / (c.weights[1] / 2 - 1)) * (c.means[1] - mn);
  END IF;
  IF idx > c.total - 1 THEN
    RETURN mx;
  END IF;
  IF c.weights[n] > 1 AND c.total - idx <= c.weights[n] / 2 THEN
    RETURN mx - ((c.total - idx - 1) / (c.weights[n] / 2 - 1)) * (mx - c.means[n]);
  END IF;
  so_far := c.weights[1] / 2;
  FOR i IN 1..n - 1 LOOP
    dw := (c.weights[i] + c.weights[i + 1]) / 2;
    IF so_far + dw > idx THEN
      left_unit := 0;
      IF c.weights[i] = 1 THEN
        IF idx - so_far < 0.5::float8 THEN
          RETURN c.means[i];
        END IF;
        left_unit := 0.5;
      END IF;
      right_unit := 0;
      IF c.weights[i + 1] = 1 THEN
        IF so_far + dw - idx <= 0.5::float8 THEN
          RETURN c.means[i + 1];
        END IF;
        right_unit := 0.5;
      END IF;
      z1 := idx - so_far - left_unit;
      z2 := so_far + dw - idx - right_unit;
      RETURN sluice.weighted_average(c.means[i], z2, c.means[i + 1], z1);
    END IF;
    so_far := so_far + dw;
  END LOOP;
  z1 := idx - c.total - c.weights[n] / 2;
  z2 := c.weights[n] / 2 - z1;
  RETURN sluice.weighted_average(c.means[n], z1, mx, z2);
END $$;
CREATE OR REPLACE FUNCTION public.dist_cdf(state bytea, x double precision) RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  c record;
  n int;
  i int;
  mn float8;
  mx float8;
  so_far float8;
  dw float8;
  left_ex float8;
  right_ex float8;
  base float8;
BEGIN
  IF x = 'NaN'::float8 THEN
    RAISE EXCEPTION 'dist_cdf value must not be NaN' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT * INTO c FROM sluice.tdigest_centroids(state);
  n := coalesce(cardinality(c.means), 0);
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  mn := sluice.sk_f64(state, 10);
  mx := sluice.sk_f64(state, 18);
  IF x < mn THEN
    RETURN 0;
  END IF;
  IF x > mx THEN
    RETURN 1;
  END IF;
  IF n = 1 THEN
    RETURN CASE WHEN mx - mn = 0 THEN 0.5::float8 ELSE (x - mn) / (mx - mn) END;
  END IF;
  IF x < c.means[1] THEN
    IF c.means[1] - mn > 0 THEN
      IF x = mn THEN
        RETURN 0.5::float8 / c.total;
      END IF;
      RETURN (1 + ((x - mn) / (c.means[1] - mn)) * (c.weights[1] / 2 - 1)) / c.total;
    END IF;
    RETURN 0;
  END IF;
  IF x > c.means[n] THEN
    IF mx - c.means[n] > 0 THEN
      IF x = mx THEN
        RETURN 1 - 0.5::float8 / c.total;
      END IF;
      RETURN 1 - (1 + ((mx - x) / (mx - c.means[n])) * (c.weights[n] / 2 - 1)) / c.total;
    END IF;
    RETURN 1;
  END IF;
  so_far := 0;
  i := 1;
  WHILE i <= n - 1 LOOP
    IF c.means[i] = x THEN
      dw := 0;
      WHILE i <= n AND c.means[i] = x LOOP
        dw := dw + c.weights[i];
        i := i + 1;
      END LOOP;
      RETURN (so_far + dw / 2) / c.total;
    END IF;
    IF c.means[i] <= x AND x < c.means[i + 1] THEN
      IF c.means[i + 1] - c.means[i] > 0 THEN
        left_ex := 0;
        right_ex := 0;
        IF c.weights[i] = 1 THEN
          IF c.weights[i + 1] = 1 THEN
            RETURN (so_far + 1) / c.total;
          END IF;
          left_ex := 0.5;
        ELSIF c.weights[i + 1] = 1 THEN
          right_ex := 0.5;
        END IF;
        dw := (c.weights[i] + c.weights[i + 1]) / 2;
        base := so_far + c.weights[i] / 2 + left_ex;
        RETURN (base + ((dw - left_ex - right_ex) * (x - c.means[i])) / (c.means[i + 1] - c.means[i])) / c.total;
      END IF;
      RETURN (so_far + (c.weights[i] + c.weights[i + 1]) / 2) / c.total;
    END IF;
    so_far := so_far + c.weights[i];
    i := i + 1;
  END LOOP;
  RETURN 1 - 0.5::float8 / c.total;
END $$;
`;

/**
 * PipelineDB's companion functions that change a state, over the same
 * version-2 layouts, each giving the bytes the engine's sketch would:
 * bloom_union_agg / bloom_intersection_agg (BloomFilter.union / intersect),
 * freq_merge_agg / freq_add (CountMinSketch.merge / add), topk_increment
 * (TopK.add after deserialize), dist_add (TDigest.add / addWeighted) and
 * hll_add (HyperLogLog.add, MurmurHash3 x64 128 in SQL). Values are added as
 * their text (sluice.sketch_text), as the engine adds a view's values. A NULL
 * state gives NULL (its parameters are unknown); a NULL value leaves the state
 * as it is.
 */
/**
 * bucket_agg(x, bucket_id[, ts]) and bucket_ids(state) → smallint[] (the
 * buckets holding values, ascending), bucket_cardinalities(state) →
 * integer[] (distinct values in each, in that order), bucket_cardinality(state,
 * id) → integer. Layout: see BucketAgg.serialize.
 */
const bucketSql = `
-- The bucket of each entry (u16be two's complement at offset 8 of entries of 10 or 18 bytes from offset 7).
CREATE OR REPLACE FUNCTION sluice.bucket_entries(state bytea) RETURNS SETOF smallint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  w int;
BEGIN
  PERFORM sluice.sketch_check(state, 9, 'bucket_agg');
  w := CASE WHEN get_byte(state, 2) = 1 THEN 18 ELSE 10 END;
  RETURN QUERY SELECT ((((get_byte(state, o) << 8) | get_byte(state, o + 1)) # 32768) - 32768)::smallint
    FROM generate_series(0, sluice.sk_u32(state, 3) - 1) AS i, LATERAL (SELECT 15 + i::int * w AS o) AS p;
END $$;
CREATE OR REPLACE FUNCTION public.bucket_ids(state bytea) RETURNS smallint[] LANGUAGE sql IMMUTABLE STRICT AS
  $$ SELECT coalesce(array_agg(DISTINCT b ORDER BY b), '{}') FROM sluice.bucket_entries(state) AS b $$;
CREATE OR REPLACE FUNCTION public.bucket_cardinalities(state bytea) RETURNS integer[] LANGUAGE sql IMMUTABLE STRICT AS
  $$ SELECT coalesce(array_agg(n ORDER BY b), '{}') FROM (SELECT b, count(*)::int AS n FROM sluice.bucket_entries(state) AS b GROUP BY b) AS c $$;
CREATE OR REPLACE FUNCTION public.bucket_cardinality(state bytea, id smallint) RETURNS integer LANGUAGE sql IMMUTABLE STRICT AS
  $$ SELECT count(*)::int FROM sluice.bucket_entries(state) AS b WHERE b = id $$;
`;

/**
 * Merging stored states in SQL, for combine() and sliding windows (which
 * merge a view's rows when read): sluice.topk_merge_agg, tdigest_merge_agg
 * and bucket_merge_agg, the merges of TopK, TDigest and BucketAgg (the
 * later state is the right-hand one). HyperLogLog, Bloom and count-min
 * states merge with hll_union_agg, bloom_union_agg and freq_merge_agg.
 */
const mergeSql = `
-- A top-k state's entries: count, error, value tag and bytes, as stored (count descending).
CREATE OR REPLACE FUNCTION sluice.topk_entries(state bytea, OUT c bigint, OUT e bigint, OUT tg int, OUT v bytea) RETURNS SETOF record
  LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  o int := 22;
  len int;
BEGIN
  PERFORM sluice.sketch_check(state, 4, 'topk');
  FOR i IN 1..sluice.sk_u32(state, 18)::int LOOP
    c := sluice.sk_u64(state, o);
    e := sluice.sk_u64(state, o + 8);
    tg := get_byte(state, o + 16);
    len := sluice.sk_u32(state, o + 17)::int;
    v := substring(state FROM o + 22 FOR len);
    o := o + 21 + len;
    RETURN NEXT;
  END LOOP;
END $$;
-- TopK.merge: a value missing from one summary counts that summary's floor (its smallest count when full).
CREATE OR REPLACE FUNCTION sluice.topk_merge(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  cap bigint;
  floor_a bigint := 0;
  floor_b bigint := 0;
  body text;
  n int;
BEGIN
  IF a IS NULL THEN RETURN b; END IF;
  IF b IS NULL THEN RETURN a; END IF;
  PERFORM sluice.sketch_check(a, 4, 'topk');
  PERFORM sluice.sketch_check(b, 4, 'topk');
  IF substring(a FROM 3 FOR 8) <> substring(b FROM 3 FOR 8) THEN
    RAISE EXCEPTION 'cannot merge top-k sketches with different k' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  cap := sluice.sk_u32(a, 6);
  IF sluice.sk_u32(a, 18) >= cap THEN SELECT min(x.c) INTO floor_a FROM sluice.topk_entries(a) AS x; END IF;
  IF sluice.sk_u32(b, 18) >= cap THEN SELECT min(x.c) INTO floor_b FROM sluice.topk_entries(b) AS x; END IF;
  WITH ea AS (SELECT * FROM sluice.topk_entries(a)), eb AS (SELECT * FROM sluice.topk_entries(b)),
  merged AS (
    SELECT ea.c + coalesce(eb.c, floor_b) AS c, ea.e + coalesce(eb.e, floor_b) AS e, ea.tg, ea.v FROM ea LEFT JOIN eb ON eb.tg = ea.tg AND eb.v = ea.v
    UNION ALL
    SELECT eb.c + floor_a, eb.e + floor_a, eb.tg, eb.v FROM eb WHERE NOT EXISTS (SELECT FROM ea WHERE ea.tg = eb.tg AND ea.v = eb.v)
  ),
  ranked AS (
    SELECT u.*, row_number() OVER (ORDER BY u.c DESC, CASE u.tg WHEN 3 THEN 0 WHEN 0 THEN 2 ELSE 1 END,
                                            CASE WHEN u.tg IN (1, 2, 4) THEN convert_from(u.v, 'UTF8')::numeric END, u.v) AS r
    FROM merged AS u
  )
  SELECT string_agg(lpad(to_hex(k.c), 16, '0') || lpad(to_hex(k.e), 16, '0') || lpad(to_hex(k.tg), 2, '0') || lpad(to_hex(length(k.v)), 8, '0') || encode(k.v, 'hex'), '' ORDER BY k.r),
         count(*)
    INTO body, n FROM ranked AS k WHERE k.r <= cap;
  RETURN decode('0204' || encode(substring(a FROM 3 FOR 8), 'hex') || lpad(to_hex(sluice.sk_u64(a, 10) + sluice.sk_u64(b, 10)), 16, '0') || lpad(to_hex(n), 8, '0') || coalesce(body, ''), 'hex');
END $$;
CREATE OR REPLACE AGGREGATE sluice.topk_merge_agg(bytea) (sfunc = sluice.topk_merge, stype = bytea);

-- TDigest.compress and serialize: one pass over two centroid lists ascending (b's weights NULL: each 1), merged by mean
-- (a's first on ties), each centroid growing while it spans at most one unit of the k1 scale.
CREATE OR REPLACE FUNCTION sluice.tdigest_compress(comp float8, lo float8, hi float8, am float8[], aw float8[], bm float8[], bw float8[])
  RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  na int := coalesce(cardinality(am), 0);
  nb int := coalesce(cardinality(bm), 0);
  total float8 := 0;
  normalizer float8 := comp / (2 * pi());
  half_pi float8 := pi() / 2;
  out_m float8[] := '{}';
  out_w float8[] := '{}';
  cnt int := 0;
  so_far float8 := 0;
  lim float8 := 0;
  cur_m float8 := 0;
  cur_w float8 := 0;
  i int := 1;
  j int := 1;
  m float8;
  w float8;
  k float8;
BEGIN
  FOR x IN 1..na LOOP
    total := total + aw[x];
  END LOOP;
  IF bw IS NULL THEN
    total := total + nb;
  ELSE
    FOR x IN 1..nb LOOP
      total := total + bw[x];
    END LOOP;
  END IF;
  WHILE i <= na OR j <= nb LOOP
    IF j > nb OR (i <= na AND am[i] <= bm[j]) THEN
      m := am[i];
      w := aw[i];
      i := i + 1;
    ELSE
      m := bm[j];
      w := CASE WHEN bw IS NULL THEN 1 ELSE bw[j] END;
      j := j + 1;
    END IF;
    IF cur_w = 0 THEN
      cur_m := m;
      cur_w := w;
      k := normalizer * asin(2 * 0::float8 - 1) + 1;
      lim := total * (CASE WHEN k / normalizer >= half_pi THEN 1 ELSE (sin(k / normalizer) + 1) / 2 END);
      CONTINUE;
    END IF;
    IF so_far + cur_w + w <= lim THEN
      cur_w := cur_w + w;
      cur_m := cur_m + ((m - cur_m) * w) / cur_w;
    ELSE
      cnt := cnt + 1;
      out_m[cnt] := cur_m;
      out_w[cnt] := cur_w;
      so_far := so_far + cur_w;
      k := normalizer * asin(2 * least(1::float8, greatest(0::float8, so_far / total)) - 1) + 1;
      lim := total * (CASE WHEN k / normalizer >= half_pi THEN 1 ELSE (sin(k / normalizer) + 1) / 2 END);
      cur_m := m;
      cur_w := w;
    END IF;
  END LOOP;
  IF cur_w > 0 THEN
    cnt := cnt + 1;
    out_m[cnt] := cur_m;
    out_w[cnt] := cur_w;
  END IF;
  RETURN '\\x0202'::bytea || float8send(comp) || float8send(lo) || float8send(hi) || int4send(cnt)
    || coalesce((SELECT string_agg(float8send(x), ''::bytea ORDER BY o) FROM unnest(out_m) WITH ORDINALITY AS u(x, o)), ''::bytea)
    || coalesce((SELECT string_agg(float8send(x), ''::bytea ORDER BY o) FROM unnest(out_w) WITH ORDINALITY AS u(x, o)), ''::bytea);
END $$;
-- TDigest.merge: b's centroids compressed into a's.
CREATE OR REPLACE FUNCTION sluice.tdigest_merge(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  na int;
  nb int;
BEGIN
  IF a IS NULL THEN RETURN b; END IF;
  IF b IS NULL THEN RETURN a; END IF;
  PERFORM sluice.sketch_check(a, 2, 'tdigest');
  PERFORM sluice.sketch_check(b, 2, 'tdigest');
  na := sluice.sk_u32(a, 26)::int;
  nb := sluice.sk_u32(b, 26)::int;
  IF nb = 0 THEN RETURN a; END IF;
  RETURN sluice.tdigest_compress(sluice.sk_f64(a, 2),
    CASE WHEN na = 0 THEN sluice.sk_f64(b, 10) ELSE least(sluice.sk_f64(a, 10), sluice.sk_f64(b, 10)) END,
    CASE WHEN na = 0 THEN sluice.sk_f64(b, 18) ELSE greatest(sluice.sk_f64(a, 18), sluice.sk_f64(b, 18)) END,
    sluice.f64s(a, 30, na), sluice.f64s(a, 30 + 8 * na, na), sluice.f64s(b, 30, nb), sluice.f64s(b, 30 + 8 * nb, nb));
END $$;
CREATE OR REPLACE AGGREGATE sluice.tdigest_merge_agg(bytea) (sfunc = sluice.tdigest_merge, stype = bytea);

-- BucketAgg.merge: per value (hash), the later timestamp wins (on a tie the larger bucket); without timestamps, b's entry.
CREATE OR REPLACE FUNCTION sluice.bucket_rows(state bytea, OUT h bytea, OUT bucket bytea, OUT ts float8) RETURNS SETOF record
  LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  w int;
BEGIN
  PERFORM sluice.sketch_check(state, 9, 'bucket_agg');
  w := CASE WHEN get_byte(state, 2) = 1 THEN 18 ELSE 10 END;
  RETURN QUERY SELECT substring(state FROM 8 + w * i FOR 8), substring(state FROM 16 + w * i FOR 2),
                      CASE WHEN w = 18 THEN sluice.sk_f64(state, 17 + w * i) ELSE '-Infinity'::float8 END
    FROM generate_series(0, sluice.sk_u32(state, 3)::int - 1) AS i;
END $$;
CREATE OR REPLACE FUNCTION sluice.bucket_merge(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  plain bytea;
  timed bytea;
  n int;
  with_ts boolean;
BEGIN
  IF a IS NULL THEN RETURN b; END IF;
  IF b IS NULL THEN RETURN a; END IF;
  WITH entries AS (
    SELECT x.*, 0 AS side FROM sluice.bucket_rows(a) AS x UNION ALL SELECT y.*, 1 FROM sluice.bucket_rows(b) AS y
  ),
  kept AS (
    SELECT DISTINCT ON (e.h) e.h, e.bucket, e.ts FROM entries AS e
    ORDER BY e.h, (e.side = 1 AND e.ts = '-Infinity'::float8) DESC, e.ts DESC, (((get_byte(e.bucket, 0) << 8) | get_byte(e.bucket, 1)) # 32768) DESC
  )
  SELECT coalesce(bool_or(k.ts <> '-Infinity'::float8), false), count(*),
         string_agg(k.h || k.bucket, ''::bytea ORDER BY k.h), string_agg(k.h || k.bucket || float8send(k.ts), ''::bytea ORDER BY k.h)
    INTO with_ts, n, plain, timed FROM kept AS k;
  RETURN '\\x0209'::bytea || CASE WHEN with_ts THEN '\\x01'::bytea ELSE '\\x00'::bytea END || int4send(n) || coalesce(CASE WHEN with_ts THEN timed ELSE plain END, ''::bytea);
END $$;
CREATE OR REPLACE AGGREGATE sluice.bucket_merge_agg(bytea) (sfunc = sluice.bucket_merge, stype = bytea);
`;

const companionSql = `
-- The set bits of a bloom state, ascending.
CREATE OR REPLACE FUNCTION sluice.bloom_bits(state bytea) RETURNS SETOF bigint LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT sluice.sk_u32(state, 12 + 4 * i)
  FROM generate_series(0, CASE WHEN get_byte(state, 7) = 0 THEN sluice.sk_u32(state, 8)::int - 1 ELSE -1 END) AS i
  UNION ALL
  SELECT 8 * b.i + j
  FROM (SELECT i FROM generate_series(0, CASE WHEN get_byte(state, 7) = 1 THEN length(state) - 9 ELSE -1 END) AS i WHERE get_byte(state, 8 + i) <> 0) AS b,
       generate_series(0, 7) AS j
  WHERE get_byte(state, 8 + b.i) & (1 << j) <> 0
$$;
-- A bloom state of m bits and k hashes with the given set bits (distinct), encoded as BloomFilter.serialize does.
CREATE OR REPLACE FUNCTION sluice.bloom_build(m bigint, k int, bits bigint[]) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  n int := coalesce(cardinality(bits), 0);
  body text;
BEGIN
  IF n * 4 < m / 8 THEN
    SELECT '00' || lpad(to_hex(n), 8, '0') || coalesce(string_agg(lpad(to_hex(b), 8, '0'), '' ORDER BY b), '') INTO body FROM unnest(bits) AS b;
  ELSE
    SELECT '01' || string_agg(lpad(to_hex(coalesce(x.v, 0)), 2, '0'), '' ORDER BY g.i) INTO body
    FROM generate_series(0, (m / 8)::int - 1) AS g(i)
    LEFT JOIN (SELECT (b >> 3)::int AS i, sum(1 << (b & 7)::int)::int AS v FROM unnest(bits) AS b GROUP BY 1) AS x ON x.i = g.i;
  END IF;
  RETURN decode('0205' || lpad(to_hex(m), 8, '0') || lpad(to_hex(k), 2, '0') || body, 'hex');
END $$;
CREATE OR REPLACE FUNCTION sluice.bloom_combine(a bytea, b bytea, is_and boolean) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  bits bigint[];
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  PERFORM sluice.sketch_check(a, 5, 'bloom');
  PERFORM sluice.sketch_check(b, 5, 'bloom');
  IF sluice.sk_u32(a, 2) <> sluice.sk_u32(b, 2) OR get_byte(a, 6) <> get_byte(b, 6) THEN
    RAISE EXCEPTION 'cannot combine bloom filters of different sizes' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Filters combine only when made with the same p and n.';
  END IF;
  IF is_and THEN
    SELECT array_agg(x ORDER BY x) INTO bits FROM (SELECT * FROM sluice.bloom_bits(a) INTERSECT SELECT * FROM sluice.bloom_bits(b)) AS u(x);
  ELSE
    SELECT array_agg(x ORDER BY x) INTO bits FROM (SELECT * FROM sluice.bloom_bits(a) UNION SELECT * FROM sluice.bloom_bits(b)) AS u(x);
  END IF;
  RETURN sluice.bloom_build(sluice.sk_u32(a, 2), get_byte(a, 6), bits);
END $$;
CREATE OR REPLACE FUNCTION sluice.bloom_union(a bytea, b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
  $$ SELECT sluice.bloom_combine(a, b, false) $$;
CREATE OR REPLACE FUNCTION sluice.bloom_intersection(a bytea, b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
  $$ SELECT sluice.bloom_combine(a, b, true) $$;
CREATE OR REPLACE AGGREGATE public.bloom_union_agg(bytea) (sfunc = sluice.bloom_union, stype = bytea, combinefunc = sluice.bloom_union, parallel = safe);
CREATE OR REPLACE AGGREGATE public.bloom_intersection_agg(bytea) (sfunc = sluice.bloom_intersection, stype = bytea, combinefunc = sluice.bloom_intersection, parallel = safe);

-- The non-zero counters (index, value) of a count-min state.
CREATE OR REPLACE FUNCTION sluice.cms_counters(state bytea) RETURNS TABLE (idx bigint, c bigint) LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT sluice.sk_u32(state, 23 + 12 * i), sluice.sk_u64(state, 27 + 12 * i)
  FROM generate_series(0, CASE WHEN get_byte(state, 18) = 0 THEN sluice.sk_u32(state, 19)::int - 1 ELSE -1 END) AS i
  UNION ALL
  SELECT x.i, x.c FROM (
    SELECT i::bigint AS i, sluice.sk_u64(state, 19 + 8 * i) AS c
    FROM generate_series(0, CASE WHEN get_byte(state, 18) = 1 THEN (sluice.sk_u32(state, 2) * sluice.sk_u32(state, 6))::int - 1 ELSE -1 END) AS i
  ) AS x WHERE x.c <> 0
$$;
-- The sum of two count-min states of the same dimensions, encoded as CountMinSketch.serialize does.
CREATE OR REPLACE FUNCTION sluice.cms_merge(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  size bigint;
  n int;
  idxs bigint[];
  cs bigint[];
  body text;
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  PERFORM sluice.sketch_check(a, 3, 'cms');
  PERFORM sluice.sketch_check(b, 3, 'cms');
  IF sluice.sk_u32(a, 2) <> sluice.sk_u32(b, 2) OR sluice.sk_u32(a, 6) <> sluice.sk_u32(b, 6) THEN
    RAISE EXCEPTION 'cannot merge count-min sketches of different dimensions' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Sketches merge only when made with the same eps and p.';
  END IF;
  size := sluice.sk_u32(a, 2) * sluice.sk_u32(a, 6);
  SELECT count(*), array_agg(y.idx ORDER BY y.idx), array_agg(y.c ORDER BY y.idx) INTO n, idxs, cs
  FROM (SELECT x.idx, sum(x.c)::bigint AS c FROM (SELECT * FROM sluice.cms_counters(a) UNION ALL SELECT * FROM sluice.cms_counters(b)) AS x GROUP BY x.idx) AS y
  WHERE y.c <> 0;
  IF n * 12 < size * 8 THEN
    SELECT '00' || lpad(to_hex(n), 8, '0') || coalesce(string_agg(lpad(to_hex(u.i), 8, '0') || lpad(to_hex(u.c), 16, '0'), '' ORDER BY u.i), '') INTO body
    FROM unnest(idxs, cs) AS u(i, c);
  ELSE
    SELECT '01' || string_agg(lpad(to_hex(coalesce(u.c, 0)), 16, '0'), '' ORDER BY g.i) INTO body
    FROM generate_series(0, size - 1) AS g(i) LEFT JOIN unnest(idxs, cs) AS u(i, c) ON u.i = g.i;
  END IF;
  RETURN decode('0203' || encode(substring(a FROM 3 FOR 8), 'hex') || lpad(to_hex(sluice.sk_u64(a, 10) + sluice.sk_u64(b, 10)), 16, '0') || body, 'hex');
END $$;
CREATE OR REPLACE AGGREGATE public.freq_merge_agg(bytea) (sfunc = sluice.cms_merge, stype = bytea, combinefunc = sluice.cms_merge, parallel = safe);
CREATE OR REPLACE FUNCTION public.freq_add(state bytea, value anyelement, count bigint DEFAULT 1) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  w bigint;
  d int;
  h record;
  one text;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 3, 'cms');
  IF count IS NULL OR count < 0 THEN
    RAISE EXCEPTION 'count must be a non-negative integer' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF value IS NULL OR count = 0 THEN
    RETURN state;
  END IF;
  w := sluice.sk_u32(state, 2);
  d := sluice.sk_u32(state, 6)::int;
  SELECT * INTO h FROM sluice.sketch_hash(sluice.sketch_text(value));
  -- The sketch of this one value, merged in.
  SELECT string_agg(lpad(to_hex(i * w + (h.h1 + i * h.h2) % w), 8, '0') || lpad(to_hex(count), 16, '0'), '' ORDER BY i) INTO one
  FROM generate_series(0, d - 1) AS i;
  RETURN sluice.cms_merge(state, decode('0203' || encode(substring(state FROM 3 FOR 8), 'hex') || lpad(to_hex(count), 16, '0') || '00' || lpad(to_hex(d), 8, '0') || one, 'hex'));
END $$;

-- topk_increment(state, value[, count]): TopK.add (Space-Saving) on the state. A value not monitored by a full
-- summary takes over the counter of the smallest count (the first of them in the state's order, as a summary read
-- back from its bytes would), inheriting that count as its error.
CREATE OR REPLACE FUNCTION public.topk_increment(state bytea, value anyelement, count bigint DEFAULT 1) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  tb bytea;
  cap bigint;
  total bigint;
  n int;
  o int := 22;
  len int;
  cnts bigint[] := '{}';
  errs bigint[] := '{}';
  tags int[] := '{}';
  vals bytea[] := '{}';
  hit int;
  body text;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 4, 'topk');
  IF count IS NULL OR count < 0 THEN
    RAISE EXCEPTION 'weight must be a non-negative integer' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF value IS NULL OR count = 0 THEN
    RETURN state;
  END IF;
  tb := convert_to(sluice.sketch_text(value), 'UTF8');
  cap := sluice.sk_u32(state, 6);
  total := sluice.sk_u64(state, 10);
  n := sluice.sk_u32(state, 18)::int;
  FOR i IN 1..n LOOP
    cnts[i] := sluice.sk_u64(state, o);
    errs[i] := sluice.sk_u64(state, o + 8);
    tags[i] := get_byte(state, o + 16);
    len := sluice.sk_u32(state, o + 17)::int;
    vals[i] := substring(state FROM o + 22 FOR len);
    IF hit IS NULL AND tags[i] = 0 AND vals[i] = tb THEN
      hit := i;
    END IF;
    o := o + 21 + len;
  END LOOP;
  IF hit IS NULL AND n < cap THEN
    n := n + 1;
    cnts[n] := count;
    errs[n] := 0;
    tags[n] := 0;
    vals[n] := tb;
  ELSE
    IF hit IS NULL THEN
      -- Entries are by count descending: the first entry holding the smallest count.
      hit := n;
      WHILE hit > 1 AND cnts[hit - 1] = cnts[n] LOOP
        hit := hit - 1;
      END LOOP;
      errs[hit] := cnts[hit];
      tags[hit] := 0;
      vals[hit] := tb;
    END IF;
    cnts[hit] := cnts[hit] + count;
  END IF;
  -- TopK.serialize's order: count descending, then PostgreSQL's order of the values (booleans, numbers, text by code point).
  SELECT string_agg(lpad(to_hex(u.c), 16, '0') || lpad(to_hex(u.e), 16, '0') || lpad(to_hex(u.tg), 2, '0') || lpad(to_hex(length(u.v)), 8, '0') || encode(u.v, 'hex'), ''
           ORDER BY u.c DESC, CASE u.tg WHEN 3 THEN 0 WHEN 0 THEN 2 ELSE 1 END,
                    CASE WHEN u.tg IN (1, 2, 4) THEN convert_from(u.v, 'UTF8')::numeric END, u.v)
    INTO body FROM unnest(cnts, errs, tags, vals) AS u(c, e, tg, v);
  RETURN decode('0204' || encode(substring(state FROM 3 FOR 8), 'hex') || lpad(to_hex(total + count), 16, '0') || lpad(to_hex(n), 8, '0') || coalesce(body, ''), 'hex');
END $$;

-- The 8 big-endian bytes (as hex) of a double: sluice.sk_f64's inverse.
CREATE OR REPLACE FUNCTION sluice.sk_f64_hex(v double precision) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  a float8 := abs(v);
  e int;
  bits bigint;
BEGIN
  IF v = 'NaN'::float8 THEN
    RETURN '7ff8000000000000';
  END IF;
  IF a = 'Infinity'::float8 THEN
    bits := 2047::bigint << 52;
  ELSIF a = 0 THEN
    bits := 0;
  ELSIF a < 2.2250738585072014e-308::float8 THEN
    bits := (a * (2::float8 ^ 1022) * (2::float8 ^ 52))::bigint;
  ELSE
    e := least(greatest(floor(ln(a) / ln(2::float8))::int, -1022), 1023);
    WHILE e > -1022 AND 2::float8 ^ e > a LOOP
      e := e - 1;
    END LOOP;
    WHILE e < 1023 AND 2::float8 ^ (e + 1) <= a LOOP
      e := e + 1;
    END LOOP;
    bits := ((e + 1023)::bigint << 52) | ((a / (2::float8 ^ e) - 1) * (2::float8 ^ 52))::bigint;
  END IF;
  IF v < 0 OR (v = 0 AND v::text = '-0') THEN
    bits := bits | (1::bigint << 63);
  END IF;
  RETURN lpad(to_hex(bits), 16, '0');
END $$;
-- dist_add(state, value[, count]): TDigest.add (count 1) or addWeighted: one merge pass of the centroids with the
-- new one, in TDigest.compress's operations and order, so the same doubles.
CREATE OR REPLACE FUNCTION public.dist_add(state bytea, value double precision, count double precision DEFAULT 1) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  one text;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 2, 'tdigest');
  IF value IS NULL OR value = 'NaN'::float8 OR value = 'Infinity'::float8 OR value = '-Infinity'::float8 THEN
    RETURN state;
  END IF;
  IF count IS NULL OR NOT (count > 0) OR count = 'Infinity'::float8 THEN
    RAISE EXCEPTION 'weight must be positive' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Adding a value is merging the digest of that one centroid (TDigest.add compresses the same way).
  one := sluice.sk_f64_hex(value);
  RETURN sluice.tdigest_merge(state, decode('0202' || encode(substring(state FROM 3 FOR 8), 'hex') || one || one || '00000001' || one || sluice.sk_f64_hex(count), 'hex'));
END $$;

-- 64-bit words as bigint (two's complement): products and sums modulo 2^64, logical shifts. Single
-- expressions, so the planner inlines them: murmur3_h1s hashes thousands of values in one query.
CREATE OR REPLACE FUNCTION sluice.u64_mul(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT ((a::numeric * b + 170141183460469231740910675752738881536) % 18446744073709551616 - 9223372036854775808)::bigint $$;
CREATE OR REPLACE FUNCTION sluice.u64_add(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT ((a::numeric + b + 27670116110564327424) % 18446744073709551616 - 9223372036854775808)::bigint $$;
CREATE OR REPLACE FUNCTION sluice.u64_shr(a bigint, r int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT (a >> r) & ((1::bigint << (64 - r)) - 1) $$;
CREATE OR REPLACE FUNCTION sluice.u64_rotl(a bigint, r int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT (a << r) | ((a >> (64 - r)) & ((1::bigint << r) - 1)) $$;
-- The little-endian integer of the n (at most 8; none when n <= 0) bytes of p from offset o, p padded so 8 can be read.
CREATE OR REPLACE FUNCTION sluice.u64_le8(p bytea, o int, n int) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (get_byte(p, o)::bigint | (get_byte(p, o + 1)::bigint << 8) | (get_byte(p, o + 2)::bigint << 16) | (get_byte(p, o + 3)::bigint << 24)
        | (get_byte(p, o + 4)::bigint << 32) | (get_byte(p, o + 5)::bigint << 40) | (get_byte(p, o + 6)::bigint << 48) | (get_byte(p, o + 7)::bigint << 56))
       & CASE WHEN n >= 8 THEN -1::bigint WHEN n <= 0 THEN 0::bigint ELSE (1::bigint << (8 * n)) - 1 END
$$;
-- h1 of MurmurHash3 x64 128 (seed 0) of each key, by ordinal: the 64 bits HyperLogLog.add and BucketAgg.add use
-- (engine/sketches/hash.ts murmur3x64). Set-based: one step of the recursive part per 16-byte block, for every key
-- at once; every intermediate word is a column of its own (OFFSET 0 keeps the planner from copying its expression
-- into each use).
CREATE OR REPLACE FUNCTION sluice.murmur3_h1s(keys bytea[]) RETURNS TABLE (n bigint, h1 bigint) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH RECURSIVE b(n, p, len, i, h1, h2) AS (
    SELECT u.n, u.k || decode('00000000000000000000000000000000', 'hex'), length(u.k), 0, 0::bigint, 0::bigint
    FROM unnest(keys) WITH ORDINALITY AS u(k, n)
    UNION ALL
    SELECT b.n, b.p, b.len, b.i + 1, s3.h1, s4.h2
    FROM b,
      LATERAL (SELECT sluice.u64_mul(sluice.u64_le8(b.p, 16 * b.i, 8), -8663945395140668459) AS k1,
                      sluice.u64_mul(sluice.u64_le8(b.p, 16 * b.i + 8, 8), 5545529020109919103) AS k2 OFFSET 0) AS s1,
      LATERAL (SELECT b.h1 # sluice.u64_mul(sluice.u64_rotl(s1.k1, 31), 5545529020109919103) AS h1,
                      b.h2 # sluice.u64_mul(sluice.u64_rotl(s1.k2, 33), -8663945395140668459) AS h2 OFFSET 0) AS s2,
      LATERAL (SELECT sluice.u64_add(sluice.u64_mul(sluice.u64_add(sluice.u64_rotl(s2.h1, 27), b.h2), 5), 1390208809) AS h1 OFFSET 0) AS s3,
      LATERAL (SELECT sluice.u64_add(sluice.u64_mul(sluice.u64_add(sluice.u64_rotl(s2.h2, 31), s3.h1), 5), 944331445) AS h2 OFFSET 0) AS s4
    WHERE b.i < b.len / 16
  )
  SELECT b.n, sluice.u64_add(f2.x1 # sluice.u64_shr(f2.x1, 33), f2.x2 # sluice.u64_shr(f2.x2, 33))
  FROM b,
    LATERAL (SELECT 16 * (b.len / 16) AS o, b.len % 16 AS rest OFFSET 0) AS t,
    LATERAL (SELECT sluice.u64_mul(sluice.u64_le8(b.p, t.o, least(t.rest, 8)), -8663945395140668459) AS k1,
                    CASE WHEN t.rest > 8 THEN sluice.u64_mul(sluice.u64_le8(b.p, t.o + 8, t.rest - 8), 5545529020109919103) ELSE 0 END AS k2 OFFSET 0) AS s1,
    LATERAL (SELECT b.h1 # sluice.u64_mul(sluice.u64_rotl(s1.k1, 31), 5545529020109919103) # b.len AS h1,
                    b.h2 # CASE WHEN s1.k2 = 0 THEN 0 ELSE sluice.u64_mul(sluice.u64_rotl(s1.k2, 33), -8663945395140668459) END # b.len AS h2 OFFSET 0) AS s2,
    LATERAL (SELECT sluice.u64_add(s2.h1, s2.h2) AS h1 OFFSET 0) AS s3,
    LATERAL (SELECT sluice.u64_add(s2.h2, s3.h1) AS h2 OFFSET 0) AS s4,
    LATERAL (SELECT sluice.u64_mul(s3.h1 # sluice.u64_shr(s3.h1, 33), -49064778989728563) AS x1,
                    sluice.u64_mul(s4.h2 # sluice.u64_shr(s4.h2, 33), -49064778989728563) AS x2 OFFSET 0) AS f1,
    LATERAL (SELECT sluice.u64_mul(f1.x1 # sluice.u64_shr(f1.x1, 33), -4265267296055464877) AS x1,
                    sluice.u64_mul(f1.x2 # sluice.u64_shr(f1.x2, 33), -4265267296055464877) AS x2 OFFSET 0) AS f2
  WHERE b.i = b.len / 16
$$;
CREATE OR REPLACE FUNCTION sluice.murmur3_h1(key bytea) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT m.h1 FROM sluice.murmur3_h1s(ARRAY[key]) AS m $$;
-- hll_add(state, value): HyperLogLog.add. The value's sparse entry (index25 << 6 | rho25 of its hash's h1) is
-- unioned in: sparse while the entries fit, else dense, as the engine's sketch does.
CREATE OR REPLACE FUNCTION public.hll_add(state bytea, value anyelement) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  h bigint;
  hi bigint;
  lo bigint;
  rho int;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 1, 'hll');
  IF value IS NULL THEN
    RETURN state;
  END IF;
  h := sluice.murmur3_h1(convert_to(sluice.sketch_text(value), 'UTF8'));
  hi := sluice.u64_shr(h, 32);
  lo := h & 4294967295;
  rho := CASE
    WHEN hi & 127 <> 0 THEN 8 - length(ltrim((hi & 127)::bit(7)::text, '0'))
    WHEN lo <> 0 THEN 40 - length(ltrim(lo::bit(32)::text, '0'))
    ELSE 40 END;
  RETURN public.hll_union(state, decode('0201' || lpad(to_hex(get_byte(state, 2)), 2, '0') || '0000000001' || lpad(to_hex(((hi >> 7) << 6) | rho), 8, '0'), 'hex'));
END $$;
`;

/**
 * The sketch aggregates (topk_agg, hll_agg, freq_agg, bloom_agg, dist_agg,
 * bucket_agg) over whatever rows the store aggregates: tables, sub-selects,
 * generate_series, UNION ALL. They give version-2 states, so the functions
 * above, the engine and continuous views' states read and merge them.
 *
 * PostgreSQL copies what a PL/pgSQL transition returns at every row, so a
 * state that grew with the input would cost a copy of all of it per row, and
 * folding each row into a dense sketch costs thousands of operations: the
 * transition only appends the row's value to the state, and once the
 * pending values outgrow 128 kB (and the rest of the state) they are folded
 * into the sketch set-based: deduplicated and counted, each distinct value
 * hashed once, the sketch rewritten once.
 *
 * The state (bytea): 0 the sketch's length S (u32), 4 the length K of the
 * kept entries (u32; only topk_agg keeps some), 8 the sketch so far (its
 * version-2 layout), 8 + S the K bytes of kept entries, then the pending
 * ones (one per row since the last fold). Entries are the UTF-8 of `,"…"`:
 * array-literal elements, so reading them back is one cast. dist_agg's
 * pending values are 8-byte doubles instead.
 *
 * Over no rows the aggregates are NULL, as PostgreSQL's are; over rows whose
 * values are all NULL they are the empty sketch, as in a continuous view's
 * group whose values were all NULL. The parameters (k, p, eps, n,
 * compression) are read from the first row; NULL stands for the engine's
 * default.
 */
const aggregateStateSql = `
CREATE OR REPLACE FUNCTION sluice.agg_state(sketch bytea, kept bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT int4send(length(sketch)) || int4send(length(kept)) || sketch || kept $$;
CREATE OR REPLACE FUNCTION sluice.agg_sketch(state bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT substring(state FROM 9 FOR sluice.sk_u32(state, 0)::int) $$;
CREATE OR REPLACE FUNCTION sluice.agg_kept(state bytea) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT ('{' || substr(convert_from(substring(state FROM 9 + sluice.sk_u32(state, 0)::int FOR sluice.sk_u32(state, 4)::int), 'UTF8'), 2) || '}')::text[] $$;
CREATE OR REPLACE FUNCTION sluice.agg_pending(state bytea) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT ('{' || substr(convert_from(substring(state FROM 9 + (sluice.sk_u32(state, 0) + sluice.sk_u32(state, 4))::int), 'UTF8'), 2) || '}')::text[] $$;
-- Entries for the elements of an array: its own text (array_out quotes what array_in needs quoted).
CREATE OR REPLACE FUNCTION sluice.agg_entries(entries text[]) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN coalesce(cardinality(entries), 0) = 0 THEN ''::bytea ELSE convert_to(',' || substr(x.t, 2, length(x.t) - 2), 'UTF8') END
  FROM (SELECT entries::text AS t) AS x
$$;
-- The distinct values of entries with how many times each occurs.
CREATE OR REPLACE FUNCTION sluice.agg_counts(entries text[]) RETURNS TABLE (v text, c bigint) LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT e COLLATE "C", count(*) FROM unnest(entries) AS e GROUP BY 1 $$;
-- The md5-based hashes (engine/sketches/hash.ts sqlHash) of distinct values, with their counts.
CREATE OR REPLACE FUNCTION sluice.agg_md5s(vs text[], cs bigint[]) RETURNS TABLE (h1 bigint, h2 bigint, c bigint) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ('x' || substr(m.d, 1, 8))::bit(32)::bigint, ('x' || substr(m.d, 9, 8))::bit(32)::bigint, m.c
  FROM (SELECT md5(u.v) AS d, u.c FROM unnest(vs, cs) AS u(v, c) OFFSET 0) AS m
$$;
`;

/** A value's text as the sketches hash it (sluice.sketch_text, inline: transitions run once per row). */
const valueText = `CASE WHEN pg_typeof(v) = 'numeric'::regtype THEN trim_scale(v::text::numeric)::text ELSE v::text END`;
/** Pending bytes folded in at once: more costs a longer copy per row, less more rewrites of the sketch. */
const foldAt = 131072;

interface Param {
  name: string;
  type: string;
}

/**
 * One arity of a sketch aggregate: the transition over (state, v, …params),
 * where a NULL state becomes `init` (SQL) and `append` (PL/pgSQL
 * statements) adds a non-NULL `v` and returns the state.
 */
function aggregateVariant(name: string, value: string, params: Param[], init: string, append: string): string {
  return `
CREATE OR REPLACE FUNCTION sluice.${name}_sfunc(state bytea, v ${value}${params.map((p) => `, ${p.name} ${p.type}`).join('')}) RETURNS bytea
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF state IS NULL THEN
    state := sluice.agg_state(${init}, ''::bytea);
  END IF;
  IF v IS NULL THEN
    RETURN state;
  END IF;
${append}
END $$;
CREATE OR REPLACE AGGREGATE public.${name}(${[value, ...params.map((p) => p.type)].join(', ')}) (sfunc = sluice.${name}_sfunc, stype = bytea,
  finalfunc = sluice.${name}_final, combinefunc = sluice.${name}_combine, parallel = safe);`;
}

/** Every arity of an aggregate whose parameters are all optional: `empty` gets them, NULL for those not given. */
function optionalParams(name: string, value: string, params: Param[], empty: string, append: string): string {
  const arities = Array.from({ length: params.length + 1 }, (_, n) => n);
  return arities
    .map((n) => aggregateVariant(name, value, params.slice(0, n), `${empty}(${params.map((p, i) => (i < n ? p.name : 'NULL')).join(', ')})`, append))
    .join('\n');
}

/**
 * Appends the row's entry, quoted as array_in reads it (inline: as an SQL
 * function call it doubles the transition's cost), and folds once the
 * pending entries outgrow `foldAt` and the rest of the state: a fold
 * rewrites the sketch, so its cost per row stays bounded however large the
 * sketch grows.
 */
function appendEntry(name: string, entry: string): string {
  return `  state := state || convert_to(',"' || replace(replace(${entry}, '\\', '\\\\'), '"', '\\"') || '"', 'UTF8');
  IF length(state) > 8 + sluice.sk_u32(state, 0) + sluice.sk_u32(state, 4) + greatest(${foldAt}, sluice.sk_u32(state, 0) + sluice.sk_u32(state, 4)) THEN
    RETURN sluice.${name}_fold(state);
  END IF;
  RETURN state;`;
}

/**
 * The fold, final and combine functions of a sketch that depends only on
 * its values and their counts (HyperLogLog, Bloom filter, count-min), one
 * entry per row, its value: `add(sketch, vs, cs)` adds distinct values with
 * their counts, `union(a, b)` merges two sketches.
 */
function countedSketch(name: string, add: string, union: string): string {
  return `
CREATE OR REPLACE FUNCTION sluice.${name}_final(state bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ${add}(sluice.agg_sketch(state), array_agg(x.v), array_agg(x.c)) FROM sluice.agg_counts(sluice.agg_pending(state)) AS x
$$;
CREATE OR REPLACE FUNCTION sluice.${name}_fold(state bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT sluice.agg_state(sluice.${name}_final(state), ''::bytea) $$;
CREATE OR REPLACE FUNCTION sluice.${name}_combine(a bytea, b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT sluice.agg_state(${union}(sluice.${name}_final(a), sluice.${name}_final(b)), ''::bytea) $$;`;
}

/**
 * hll_agg(x[, p]): each distinct value hashed once (MurmurHash3, set-based)
 * into its sparse entry, unioned in: the bytes HyperLogLog gives for the
 * same values, in any order.
 */
const hllAggregateSql = `
CREATE OR REPLACE FUNCTION sluice.hll_empty(p integer) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  p := coalesce(p, 14);
  IF p < 4 OR p > 18 THEN
    RAISE EXCEPTION 'p must be an integer between 4 and 18' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN decode('0201' || lpad(to_hex(p), 2, '0') || '0000000000', 'hex');
END $$;
-- A hash's sparse entry, index25 << 6 | rho25 (HyperLogLog.addHash).
CREATE OR REPLACE FUNCTION sluice.hll_entry(h bigint) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (sluice.u64_shr(h, 39) << 6) | CASE
    WHEN sluice.u64_shr(h, 32) & 127 <> 0 THEN 8 - length(ltrim((sluice.u64_shr(h, 32) & 127)::bit(7)::text, '0'))
    WHEN h & 4294967295 <> 0 THEN 40 - length(ltrim((h & 4294967295)::bit(32)::text, '0'))
    ELSE 40 END
$$;
CREATE OR REPLACE FUNCTION sluice.hll_agg_add(sketch bytea, vs text[], cs bigint[]) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  p int := get_byte(sketch, 2);
  n int;
  entries text;
  added bytea;
  dense text;
BEGIN
  SELECT count(*), string_agg(lpad(to_hex(x.e), 8, '0'), '' ORDER BY x.e) INTO n, entries
  FROM (SELECT max(sluice.hll_entry(m.h1)) AS e FROM sluice.murmur3_h1s(ARRAY(SELECT convert_to(v, 'UTF8') FROM unnest(vs) AS v)) AS m
        GROUP BY sluice.u64_shr(m.h1, 39)) AS x;
  IF n = 0 THEN
    RETURN sketch;
  END IF;
  -- A sparse state of them all (its entries may outnumber a sparse state's), folded in as HyperLogLog.merge folds one.
  added := decode('0201' || lpad(to_hex(p), 2, '0') || '00' || lpad(to_hex(n), 8, '0') || entries, 'hex');
  IF get_byte(sketch, 3) = 0 THEN
    RETURN public.hll_union(sketch, added);
  END IF;
  SELECT string_agg(lpad(to_hex(greatest(get_byte(sketch, 4 + g.j), coalesce(r.rho, 0))), 2, '0'), '' ORDER BY g.j) INTO dense
  FROM generate_series(0, (1 << p) - 1) AS g(j) LEFT JOIN sluice.hll_registers(added, p) AS r ON r.j = g.j;
  RETURN decode('0201' || lpad(to_hex(p), 2, '0') || '01' || dense, 'hex');
END $$;
${countedSketch('hll_agg', 'sluice.hll_agg_add', 'public.hll_union')}
${optionalParams('hll_agg', 'anyelement', [{ name: 'p', type: 'integer' }], 'sluice.hll_empty', appendEntry('hll_agg', valueText))}
`;

/**
 * freq_agg(x[, eps[, p]]): each distinct value's count added to its depth
 * counters at once: the bytes CountMinSketch gives for the same values.
 */
const freqAggregateSql = `
CREATE OR REPLACE FUNCTION sluice.cms_empty(eps double precision, p double precision) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  w float8;
  d float8;
BEGIN
  eps := coalesce(eps, 0.002);
  p := coalesce(p, 0.995);
  IF NOT (eps > 0 AND eps < 1) THEN
    RAISE EXCEPTION 'eps must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT (p > 0 AND p < 1) THEN
    RAISE EXCEPTION 'p must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- CountMinSketch.create: width ceil(e / eps), depth ceil(ln(1 / (1 - p))), e as JavaScript's Math.E.
  w := ceil(2.718281828459045::float8 / eps);
  d := ceil(ln(1 / (1 - p)));
  IF w < 1 OR d < 1 OR d > 64 OR w * d > 67108864 THEN
    RAISE EXCEPTION 'count-min sketch dimensions are out of range' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN decode('0203' || lpad(to_hex(w::bigint), 8, '0') || lpad(to_hex(d::bigint), 8, '0') || repeat('0', 26), 'hex');
END $$;
CREATE OR REPLACE FUNCTION sluice.freq_agg_add(sketch bytea, vs text[], cs bigint[]) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  w bigint := sluice.sk_u32(sketch, 2);
  size bigint := sluice.sk_u32(sketch, 2) * sluice.sk_u32(sketch, 6);
  total bigint := sluice.sk_u64(sketch, 10) + coalesce((SELECT sum(c) FROM unnest(cs) AS c), 0);
  idxs bigint[];
  counts bigint[];
  dense bytea;
BEGIN
  IF vs IS NULL THEN
    RETURN sketch;
  END IF;
  SELECT array_agg(x.i ORDER BY x.i), array_agg(x.c ORDER BY x.i) INTO idxs, counts
  FROM (SELECT r * w + (h.h1 + r * h.h2) % w AS i, sum(h.c)::bigint AS c
        FROM sluice.agg_md5s(vs, cs) AS h, generate_series(0, sluice.sk_u32(sketch, 6) - 1) AS r GROUP BY 1) AS x;
  IF get_byte(sketch, 18) = 0 THEN
    -- A sparse sketch of these values (their counters, as CountMinSketch.add sets them), merged in.
    RETURN sluice.cms_merge(sketch, substring(sketch FROM 1 FOR 10) || int8send(total - sluice.sk_u64(sketch, 10)) || '\\x00'::bytea
      || int4send(cardinality(idxs)) || (SELECT string_agg(int4send(u.i::int) || int8send(u.c), ''::bytea ORDER BY u.i) FROM unnest(idxs, counts) AS u(i, c)));
  END IF;
  -- Dense stays dense (counters only grow): every counter rewritten once.
  SELECT string_agg(int8send(sluice.sk_u64(sketch, (19 + 8 * g.i)::int) + coalesce(u.c, 0)), ''::bytea ORDER BY g.i) INTO dense
  FROM generate_series(0, size - 1) AS g(i) LEFT JOIN unnest(idxs, counts) AS u(i, c) ON u.i = g.i;
  RETURN substring(sketch FROM 1 FOR 10) || int8send(total) || '\\x01'::bytea || dense;
END $$;
${countedSketch('freq_agg', 'sluice.freq_agg_add', 'sluice.cms_merge')}
${optionalParams('freq_agg', 'anyelement', [{ name: 'eps', type: 'double precision' }, { name: 'p', type: 'double precision' }], 'sluice.cms_empty', appendEntry('freq_agg', valueText))}
`;

/**
 * bloom_agg(x[, p[, n]]): the bit positions of the distinct values, set at
 * once: the bytes BloomFilter gives for the same values.
 */
const bloomAggregateSql = `
CREATE OR REPLACE FUNCTION sluice.bloom_empty(p double precision, n bigint) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  m float8;
  k float8;
BEGIN
  p := coalesce(p, 0.02);
  n := coalesce(n, 16384);
  IF NOT (p > 0 AND p < 1) THEN
    RAISE EXCEPTION 'p must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF n <= 0 THEN
    RAISE EXCEPTION 'n must be a positive integer' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- BloomFilter.create: m = ceil(-n ln p / ln(2)^2) rounded up to 32 bits, k = round(m / n ln 2) in 1..64 (ln 2 as Math.LN2).
  m := ceil(ceil((-n * ln(p)) / (0.6931471805599453::float8 * 0.6931471805599453::float8)) / 32) * 32;
  IF m > 2147483648 THEN
    RAISE EXCEPTION 'bloom filter would be too large' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  k := least(greatest(1, floor((m / n) * 0.6931471805599453::float8 + 0.5)), 64);
  RETURN decode('0205' || lpad(to_hex(m::bigint), 8, '0') || lpad(to_hex(k::int), 2, '0') || '0000000000', 'hex');
END $$;
CREATE OR REPLACE FUNCTION sluice.bloom_agg_add(sketch bytea, vs text[], cs bigint[]) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  m bigint := sluice.sk_u32(sketch, 2);
  bits bigint[];
  dense text;
BEGIN
  IF vs IS NULL THEN
    RETURN sketch;
  END IF;
  SELECT array_agg(DISTINCT (h.h1 + i * h.h2) % m) INTO bits FROM sluice.agg_md5s(vs, cs) AS h, generate_series(0, get_byte(sketch, 6) - 1) AS i;
  IF get_byte(sketch, 7) = 0 THEN
    RETURN sluice.bloom_build(m, get_byte(sketch, 6), ARRAY(SELECT sluice.bloom_bits(sketch) UNION SELECT unnest(bits)));
  END IF;
  -- Dense stays dense (bits are only set): every byte rewritten once.
  SELECT string_agg(lpad(to_hex(get_byte(sketch, 8 + g.i) | coalesce(x.v, 0)), 2, '0'), '' ORDER BY g.i) INTO dense
  FROM generate_series(0, (m / 8)::int - 1) AS g(i)
  LEFT JOIN (SELECT (b >> 3)::int AS i, bit_or(1 << (b & 7)::int) AS v FROM unnest(bits) AS b GROUP BY 1) AS x ON x.i = g.i;
  RETURN substring(sketch FROM 1 FOR 8) || decode(dense, 'hex');
END $$;
${countedSketch('bloom_agg', 'sluice.bloom_agg_add', 'sluice.bloom_union')}
${optionalParams('bloom_agg', 'anyelement', [{ name: 'p', type: 'double precision' }, { name: 'n', type: 'bigint' }], 'sluice.bloom_empty', appendEntry('bloom_agg', valueText))}
`;

/**
 * Values whose counts topk_agg keeps exact when the summary's capacity is
 * smaller: past them the kept counts are merged as TopK.merge merges
 * summaries and the top ones kept, each count then an upper bound.
 */
const topkExact = 10000;

/**
 * topk_agg(x, k[, weight]): the exact count (error 0) of each value while at
 * most 10 000 distinct values (or the capacity, if larger) were seen, and
 * the total weight; kept entries "count:error:value" for every value, pending
 * ones "weight:0:value". Ties rank by value, as TopK ranks them, so a
 * summary the engine kept exact has the same bytes.
 */
const topkAggregateSql = `
CREATE OR REPLACE FUNCTION sluice.topk_empty(k integer) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  k := coalesce(k, 10);
  IF k < 1 OR k > 100000 THEN
    RAISE EXCEPTION 'k must be an integer between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN decode('0204' || lpad(to_hex(k), 8, '0') || lpad(to_hex(greatest(10 * k, 100)), 8, '0') || repeat('0', 24), 'hex');
END $$;
CREATE OR REPLACE FUNCTION sluice.topk_agg_entries(entries text[]) RETURNS TABLE (v text, c bigint, e bigint) LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT substr(x.s, length(x.c) + length(x.e) + 3), x.c::bigint, x.e::bigint
  FROM (SELECT s, split_part(s, ':', 1) AS c, split_part(s, ':', 2) AS e FROM unnest(entries) AS s OFFSET 0) AS x
$$;
-- A summary's floor: its smallest count once it holds cap values (TopK.floor).
CREATE OR REPLACE FUNCTION sluice.topk_agg_floor(entries text[], cap bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(entries) >= cap THEN (SELECT min(x.c) FROM sluice.topk_agg_entries(entries) AS x) ELSE 0 END
$$;
-- TopK.merge of two summaries' entries: a value missing from one counts that one's floor; the top cap are kept.
CREATE OR REPLACE FUNCTION sluice.topk_agg_merge(a text[], a_floor bigint, b text[], b_floor bigint, cap bigint) RETURNS bytea
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT sluice.agg_entries(array_agg(m.c || ':' || m.e || ':' || m.v)) FROM (
    SELECT coalesce(x.v, y.v) AS v, coalesce(x.c, a_floor) + coalesce(y.c, b_floor) AS c, coalesce(x.e, a_floor) + coalesce(y.e, b_floor) AS e
    FROM (SELECT u.v COLLATE "C" AS v, sum(u.c) AS c, sum(u.e) AS e FROM sluice.topk_agg_entries(a) AS u GROUP BY 1) AS x
    FULL JOIN (SELECT u.v COLLATE "C" AS v, sum(u.c) AS c, sum(u.e) AS e FROM sluice.topk_agg_entries(b) AS u GROUP BY 1) AS y ON y.v = x.v
    ORDER BY 2 DESC, 1 LIMIT cap
  ) AS m
$$;
CREATE OR REPLACE FUNCTION sluice.topk_agg_cap(sketch bytea) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT greatest(sluice.sk_u32(sketch, 6), ${topkExact}) $$;
-- The sketch with n more in its total.
CREATE OR REPLACE FUNCTION sluice.topk_agg_count(sketch bytea, n numeric) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT overlay(sketch PLACING int8send((sluice.sk_u64(sketch, 10) + n)::bigint) FROM 11) $$;
CREATE OR REPLACE FUNCTION sluice.topk_agg_fold(state bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  sketch bytea := sluice.agg_sketch(state);
  cap bigint := sluice.topk_agg_cap(sketch);
  kept text[] := sluice.agg_kept(state);
  pending text[] := sluice.agg_pending(state);
BEGIN
  IF cardinality(pending) = 0 THEN
    RETURN state;
  END IF;
  sketch := sluice.topk_agg_count(sketch, (SELECT sum(x.c) FROM sluice.topk_agg_entries(pending) AS x));
  RETURN sluice.agg_state(sketch, sluice.topk_agg_merge(kept, sluice.topk_agg_floor(kept, cap), pending, 0, cap));
END $$;
-- The summary (TopK.serialize): its top capacity values by count, then value, as text (tag 0), as a view's values are.
CREATE OR REPLACE FUNCTION sluice.topk_agg_final(state bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  folded bytea := sluice.topk_agg_fold(state);
  sketch bytea := sluice.agg_sketch(folded);
  n int;
  body bytea;
BEGIN
  SELECT count(*), string_agg(int8send(x.c) || int8send(x.e) || '\\x00'::bytea || int4send(length(x.b)) || x.b, ''::bytea ORDER BY x.c DESC, x.b)
    INTO n, body
  FROM (SELECT y.c, y.e, convert_to(y.v, 'UTF8') AS b FROM sluice.topk_agg_entries(sluice.agg_kept(folded)) AS y
        ORDER BY y.c DESC, y.v COLLATE "C" LIMIT sluice.sk_u32(sketch, 6)) AS x;
  RETURN substring(sketch FROM 1 FOR 18) || int4send(n) || coalesce(body, ''::bytea);
END $$;
CREATE OR REPLACE FUNCTION sluice.topk_agg_combine(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  sa bytea;
  sb bytea;
  cap bigint;
BEGIN
  a := sluice.topk_agg_fold(a);
  b := sluice.topk_agg_fold(b);
  sa := sluice.agg_sketch(a);
  sb := sluice.agg_sketch(b);
  IF substring(sa FROM 3 FOR 8) <> substring(sb FROM 3 FOR 8) THEN
    RAISE EXCEPTION 'cannot merge top-k sketches with different k' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  cap := sluice.topk_agg_cap(sa);
  RETURN sluice.agg_state(sluice.topk_agg_count(sa, sluice.sk_u64(sb, 10)),
    sluice.topk_agg_merge(sluice.agg_kept(a), sluice.topk_agg_floor(sluice.agg_kept(a), cap), sluice.agg_kept(b), sluice.topk_agg_floor(sluice.agg_kept(b), cap), cap));
END $$;
${aggregateVariant('topk_agg', 'anyelement', [{ name: 'k', type: 'integer' }], 'sluice.topk_empty(k)', appendEntry('topk_agg', `'1:0:' || ${valueText}`))}
${aggregateVariant(
  'topk_agg',
  'anyelement',
  [
    { name: 'k', type: 'integer' },
    { name: 'w', type: 'bigint' },
  ],
  'sluice.topk_empty(k)',
  `  IF w IS NULL THEN
    w := 1;
  ELSIF w < 0 THEN
    RAISE EXCEPTION 'weight must be a non-negative integer' USING ERRCODE = 'invalid_parameter_value';
  ELSIF w = 0 THEN
    RETURN state;
  END IF;
${appendEntry('topk_agg', `w || ':0:' || ${valueText}`)}`,
)}
`;

/**
 * dist_agg(x[, compression]): values buffered and merged into the centroids
 * as TDigest buffers and flushes them (every max(64, 2·compression) finite
 * values, sorted): the bytes TDigest gives for the same values in the same
 * order. Pending values are 8-byte doubles (float8send).
 */
const distAggregateSql = `
CREATE OR REPLACE FUNCTION sluice.tdigest_empty(compression double precision) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  compression := coalesce(compression, 200);
  IF NOT (compression >= 10 AND compression <= 10000) THEN
    RAISE EXCEPTION 'compression must be between 10 and 10000' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN '\\x0202'::bytea || float8send(compression) || float8send('Infinity') || float8send('-Infinity') || int4send(0);
END $$;
-- The buffered values merged into the centroids (TDigest.flush); the sketch.
CREATE OR REPLACE FUNCTION sluice.dist_agg_final(state bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  sketch bytea := sluice.agg_sketch(state);
  o int := 8 + length(sketch);
  n int := sluice.sk_u32(sketch, 26)::int;
  vs float8[];
BEGIN
  IF length(state) = o THEN
    RETURN sketch;
  END IF;
  -- Sorted as a Float64Array sorts: -0 before 0.
  SELECT array_agg(sluice.f64(x.bits) ORDER BY sluice.f64(x.bits), x.bits < 0 DESC) INTO vs
  FROM (SELECT sluice.sk_u64(state, o + 8 * i) AS bits FROM generate_series(0, (length(state) - o) / 8 - 1) AS i OFFSET 0) AS x;
  RETURN sluice.tdigest_compress(sluice.sk_f64(sketch, 2), least(sluice.sk_f64(sketch, 10), vs[1]), greatest(sluice.sk_f64(sketch, 18), vs[cardinality(vs)]),
    sluice.f64s(sketch, 30, n), sluice.f64s(sketch, 30 + 8 * n, n), vs, NULL);
END $$;
CREATE OR REPLACE FUNCTION sluice.dist_agg_combine(a bytea, b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT sluice.agg_state(sluice.tdigest_merge(sluice.dist_agg_final(a), sluice.dist_agg_final(b)), ''::bytea) $$;
${[[], [{ name: 'compression', type: 'double precision' }]]
  .map((params) =>
    aggregateVariant(
      'dist_agg',
      'double precision',
      params,
      `sluice.tdigest_empty(${params.length ? 'compression' : 'NULL'})`,
      `  IF v = 'NaN' OR v = 'Infinity' OR v = '-Infinity' THEN
    RETURN state;
  END IF;
  state := state || float8send(v);
  IF length(state) >= sluice.sk_u32(state, 0) + 8 + 8 * greatest(64, ceil(2 * ${params.length ? 'coalesce(compression, 200)' : '200'})) THEN
    RETURN sluice.agg_state(sluice.dist_agg_final(state), ''::bytea);
  END IF;
  RETURN state;`,
    ),
  )
  .join('\n')}
`;

/**
 * bucket_agg(x, bucket_id[, ts]): per distinct value the bucket
 * BucketAgg.add leaves it in after the rows in their order (the latest
 * timestamp, on a tie the larger bucket; a row without one is later than
 * any): the bytes BucketAgg gives for the same rows in the same order.
 * Entries "bucket:epoch:value" (epoch empty without a timestamp).
 */
const bucketAggregateSql = `
-- The pending rows put on the sketch as BucketAgg.add puts them one after the other: per value (hash), among its entry in the
-- sketch (the earliest) and its rows, from the last one without a timestamp on, the latest timestamp, then the larger bucket.
CREATE OR REPLACE FUNCTION sluice.bucket_agg_final(state bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  sketch bytea := sluice.agg_sketch(state);
  cnt int;
  with_ts boolean;
  plain bytea;
  timed bytea;
BEGIN
  WITH r AS (
    SELECT x.n, substr(x.s, length(x.b) + length(x.t) + 3) AS v, x.b::smallint AS b, nullif(x.t, '')::float8 AS ts
    FROM (SELECT n, s, split_part(s, ':', 1) AS b, split_part(s, ':', 2) AS t FROM unnest(sluice.agg_pending(state)) WITH ORDINALITY AS u(s, n) OFFSET 0) AS x
  ),
  d AS (SELECT r.v, row_number() OVER () AS i FROM (SELECT DISTINCT r.v COLLATE "C" AS v FROM r) AS r),
  hv AS (SELECT d.v, int8send(m.h1) AS h FROM sluice.murmur3_h1s(ARRAY(SELECT convert_to(d.v, 'UTF8') FROM d ORDER BY d.i)) AS m JOIN d ON d.i = m.n),
  old AS MATERIALIZED (SELECT o.h, ((((get_byte(o.bucket, 0) << 8) | get_byte(o.bucket, 1)) # 32768) - 32768)::smallint AS b, nullif(o.ts, '-Infinity') AS ts
                       FROM sluice.bucket_rows(sketch) AS o),
  puts AS (
    SELECT hv.h, r.n, r.b, r.ts FROM r JOIN hv ON hv.v = r.v COLLATE "C"
    UNION ALL
    SELECT old.h, 0, old.b, old.ts FROM old WHERE old.h IN (SELECT hv.h FROM hv)
  ),
  l AS (SELECT puts.h, max(puts.n) FILTER (WHERE puts.ts IS NULL) AS n FROM puts GROUP BY puts.h),
  win AS (
    SELECT DISTINCT ON (puts.h) puts.h, puts.b, puts.ts FROM puts JOIN l ON l.h = puts.h
    WHERE puts.n >= coalesce(l.n, 0) ORDER BY puts.h, puts.ts DESC NULLS LAST, puts.b DESC
  ),
  e AS (SELECT old.* FROM old WHERE old.h NOT IN (SELECT win.h FROM win) UNION ALL SELECT * FROM win)
  SELECT count(*), coalesce(bool_or(e.ts IS NOT NULL), false), string_agg(e.h || int2send(e.b), ''::bytea ORDER BY e.h),
         string_agg(e.h || int2send(e.b) || float8send(coalesce(e.ts, '-Infinity')), ''::bytea ORDER BY e.h)
    INTO cnt, with_ts, plain, timed FROM e;
  RETURN '\\x0209'::bytea || CASE WHEN with_ts THEN '\\x01'::bytea ELSE '\\x00'::bytea END || int4send(cnt) || coalesce(CASE WHEN with_ts THEN timed ELSE plain END, ''::bytea);
END $$;
CREATE OR REPLACE FUNCTION sluice.bucket_agg_fold(state bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT sluice.agg_state(sluice.bucket_agg_final(state), ''::bytea) $$;
CREATE OR REPLACE FUNCTION sluice.bucket_agg_combine(a bytea, b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT sluice.agg_state(sluice.bucket_merge(sluice.bucket_agg_final(a), sluice.bucket_agg_final(b)), ''::bytea) $$;
${[false, true]
  .map((timed) =>
    aggregateVariant(
      'bucket_agg',
      'anyelement',
      [{ name: 'id', type: 'smallint' }, ...(timed ? [{ name: 'ts', type: 'timestamptz' }] : [])],
      `'\\x02090000000000'::bytea`,
      `  IF id IS NULL THEN
    RETURN state;
  END IF;${
    timed
      ? `
  IF NOT isfinite(ts) THEN
    RAISE EXCEPTION 'bucket_agg timestamp must be finite' USING ERRCODE = 'invalid_parameter_value';
  END IF;`
      : ''
  }
${appendEntry('bucket_agg', `id || ':' || ${timed ? `coalesce(extract(epoch FROM ts)::text, '')` : `''`} || ':' || ${valueText}`)}`,
    ),
  )
  .join('\n')}
`;

export const sketchFunctionsSql = [
  commonSql,
  topkSql,
  hllSql,
  hashTextSql,
  freqSql,
  bloomSql,
  distSql,
  bucketSql,
  companionSql,
  mergeSql,
  aggregateStateSql,
  hllAggregateSql,
  freqAggregateSql,
  bloomAggregateSql,
  topkAggregateSql,
  distAggregateSql,
  bucketAggregateSql,
].join('\n');
