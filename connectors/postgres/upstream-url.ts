import os from 'node:os';
import { SqlError, SqlState } from '../../engine/errors.ts';

/** Where and as whom to connect to an external PostgreSQL. */
export interface UpstreamTarget {
  /** TCP host, unless `socketPath` is set. */
  host: string;
  port: number;
  /** A Unix-domain socket (`?host=/var/run/postgresql`), as libpq spells it. */
  socketPath?: string;
  user: string;
  database: string;
  password?: string;
  /** Extra StartupMessage parameters (application_name, options). */
  parameters: Record<string, string>;
  connectTimeoutMs: number;
  /** The URL without its password, for messages and logs. */
  display: string;
}

const DEFAULT_PORT = 5432;
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
const KNOWN_QUERY_PARAMETERS = new Set(['host', 'port', 'user', 'password', 'dbname', 'application_name', 'options', 'connect_timeout', 'sslmode']);
// Without TLS support, these are the sslmode values that still allow a plain connection.
const PLAIN_SSL_MODES = new Set(['disable', 'allow', 'prefer']);

/**
 * Reads a libpq-style URL (`postgres://user:password@host:port/db?…`).
 * Missing parts default as in libpq (user from PGUSER or the OS user,
 * database named after the user, password from PGPASSWORD), except the
 * host: localhost over TCP, since libpq's socket directory varies by system.
 */
export function parseUpstreamUrl(url: string, env: NodeJS.ProcessEnv = process.env): UpstreamTarget {
  const parsed = parseUrl(url);
  const query = parsed.searchParams;
  for (const key of query.keys()) {
    if (!KNOWN_QUERY_PARAMETERS.has(key)) throw badUrl(url, `unknown parameter "${key}"`);
  }
  const sslmode = query.get('sslmode');
  if (sslmode !== null && !PLAIN_SSL_MODES.has(sslmode)) {
    throw new SqlError(SqlState.featureNotSupported, `sslmode=${sslmode} in --postgres-url is not supported: Sluice connects to PostgreSQL without TLS`, {
      hint: 'Use sslmode=disable (or leave it out) and reach PostgreSQL over a trusted network or a Unix socket.',
    });
  }
  const hostParam = query.get('host') ?? (decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, '')) || 'localhost');
  const port = Number(query.get('port') ?? (parsed.port || DEFAULT_PORT));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw badUrl(url, `invalid port "${query.get('port') ?? parsed.port}"`);
  const user = query.get('user') ?? (decodeURIComponent(parsed.username) || env.PGUSER || os.userInfo().username);
  const database = query.get('dbname') ?? (decodeURIComponent(parsed.pathname.slice(1)) || user);
  const password = query.get('password') ?? (parsed.password ? decodeURIComponent(parsed.password) : env.PGPASSWORD);
  const timeoutSeconds = Number(query.get('connect_timeout') ?? DEFAULT_CONNECT_TIMEOUT_SECONDS);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) throw badUrl(url, `invalid connect_timeout "${query.get('connect_timeout')}"`);
  const parameters: Record<string, string> = {};
  for (const key of ['application_name', 'options']) {
    const value = query.get(key);
    if (value !== null) parameters[key] = value;
  }
  const socketPath = hostParam.startsWith('/') ? `${hostParam}/.s.PGSQL.${port}` : undefined;
  return {
    host: hostParam,
    port,
    socketPath,
    user,
    database,
    password,
    parameters,
    // libpq treats 0 as "wait forever".
    connectTimeoutMs: timeoutSeconds === 0 ? 0 : Math.max(timeoutSeconds, 2) * 1000,
    display: displayUrl(hostParam, port, user, database),
  };
}

function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    // libpq allows an empty host (postgres://user@/db?host=/socket/dir); WHATWG URLs do not, so lend one.
    parsed = new URL(url.replace(/^([a-z]+:\/\/(?:[^/?#@]*@)?)(?=[/?#]|$)/i, '$1localhost'));
  } catch {
    throw badUrl(url, 'not a URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw badUrl(url, `the scheme must be postgres:// or postgresql://, not ${parsed.protocol}//`);
  return parsed;
}

function displayUrl(host: string, port: number, user: string, database: string): string {
  const where = host.startsWith('/') ? `/${encodeURIComponent(database)}?host=${host}&port=${port}` : `${host.includes(':') ? `[${host}]` : host}:${port}/${encodeURIComponent(database)}`;
  return `postgres://${encodeURIComponent(user)}@${where}`;
}

function badUrl(url: string, reason: string): SqlError {
  return new SqlError(SqlState.invalidParameterValue, `invalid --postgres-url "${redactPassword(url)}": ${reason}`, {
    hint: 'Write it as postgres://user:password@host:port/database (SLUICE_POSTGRES_URL takes the same form).',
  });
}

/** Hides a password before the URL is shown anywhere. */
function redactPassword(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@').replace(/([?&]password=)[^&]*/i, '$1***');
}
