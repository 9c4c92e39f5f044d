/**
 * `tensile dashboard`: serves the web dashboard for the runs and studies in a store (by default the
 * ./tensile.db that `tensile train`, `tensile tune` and `tensile explain` write).
 */
import { numberOption, parseArgs, UsageError } from './arguments.js';
import { openStorage } from '../src/tune/index.js';
import { defaultStoreUrl, openRunStore } from '../src/index.js';
import {
  checkAllowedHost,
  checkDashboardToken,
  generateDashboardToken,
  isLoopbackAddress,
  startDashboard,
  type DashboardServer,
} from '../app/dashboard/index.js';

export const dashboardHelp = `usage: tensile dashboard [options]

Serves a web page with the recorded runs (loss and accuracy curves that grow while a training runs,
run comparison), the studies (optimization history, parallel coordinates, slice plots, learning rate
against the objective, parameter importance) and the explain figures.

options:
  --storage URL       where runs and studies are: sqlite:PATH or postgres://USER@HOST/DB (default ${defaultStoreUrl})
  --host ADDRESS      address to listen on (default 127.0.0.1: this machine only); any other address
                      (0.0.0.0: every interface) prints a warning and requires the access token
  --port N            port (default 6006; 0 picks a free one)
  --allow-host NAME   another name the page may be opened by (the Host header), besides localhost,
                      127.0.0.1, [::1] and the --host address; repeatable (NAME or NAME:PORT)
  --token VALUE       the access token (at least 16 characters; default: generated and printed when
                      --host is beyond loopback, none otherwise). Open the page once as
                      http://HOST:PORT/?token=VALUE (a cookie keeps it), or send 'Authorization: Bearer VALUE'`;

/** Who may reach the dashboard, decided from the command line before it listens. */
export interface DashboardAccess {
  /** The token requests must carry (null: none, the dashboard is for this machine only). */
  token: string | null;
  /** Printed before the address when the dashboard listens beyond loopback. */
  warning: string | null;
}

/**
 * The token and warning for `--host`: an address beyond loopback (0.0.0.0, a LAN address, a name)
 * gets a warning, and the token given with `--token` or a generated one.
 */
export function dashboardAccess(host: string, token: string | undefined): DashboardAccess {
  if (token !== undefined) checkDashboardToken(token);
  if (isLoopbackAddress(host)) return { token: token ?? null, warning: null };
  const where =
    host === '0.0.0.0' || host === '::' || host === '[::]' ? 'every network interface' : `'${host}'`;
  return {
    token: token ?? generateDashboardToken(),
    warning:
      `warning: listening on ${where}, beyond this machine: anyone who can reach it may try the port, ` +
      'so every request needs the access token; the dashboard speaks plain HTTP (use it on a trusted network, or behind TLS)',
  };
}

/** The lines printed once the dashboard listens. */
export function dashboardStartLines(
  server: Pick<DashboardServer, 'url' | 'port' | 'token'>,
  storageUrl: string,
  access: DashboardAccess,
): string[] {
  const lines: string[] = [];
  if (access.warning !== null) lines.push(access.warning);
  // An unspecified address is not one to open: name this machine's loopback instead.
  const url = /^http:\/\/(0\.0\.0\.0|\[::\]):/.test(server.url)
    ? `http://127.0.0.1:${server.port}/`
    : server.url;
  const open = server.token === null ? url : `${url}?token=${encodeURIComponent(server.token)}`;
  lines.push(`tensile dashboard: ${open} (runs and studies from ${storageUrl}); Ctrl-C stops it`);
  if (server.token !== null && url !== server.url)
    lines.push(
      `  from another machine: http://THIS-MACHINE-ADDRESS:${server.port}/?token=${encodeURIComponent(server.token)}` +
        ' (a name rather than an address needs --allow-host NAME)',
    );
  return lines;
}

export async function dashboardCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      storage: { type: 'string', default: defaultStoreUrl },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '6006' },
      'allow-host': { type: 'string', multiple: true, default: [] },
      token: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(dashboardHelp);
    return 0;
  }
  const port = numberOption(values.port, 'port', { integer: true, minimum: 0, below: 65536 })!;
  const allowHosts = values['allow-host']!;
  let access: DashboardAccess;
  try {
    for (const name of allowHosts) checkAllowedHost(name);
    access = dashboardAccess(values.host!, values.token);
  } catch (error) {
    throw new UsageError(`tensile dashboard: ${(error as Error).message}`);
  }
  const url = values.storage!;
  const runs = await openRunStore(url);
  const studies = await openStorage(url);
  const server = await startDashboard({
    runs,
    studies,
    host: values.host!,
    port,
    allowHosts,
    ...(access.token === null ? {} : { token: access.token }),
  });
  for (const line of dashboardStartLines(server, url, access)) console.log(line);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await runs.close();
  await studies.close();
  return 0;
}
