import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { SqlError } from '../../engine/errors.ts';

/** Where a server's certificate and private key are (PEM files). */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** The context TLS connections are served with; fails with what to fix when a file is missing or does not parse. */
export function serverTlsContext(files: TlsFiles): SecureContext {
  try {
    return createSecureContext({ cert: readFileSync(files.cert), key: readFileSync(files.key), minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new SqlError('F0000', `cannot use the TLS certificate ${files.cert} with key ${files.key}: ${(err as Error).message}`, {
      severity: 'FATAL',
      hint: 'Give PEM files with --tls-cert and --tls-key, or --tls-generate for a self-signed pair in the data directory.',
    });
  }
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 in `<dir>/tls`, made
 * once with openssl and kept: clients with sslmode=require (not verify-full)
 * connect at once.
 */
export function selfSignedTls(dataDir: string): TlsFiles {
  const dir = path.join(dataDir, 'tls');
  const files = { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
  if (existsSync(files.cert) && existsSync(files.key)) return files;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1', '-keyout', files.key, '-out', files.cert], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new SqlError('58000', `could not generate a self-signed certificate with openssl: ${(err as Error).message}`, {
      severity: 'FATAL',
      hint: 'Install openssl, or give your own certificate with --tls-cert and --tls-key.',
    });
  }
  return files;
}
