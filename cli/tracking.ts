/**
 * Opening the run store for commands that record by default (train, finetune). Recording is a
 * convenience: when the default SQLite store cannot be opened because its optional package is not
 * installed, the command says so once and trains unrecorded. A store the user named explicitly must
 * open, or the command fails.
 */
import { OptionalDependencyError, defaultStoreUrl, openRunStore, type RunStore } from '../src/index.js';

export async function openRunStoreIfAvailable(url: string): Promise<RunStore | null> {
  try {
    return await openRunStore(url);
  } catch (error) {
    if (!(error instanceof OptionalDependencyError) || url !== defaultStoreUrl) throw error;
    console.error(
      `tensile: not recording this run (the dashboard's store ${url} needs the optional package ` +
        `'${error.packageName}': npm install ${error.packageName}; --no-track hides this note)`,
    );
    return null;
  }
}
