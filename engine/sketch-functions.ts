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
 * The aggregates themselves (topk_agg, hll_agg, …) are computed by the
 * engine in continuous views; in the store they exist so PostgreSQL can type
 * a view's query, and calling them over a table says so. Hashes that a
 * function recomputes (freq, freq_add, bloom_contains) come from md5() of the
 * value's text, as engine/sketches/hash.ts sqlHash does; hll_add computes
 * MurmurHash3 x64 128 (sluice.murmur3_h1), as HyperLogLog.add does. The
 * functions that change a state (hll_add, freq_add, topk_increment,
 * dist_add, and the aggregates hll_union_agg, freq_merge_agg,
 * bloom_union_agg, bloom_intersection_agg) give the bytes the engine's
 * sketch gives for the same operation.
 */

/** Raised when a continuous-only sketch aggregate runs over a table. */
function continuousOnly(name: string, args: string): string {
  return `
CREATE OR REPLACE FUNCTION sluice.${name}_sfunc(bytea, ${args}) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RAISE EXCEPTION '${name} is only computed in continuous views'
    USING ERRCODE = 'feature_not_supported', HINT = 'Create a continuous view with ${name}(…) over a stream and read its column with the sketch functions.';
END $$;
CREATE OR REPLACE AGGREGATE public.${name}(${args}) (sfunc = sluice.${name}_sfunc, stype = bytea);`;
}

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
`;

/**
 * topk_agg(x, k[, weight]) and topk(state) → (value, frequency) rows, most
 * frequent first (ties by value), topk_values(state) → text[],
 * topk_freqs(state) → bigint[]. Layout: see TopK.serialize.
 */
const topkSql = `
${continuousOnly('topk_agg', 'anyelement, integer')}
${continuousOnly('topk_agg', 'anyelement, integer, bigint')}
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
${continuousOnly('hll_agg', 'anyelement')}
${continuousOnly('hll_agg', 'anyelement, integer')}
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
${continuousOnly('freq_agg', 'anyelement')}
${continuousOnly('freq_agg', 'anyelement, double precision')}
${continuousOnly('freq_agg', 'anyelement, double precision, double precision')}
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
CREATE OR REPLACE FUNCTION public.freq(state bytea, value anyelement) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  w bigint;
  h record;
  best bigint;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 3, 'cms');
  IF value IS NULL THEN
    RETURN 0;
  END IF;
  w := sluice.sk_u32(state, 2);
  SELECT * INTO h FROM sluice.sketch_hash(sluice.sketch_text(value));
  FOR i IN 0..sluice.sk_u32(state, 6)::int - 1 LOOP
    best := least(best, sluice.cms_counter(state, i * w + (h.h1 + i * h.h2) % w));
  END LOOP;
  RETURN best;
END $$;
CREATE OR REPLACE FUNCTION public.freq_total(state bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  PERFORM sluice.sketch_check(state, 3, 'cms');
  RETURN sluice.sk_u64(state, 10);
END $$;
CREATE OR REPLACE FUNCTION public.freq_norm(state bytea, value anyelement) RETURNS double precision LANGUAGE sql IMMUTABLE AS
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
${continuousOnly('bloom_agg', 'anyelement')}
${continuousOnly('bloom_agg', 'anyelement, double precision')}
${continuousOnly('bloom_agg', 'anyelement, double precision, bigint')}
CREATE OR REPLACE FUNCTION sluice.bloom_bit(state bytea, b bigint) RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF get_byte(state, 7) = 1 THEN
    RETURN get_bit(state, 64 + b) = 1;
  END IF;
  RETURN sluice.sk_find_u32(state, 12, sluice.sk_u32(state, 8)::int, 4, b) >= 0;
END $$;
CREATE OR REPLACE FUNCTION public.bloom_contains(state bytea, value anyelement) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  m bigint;
  h record;
BEGIN
  IF state IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM sluice.sketch_check(state, 5, 'bloom');
  IF value IS NULL THEN
    RETURN false;
  END IF;
  m := sluice.sk_u32(state, 2);
  SELECT * INTO h FROM sluice.sketch_hash(sluice.sketch_text(value));
  FOR i IN 0..get_byte(state, 6) - 1 LOOP
    IF NOT sluice.bloom_bit(state, (h.h1 + i * h.h2) % m) THEN
      RETURN false;
    END IF;
  END LOOP;
  RETURN true;
END $$;
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
${continuousOnly('dist_agg', 'double precision')}
${continuousOnly('dist_agg', 'double precision, double precision')}
-- An IEEE 754 double from its 8 big-endian bytes.
CREATE OR REPLACE FUNCTION sluice.sk_f64(b bytea, o int) RETURNS double precision LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  bits bigint := sluice.sk_u64(b, o);
  e int := ((bits >> 52) & 2047)::int;
  m bigint := bits & 4503599627370495;
  v double precision;
BEGIN
  IF e = 2047 THEN
    v := CASE WHEN m = 0 THEN 'Infinity'::float8 ELSE 'NaN'::float8 END;
  ELSIF e = 0 THEN
    v := m::float8 * (2::float8 ^ -1074);
  ELSE
    v := (m + 4503599627370496)::float8 * (2::float8 ^ (e - 1075));
  END IF;
  RETURN CASE WHEN bits < 0 THEN -v ELSE v END;
END $$;
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
${continuousOnly('bucket_agg', 'anyelement, smallint')}
${continuousOnly('bucket_agg', 'anyelement, smallint, timestamptz')}
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

-- TDigest.merge: both centroid lists, merged by mean (a's first on ties), compressed as TDigest.compress does.
CREATE OR REPLACE FUNCTION sluice.tdigest_merge(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  ca record;
  cb record;
  na int;
  nb int;
  comp float8;
  lo float8;
  hi float8;
  total float8;
  normalizer float8;
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
  IF a IS NULL THEN RETURN b; END IF;
  IF b IS NULL THEN RETURN a; END IF;
  SELECT * INTO ca FROM sluice.tdigest_centroids(a);
  SELECT * INTO cb FROM sluice.tdigest_centroids(b);
  na := coalesce(cardinality(ca.means), 0);
  nb := coalesce(cardinality(cb.means), 0);
  IF nb = 0 THEN RETURN a; END IF;
  comp := sluice.sk_f64(a, 2);
  lo := CASE WHEN na = 0 THEN sluice.sk_f64(b, 10) ELSE least(sluice.sk_f64(a, 10), sluice.sk_f64(b, 10)) END;
  hi := CASE WHEN na = 0 THEN sluice.sk_f64(b, 18) ELSE greatest(sluice.sk_f64(a, 18), sluice.sk_f64(b, 18)) END;
  total := ca.total + cb.total;
  normalizer := comp / (2 * pi());
  WHILE i <= na OR j <= nb LOOP
    IF j > nb OR (i <= na AND ca.means[i] <= cb.means[j]) THEN
      m := ca.means[i];
      w := ca.weights[i];
      i := i + 1;
    ELSE
      m := cb.means[j];
      w := cb.weights[j];
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
  RETURN decode('0202' || sluice.sk_f64_hex(comp) || sluice.sk_f64_hex(lo) || sluice.sk_f64_hex(hi) || lpad(to_hex(cnt), 8, '0')
    || (SELECT string_agg(sluice.sk_f64_hex(x), '' ORDER BY o) FROM unnest(out_m) WITH ORDINALITY AS u(x, o))
    || (SELECT string_agg(sluice.sk_f64_hex(x), '' ORDER BY o) FROM unnest(out_w) WITH ORDINALITY AS u(x, o)), 'hex');
END $$;
CREATE OR REPLACE AGGREGATE sluice.tdigest_merge_agg(bytea) (sfunc = sluice.tdigest_merge, stype = bytea);

-- BucketAgg.merge: per value (hash), the later timestamp wins (on a tie the larger bucket); without timestamps, b's entry.
CREATE OR REPLACE FUNCTION sluice.bucket_rows(state bytea, OUT h bytea, OUT bucket bytea, OUT ts float8) RETURNS SETOF record
  LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  w int;
  o int := 7;
BEGIN
  PERFORM sluice.sketch_check(state, 9, 'bucket_agg');
  w := CASE WHEN get_byte(state, 2) = 1 THEN 18 ELSE 10 END;
  FOR i IN 1..sluice.sk_u32(state, 3)::int LOOP
    h := substring(state FROM o + 1 FOR 8);
    bucket := substring(state FROM o + 9 FOR 2);
    ts := CASE WHEN w = 18 THEN sluice.sk_f64(state, o + 10) ELSE '-Infinity'::float8 END;
    o := o + w;
    RETURN NEXT;
  END LOOP;
END $$;
CREATE OR REPLACE FUNCTION sluice.bucket_merge(a bytea, b bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  plain text;
  timed text;
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
         string_agg(encode(k.h || k.bucket, 'hex'), '' ORDER BY k.h), string_agg(encode(k.h || k.bucket, 'hex') || sluice.sk_f64_hex(k.ts), '' ORDER BY k.h)
    INTO with_ts, n, plain, timed FROM kept AS k;
  RETURN decode('0209' || CASE WHEN with_ts THEN '01' ELSE '00' END || lpad(to_hex(n), 8, '0') || coalesce(CASE WHEN with_ts THEN timed ELSE plain END, ''), 'hex');
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

-- 64-bit words as bigint (two's complement): products and sums modulo 2^64, logical shifts.
CREATE OR REPLACE FUNCTION sluice.u64_wrap(n numeric) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN r >= 9223372036854775808 THEN (r - 18446744073709551616)::bigint ELSE r::bigint END
  FROM (SELECT mod(n, 18446744073709551616) AS r) AS x
$$;
CREATE OR REPLACE FUNCTION sluice.u64_num(a bigint) RETURNS numeric LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT CASE WHEN a < 0 THEN a::numeric + 18446744073709551616 ELSE a::numeric END $$;
CREATE OR REPLACE FUNCTION sluice.u64_mul(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT sluice.u64_wrap(sluice.u64_num(a) * sluice.u64_num(b)) $$;
CREATE OR REPLACE FUNCTION sluice.u64_add(a bigint, b bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT sluice.u64_wrap(sluice.u64_num(a) + sluice.u64_num(b)) $$;
CREATE OR REPLACE FUNCTION sluice.u64_shr(a bigint, r int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT (a >> r) & ((1::bigint << (64 - r)) - 1) $$;
CREATE OR REPLACE FUNCTION sluice.u64_rotl(a bigint, r int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
  $$ SELECT (a << r) | sluice.u64_shr(a, 64 - r) $$;
-- The little-endian integer of n (1..8) bytes of b from offset o.
CREATE OR REPLACE FUNCTION sluice.u64_le(b bytea, o int, n int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ('x' || lpad(string_agg(lpad(to_hex(get_byte(b, o + i)), 2, '0'), '' ORDER BY i DESC), 16, '0'))::bit(64)::bigint
  FROM generate_series(0, n - 1) AS i
$$;
CREATE OR REPLACE FUNCTION sluice.u64_fmix(k bigint) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT y # sluice.u64_shr(y, 33) FROM (
    SELECT sluice.u64_mul(x # sluice.u64_shr(x, 33), x'c4ceb9fe1a85ec53'::bit(64)::bigint) AS y FROM (
      SELECT sluice.u64_mul(k # sluice.u64_shr(k, 33), x'ff51afd7ed558ccd'::bit(64)::bigint) AS x
    ) AS a
  ) AS b
$$;
-- h1 of MurmurHash3 x64 128 (seed 0) of key: the 64 bits HyperLogLog.add uses (engine/sketches/hash.ts murmur3x64).
CREATE OR REPLACE FUNCTION sluice.murmur3_h1(key bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  c1 bigint := x'87c37b91114253d5'::bit(64)::bigint;
  c2 bigint := x'4cf5ad432745937f'::bit(64)::bigint;
  len int := length(key);
  nblocks int := length(key) / 16;
  rest int := length(key) % 16;
  h1 bigint := 0;
  h2 bigint := 0;
  k1 bigint;
  k2 bigint;
BEGIN
  FOR i IN 0..nblocks - 1 LOOP
    k1 := sluice.u64_le(key, 16 * i, 8);
    k2 := sluice.u64_le(key, 16 * i + 8, 8);
    h1 := h1 # sluice.u64_mul(sluice.u64_rotl(sluice.u64_mul(k1, c1), 31), c2);
    h1 := sluice.u64_add(sluice.u64_mul(sluice.u64_add(sluice.u64_rotl(h1, 27), h2), 5), 1390208809);
    h2 := h2 # sluice.u64_mul(sluice.u64_rotl(sluice.u64_mul(k2, c2), 33), c1);
    h2 := sluice.u64_add(sluice.u64_mul(sluice.u64_add(sluice.u64_rotl(h2, 31), h1), 5), 944331445);
  END LOOP;
  IF rest > 8 THEN
    k2 := sluice.u64_le(key, 16 * nblocks + 8, rest - 8);
    h2 := h2 # sluice.u64_mul(sluice.u64_rotl(sluice.u64_mul(k2, c2), 33), c1);
  END IF;
  IF rest > 0 THEN
    k1 := sluice.u64_le(key, 16 * nblocks, least(rest, 8));
    h1 := h1 # sluice.u64_mul(sluice.u64_rotl(sluice.u64_mul(k1, c1), 31), c2);
  END IF;
  h1 := h1 # len;
  h2 := h2 # len;
  h1 := sluice.u64_add(h1, h2);
  h2 := sluice.u64_add(h2, h1);
  h1 := sluice.u64_fmix(h1);
  h2 := sluice.u64_fmix(h2);
  RETURN sluice.u64_add(h1, h2);
END $$;
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

export const sketchFunctionsSql = [commonSql, topkSql, hllSql, hashTextSql, freqSql, bloomSql, distSql, bucketSql, companionSql, mergeSql].join('\n');
