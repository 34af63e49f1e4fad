/** Result cache keys: what decides a unit's verdict, hashed; and finding earlier results. */
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { cacheRoot, repoRoot } from '../paths.ts';
import { createDiffObjectPath } from '../stages/create-diff-object.ts';
import { wfpatchCtlPath } from './confirm.ts';
import type { Manifest } from './manifest.ts';
import type { UnitResult } from './results.ts';
import type { CorpusUnit } from './units.ts';

/** Bump when the driver's way of classifying a unit changes (invalidates cached results). */
const driverVersion = 3;
export const resultsCache: string = join(cacheRoot, 'corpus', 'results');

/** Hash of what decides a unit's verdict besides its own patch: the tools that classify it. */
export async function toolsFingerprint(): Promise<{ createDiffObject: string; wfpatchCtl: string; pipeline: string }> {
  const hashFile = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
  const createDiffObject = await hashFile(createDiffObjectPath).catch(() => 'missing');
  // The dry run (wfpatch-ctl check) confirms or downgrades a verdict: it decides it too.
  const wfpatchCtl = await hashFile(wfpatchCtlPath).catch(() => 'missing');
  const pipeline = createHash('sha256');
  for (const dir of ['stages', 'triage', 'wrapper', 'report', 'bundle']) {
    const root = join(repoRoot, 'pipeline', 'src', dir);
    const files = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const f of files.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort()) {
      pipeline.update(relative(repoRoot, f)).update('\0').update(await readFile(f));
    }
  }
  return { createDiffObject: createDiffObject.slice(0, 16), wfpatchCtl: wfpatchCtl.slice(0, 16), pipeline: pipeline.digest('hex').slice(0, 16) };
}

/**
 * The newest cached result of a unit with one of these input hashes (any tool versions);
 * `appliedAt`: only results measured at that series position.
 */
export async function newestResultFor(cacheDir: string, unitId: string, inputs: readonly string[], appliedAt?: number): Promise<UnitResult | undefined> {
  let best: { result: UnitResult; mtime: number } | undefined;
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const path = join(cacheDir, name);
    const result = JSON.parse(await readFile(path, 'utf8').catch(() => 'null')) as UnitResult | null;
    if (!result || result.unit !== unitId || result.verdict === 'pending') continue;
    if (appliedAt !== undefined && result.appliedAt !== appliedAt) continue;
    // Results written before 'inputs' existed are taken only from driver version 2 (they
    // have 'base'); version 1 placed units differently.
    if (result.inputs === undefined ? result.base === undefined : !inputs.includes(result.inputs)) continue;
    const mtime = (await stat(path)).mtimeMs;
    if (!best || mtime > best.mtime) best = { result, mtime };
  }
  return best?.result;
}

export function unitKey(parts: { manifest: Manifest; unit: CorpusUnit; appliedAt: number | string; buildCmd: string | null; tools: object | null }): string {
  return createHash('sha256')
    .update(JSON.stringify([driverVersion, parts.manifest.package, parts.manifest.baseVersion, parts.manifest.baseDscSha256, parts.manifest.services ?? null, parts.unit.sha256, parts.appliedAt, parts.buildCmd, parts.tools]))
    .digest('hex')
    .slice(0, 32);
}
