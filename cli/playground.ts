/**
 * `tensile playground`: serves the in-browser playground (app/playground) on this machine.
 */
import { numberOption, parseArgs, UsageError } from './arguments.js';
import { startPlayground } from '../app/playground/index.js';

export const playgroundHelp = `usage: tensile playground [options]

Serves a page that trains the seed CNN on MNIST in the browser tab (tensile's WebAssembly build, on
Web Worker threads), with live loss and accuracy curves and samples/s; draw a digit to see the
prediction, and the max/average pooling (DL0009) and Flatten/GAP head (DL0011) comparisons on it.
The page loads nothing beyond this server and works offline.

options:
  --host ADDRESS   127.0.0.1 (default), ::1 or localhost: the playground is for this machine only
  --port N         port (default 6007; 0 picks a free one)`;

export async function playgroundCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '6007' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(playgroundHelp);
    return 0;
  }
  const port = numberOption(values.port, 'port', { integer: true, minimum: 0, below: 65536 })!;
  let server;
  try {
    server = await startPlayground({ host: values.host!, port });
  } catch (error) {
    throw new UsageError(`tensile playground: ${(error as Error).message}`);
  }
  console.log(`tensile playground: ${server.url} (train a CNN in the browser tab); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  return 0;
}
