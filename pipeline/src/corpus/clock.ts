/**
 * A guard against a clock that went backwards. The full pipeline's patched build re-runs make
 * on a copy of the cached original build: when the clock reads earlier than that build, the
 * files a unit patches look older than their objects, make recompiles nothing, and the unit
 * would come out "no-code" — a wrong verdict, silently. (It happened here: the shared
 * machine's clock jumped from 2026 back to 2024 during a run.) The run refuses to start instead.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';

/** Entries newer than the clock by more than this are "from the future". */
const slackMs = 5 * 60 * 1000;

/** The newest modification time among `dir`'s direct entries (0 if none). */
async function newestEntry(dir: string): Promise<number> {
  let newest = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const s = await stat(join(dir, name)).catch(() => null);
    if (s && s.mtimeMs > newest) newest = s.mtimeMs;
  }
  return newest;
}

/** Throws when a cached build in `dirs` is newer than the clock (pure apart from the file system). */
export async function checkClock(dirs: readonly string[], now: number = Date.now()): Promise<void> {
  for (const dir of dirs) {
    const newest = await newestEntry(dir);
    if (newest > now + slackMs) {
      throw new UserError(
        `the system clock reads ${new Date(now).toISOString()}, earlier than the cached builds in ${dir} (${new Date(newest).toISOString()}): ` +
          'an incremental rebuild would not see the patched files as newer than their objects, and units would wrongly come out "no-code". Fix the clock, or use a fresh WFPATCH_CACHE.',
        ExitCode.missingPrerequisite,
      );
    }
  }
}
