import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jdbcDriver, runJava, runPython } from '../support/drivers.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * TLS on the wire (Grafana and managed tools default to sslmode=require): a
 * certificate signed by a test CA for 127.0.0.1, checked by the clients
 * people use, with verify-full where they can; a server without one says so.
 */
const run = promisify(execFile);
const drivers = path.resolve(import.meta.dirname, '../drivers');
let dir: string;
let sluice: RunningSluice;
let plain: RunningSluice;

/** A CA, and a server certificate it signed for 127.0.0.1 and localhost, with openssl. */
function makeCertificates(into: string): { ca: string; otherCa: string; cert: string; key: string } {
  const file = (name: string) => path.join(into, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Sluice test CA', '-keyout', file('ca.key'), '-out', file('ca.crt'));
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Some other CA', '-keyout', file('other-ca.key'), '-out', file('other-ca.crt'));
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr'));
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', writeExt(into), '-out', file('server.crt'));
  return { ca: file('ca.crt'), otherCa: file('other-ca.crt'), cert: file('server.crt'), key: file('server.key') };
}

function writeExt(into: string): string {
  const ext = path.join(into, 'server.ext');
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > '${ext}'`]);
  return ext;
}

let files: ReturnType<typeof makeCertificates>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sluice-tls-'));
  files = makeCertificates(dir);
  sluice = await startSluice({ tls: { cert: files.cert, key: files.key } });
  plain = await startSluice();
}, 60_000);

afterAll(async () => {
  await sluice?.stop({ removeData: true });
  await plain?.stop({ removeData: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  it('psql with sslmode=verify-full and the CA: an encrypted session that still runs Sluice statements', async () => {
    const conninfo = `host=127.0.0.1 port=${sluice.port} user=sluice dbname=sluice sslmode=verify-full sslrootcert=${files.ca}`;
    const { stdout } = await run('psql', ['-X', '-A', '-t', conninfo, '-c', '\\conninfo', '-c', 'CREATE STREAM tls_s (x int)', '-c', 'CREATE VIEW tls_v AS SELECT count(*) FROM tls_s', '-c', 'INSERT INTO tls_s VALUES (1), (2)', '-c', 'SELECT count FROM tls_v']);
    expect(stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
    expect(stdout.trim().split('\n').at(-1)).toBe('2');
  });

  it('node-postgres verifies the certificate against the CA, and refuses one it cannot verify', async () => {
    const verified = new pg.Client({ host: '127.0.0.1', port: sluice.port, user: 'sluice', database: 'sluice', ssl: { ca: readFileSync(files.ca, 'utf8') } });
    await verified.connect();
    expect((await verified.query('SELECT count FROM tls_v')).rows).toEqual([{ count: '2' }]);
    await verified.end();
    const untrusting = new pg.Client({ host: '127.0.0.1', port: sluice.port, user: 'sluice', database: 'sluice', ssl: { rejectUnauthorized: true } });
    await expect(untrusting.connect()).rejects.toThrow(/self.signed|unable to verify|certificate/i);
  });

  it('pgjdbc verifies the certificate (sslmode=verify-full) and refuses a root that did not sign it; psycopg 3 connects with sslmode=require', async () => {
    const jar = await jdbcDriver();
    const jdbc = await runJava(path.join(drivers, 'JdbcTls.java'), jar, [String(sluice.port), files.ca, files.otherCa]);
    expect(jdbc).toEqual({ count: '2', untrusted: '08006' });
    const psycopg = await runPython(path.join(drivers, 'psycopg_tls.py'), [String(sluice.port)]);
    expect(psycopg).toEqual({ count: '2', ssl: 'True' });
  }, 180_000);

  it('a server without a certificate answers SSLRequest with N: sslmode=require fails, prefer goes on in the clear', async () => {
    await expect(run('psql', ['-X', '-A', '-t', `host=127.0.0.1 port=${plain.port} user=sluice dbname=sluice sslmode=require`, '-c', 'SELECT 1'])).rejects.toMatchObject({
      stderr: expect.stringContaining('server does not support SSL'),
    });
    const { stdout } = await run('psql', ['-X', '-A', '-t', `host=127.0.0.1 port=${plain.port} user=sluice dbname=sluice sslmode=prefer`, '-c', 'SELECT 1']);
    expect(stdout.trim()).toBe('1');
  });
});
