/**
 * The processes that run libwfpatch: each listens on the abstract unix socket @wfpatch.<pid>,
 * which /proc/net/unix lists (as "@wfpatch.<pid>", and its padded twin ending in '@'s).
 */
import { readFile } from 'node:fs/promises';

/** The pids named by libwfpatch control sockets in a /proc/net/unix text (pure). */
export function pidsFromNetUnix(text: string): number[] {
  const pids = new Set<number>();
  for (const m of text.matchAll(/ @wfpatch\.(\d+)(?:@*)$/gm)) pids.add(Number(m[1]));
  return [...pids].sort((a, b) => a - b);
}

/** The live processes that run libwfpatch (their socket listed and /proc/PID present). */
export async function libwfpatchPids(): Promise<number[]> {
  const text = await readFile('/proc/net/unix', 'utf8');
  const alive: number[] = [];
  for (const pid of pidsFromNetUnix(text)) {
    if (await readFile(`/proc/${pid}/stat`, 'utf8').then(() => true, () => false)) alive.push(pid);
  }
  return alive;
}

/** The target build-id of a patch object or bundle (its .wfpatch.target strings, FORMAT.md). */
export function patchTargetBuildId(bytes: Buffer): string | null {
  const m = /build-id=([0-9a-f]{2,128})\0/.exec(bytes.toString('latin1'));
  return m ? m[1] : null;
}
