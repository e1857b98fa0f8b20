/** SQL fragments that both the aggregates' merges and their re-aggregation (combine(), windows) build on. */

/** A json_object_agg result from the text of its members (`"k" : v, …`). */
export function jsonObjectSql(members: string): string {
  return `('{ ' || ${members} || ' }')::json`;
}

/** The text of a json_object_agg result's members: the object without the `{ ` and ` }` around them. */
export function jsonObjectMembersSql(object: string): string {
  return `substr(left((${object})::text, -2), 3)`;
}

/** The n smallest elements of an array, sorted; by subscript, since unnest would split an array of composites into columns. */
export function smallestSql(array: string, n: string | number): string {
  return `ARRAY(SELECT a[i] FROM (SELECT ${array} AS a) AS x CROSS JOIN generate_subscripts(x.a, 1) AS i ORDER BY 1 LIMIT ${n})`;
}
