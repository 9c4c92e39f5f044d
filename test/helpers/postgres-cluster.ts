/**
 * A throwaway PostgreSQL cluster for tests that must stop and restart the server (as .ci/run starts
 * one): its own data directory, a free port on 127.0.0.1, the socket inside the data directory,
 * owned by the postgres user when we run as root (initdb refuses root). Removed by stop().
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** The newest PostgreSQL server binaries installed (Debian layout), or null. */
export function postgresBinaries(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs
    .readdirSync(root)
    .filter((version) => fs.existsSync(path.join(root, version, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(a) - Number(b));
  return versions.length === 0 ? null : path.join(root, versions[versions.length - 1]!, 'bin');
}

/** Why the cluster tests cannot run here, or undefined when they can. */
export function postgresClusterSkipReason(): string | undefined {
  if (postgresBinaries() === null)
    return 'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)';
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root without a postgres user to own the cluster';
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export class PostgresCluster {
  readonly port: number;
  private readonly directory: string;
  private readonly binaries: string;

  private constructor(binaries: string, directory: string, port: number) {
    this.binaries = binaries;
    this.directory = directory;
    this.port = port;
  }

  /** initdb and start a cluster; `database` is created and named by url(). */
  static async start(database = 'tensile_test'): Promise<PostgresCluster> {
    const binaries = postgresBinaries();
    if (binaries === null) throw new Error('no PostgreSQL binaries');
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-pg-'));
    fs.chmodSync(directory, 0o755);
    const cluster = new PostgresCluster(binaries, directory, await freePort());
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', directory]);
    cluster.asOwner(`${binaries}/initdb -D '${cluster.data}' -A trust -U postgres >/dev/null`);
    cluster.pgCtl('start');
    cluster.asOwner(
      `${binaries}/psql -h 127.0.0.1 -p ${cluster.port} -U postgres -d postgres -qc 'CREATE DATABASE ${database}'`,
    );
    cluster.databaseName = database;
    return cluster;
  }

  private databaseName = 'postgres';

  private get data(): string {
    return path.join(this.directory, 'data');
  }

  /** A connection URL for the test database, with a schema of its own when given. */
  url(schema?: string): string {
    const base = `postgres://postgres@127.0.0.1:${this.port}/${this.databaseName}`;
    return schema === undefined ? base : `${base}?schema=${schema}`;
  }

  /** `pg_ctl -m fast restart`: connections are terminated, the server is back when this returns. */
  restart(): void {
    this.pgCtl('restart');
  }

  /** Stops the server (fast), keeping the data. */
  stopServer(): void {
    this.pgCtl('stop');
  }

  /** Starts the server again after stopServer(). */
  startServer(): void {
    this.pgCtl('start');
  }

  /** Stops the server and removes the data directory. */
  stop(): void {
    try {
      this.pgCtl('stop');
    } catch {
      // Already stopped.
    }
    fs.rmSync(this.directory, { recursive: true, force: true });
  }

  private pgCtl(action: 'start' | 'stop' | 'restart'): void {
    const options = `-p ${this.port} -k ${this.directory} -c listen_addresses=127.0.0.1`;
    const mode = action === 'start' ? '' : '-m fast';
    this.asOwner(
      `${this.binaries}/pg_ctl -D '${this.data}' -l '${this.directory}/server.log' -w -t 60 ${mode} -o "${options}" ${action} >/dev/null`,
    );
  }

  private asOwner(command: string): void {
    if (process.getuid?.() === 0)
      execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', command], { stdio: 'inherit', timeout: 90_000 });
    else execFileSync('/bin/sh', ['-c', command], { stdio: 'inherit', timeout: 90_000 });
  }
}
