/**
 * `wfbuild apply --all BUNDLE…` / `wfbuild revert --all`: the same requests as `--pid`, sent to
 * every libwfpatch process a bundle is for (a loaded module with its target build-id), or for a
 * rollback to every libwfpatch process. Each process's outcome is printed; one refusing process
 * does not stop the others (exit 2 if any refused).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { libwfpatchPids, patchTargetBuildId } from '../status/discover.ts';
import { pidsWithBuildId } from '../status/targets.ts';
import { controlRequest } from './client.ts';
import { describeEvent } from './format.ts';

export async function applyToAll(bundles: readonly string[] | null, json: boolean, timeoutSec: number): Promise<number> {
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new UserError(`--timeout must be a positive number`);
  const jobs: { request: string; pids: number[] }[] = [];
  if (bundles === null) jobs.push({ request: 'rollback', pids: await libwfpatchPids() });
  else {
    if (bundles.length === 0) throw new UserError('give BUNDLE... (or --rollback)');
    for (const bundle of bundles) {
      const path = resolve(bundle);
      if (/[\n\r]/.test(path)) throw new UserError(`bad file name: ${JSON.stringify(bundle)}`);
      const bytes = await readFile(path).catch(() => {
        throw new UserError(`cannot read ${bundle}`);
      });
      const id = patchTargetBuildId(bytes);
      if (id === null) throw new UserError(`${bundle}: no .wfpatch.target build-id (not a wfbuild bundle or patch object)`);
      jobs.push({ request: `apply ${path}`, pids: await pidsWithBuildId(id) });
      if (jobs.at(-1)!.pids.length === 0) console.log(`${bundle}: no running libwfpatch process has build-id ${id}: nothing to patch`);
    }
  }
  let refused = 0;
  for (const { request, pids } of jobs) {
    for (const pid of pids) {
      const r = await controlRequest(pid, request, {
        timeoutMs: timeoutSec * 1000,
        onEvent: (e) => json && console.log(JSON.stringify({ pid, ...e })),
      }).catch((error: Error) => ({ events: [], outcome: 'error', reason: error.message }));
      if (!json) console.log(`pid ${pid}: ${request}: ${r.outcome === 'done' ? 'done' : `${r.outcome}${r.reason ? `: ${r.reason}` : ''}`}${r.events.length ? ` (${describeEvent(r.events.at(-1)!)})` : ''}`);
      if (r.outcome !== 'done') refused++;
    }
  }
  return refused > 0 ? ExitCode.usage : ExitCode.ok;
}
