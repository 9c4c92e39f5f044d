/**
 * `tensile dashboard`: serves the web dashboard for the runs and studies in a store (by default the
 * ./tensile.db that `tensile train`, `tensile tune` and `tensile explain` write).
 */
import { parseArgs } from './arguments.js';
import { openStorage } from '../src/tune/index.js';
import { defaultStoreUrl, openRunStore, startDashboard } from '../src/track/index.js';

export const dashboardHelp = `usage: tensile dashboard [options]

Serves a web page with the recorded runs (loss and accuracy curves that grow while a training runs,
run comparison), the studies (optimization history, parallel coordinates, slice plots, learning rate
against the objective, parameter importance) and the explain figures.

options:
  --storage URL     where runs and studies are: sqlite:PATH or postgres://USER@HOST/DB (default ${defaultStoreUrl})
  --host ADDRESS    address to listen on (default 127.0.0.1: this machine only)
  --port N          port (default 6006; 0 picks a free one)`;

export async function dashboardCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      storage: { type: 'string', default: defaultStoreUrl },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '6006' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(dashboardHelp);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0 to 65535, got '${values.port}'`);
  const url = values.storage!;
  const runs = await openRunStore(url);
  const studies = await openStorage(url);
  const server = await startDashboard({ runs, studies, host: values.host!, port });
  console.log(`tensile dashboard: ${server.url} (runs and studies from ${url}); Ctrl-C stops it`);
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
