import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Whether a process exists (used to tell a killed run's locks and temporary folders). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function ownerOf(lockDir: string): Promise<number> {
  // Original-build locks written by earlier versions name their owner in 'pid'.
  for (const name of ['owner', 'pid']) {
    const text = await readFile(join(lockDir, name), 'utf8').catch(() => undefined);
    if (text !== undefined) return Number(text.trim());
  }
  return 0;
}

/**
 * Runs `fn` holding a cross-process lock (a directory: mkdir is atomic), so concurrent callers
 * wait for the first one's work instead of racing it. A lock whose owner process is gone is
 * taken over, so a killed run does not block the next one forever.
 */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, onWait?: (owner: number) => void): Promise<T> {
  await mkdir(dirname(lockDir), { recursive: true });
  let warned = false;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'owner'), `${process.pid}\n`);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await ownerOf(lockDir);
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!warned && owner > 0) {
        onWait?.(owner);
        warned = true;
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
