import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** The real drivers people use, for tests that run them against Sluice. */
const run = promisify(execFile);
export const JDBC_VERSION = '42.7.4';
const jdbcDir = path.join(process.env.SLUICE_CACHE_DIR ?? path.join(homedir(), '.cache', 'sluice'), 'jdbc');

/** pgjdbc from Maven Central (fetched once with mvn into ~/.cache/sluice/jdbc); fails with how to get Maven. */
export async function jdbcDriver(): Promise<string> {
  const jar = path.join(jdbcDir, `postgresql-${JDBC_VERSION}.jar`);
  if (existsSync(jar)) return jar;
  mkdirSync(jdbcDir, { recursive: true });
  try {
    await run('mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=org.postgresql:postgresql:${JDBC_VERSION}`, `-DoutputDirectory=${jdbcDir}`], { timeout: 300_000 });
  } catch (err) {
    throw new Error(`could not fetch pgjdbc ${JDBC_VERSION} with Maven (apt-get install maven): ${(err as Error).message}`);
  }
  if (!existsSync(jar)) throw new Error(`mvn dependency:copy did not leave ${jar}`);
  return jar;
}

/** Runs a single-file Java program (JDK 11+ source launcher) and returns its `name=value` lines. */
export async function runJava(source: string, classpath: string, args: string[]): Promise<Record<string, string>> {
  try {
    const { stdout } = await run('java', ['-cp', classpath, source, ...args], { timeout: 120_000 });
    return keyValues(stdout);
  } catch (err) {
    throw new Error(`java ${path.basename(source)} failed (needs a JDK: apt-get install openjdk-17-jdk-headless): ${(err as Error).message}\n${(err as { stderr?: string }).stderr ?? ''}`);
  }
}

/** Runs a Python program with Debian's python3 (psycopg 3 from python3-psycopg) and returns its `name=value` lines. */
export async function runPython(source: string, args: string[]): Promise<Record<string, string>> {
  try {
    const { stdout } = await run('/usr/bin/python3', [source, ...args], { timeout: 120_000 });
    return keyValues(stdout);
  } catch (err) {
    throw new Error(`python3 ${path.basename(source)} failed (needs Debian's python3-psycopg, python3-psycopg2, python3-sqlalchemy, python3-pandas): ${(err as Error).message}\n${(err as { stderr?: string }).stderr ?? ''}`);
  }
}

function keyValues(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) result[line.slice(0, at)] = line.slice(at + 1);
  }
  return result;
}
