/**
 * A `wfbuild corpus` run: every selected package classified (package.ts), the results merged
 * with the previous file's and written to corpus/results/bookworm.{json,md}.
 */
import { join } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { ensureCreateDiffObject } from '../stages/create-diff-object.ts';
import { toolsFingerprint } from './keys.ts';
import { ensureWfpatchCtl } from './confirm.ts';
import { checkClock } from './clock.ts';
import { cacheRoot } from '../paths.ts';
import { corpusPackages, readManifest } from './manifest.ts';
import { classifyPackage, type RunOptions } from './package.ts';
import { debianPath } from './prerequisites.ts';
import { mergeResults, readPreviousResults, writeResults, type PackageResults, type ResultsFile } from './results-file.ts';

export type { RunOptions } from './package.ts';

export async function runCorpus(opts: RunOptions): Promise<ResultsFile> {
  // Every manifest is checked before anything is built: bad input fails in seconds.
  const manifests = await Promise.all(opts.packages.map((pkg) => readManifest(pkg)));
  if (opts.units) {
    const known = new Set(manifests.flatMap((m) => m.units.map((u) => u.id)));
    const unknown = [...opts.units].filter((id) => !known.has(id));
    if (unknown.length > 0) throw new UserError(`--units: no unit ${unknown.join(', ')} in ${opts.packages.join(', ')} (the ids are corpus/bookworm/<package>.json's)`, ExitCode.usage);
  }
  await ensureCreateDiffObject();
  await ensureWfpatchCtl();
  if (!opts.noBuilds) await checkClock([join(cacheRoot, 'wfbuild', 'orig'), join(cacheRoot, 'corpus', 'prepared')]);
  // Package builds get Debian's plain PATH: a pyenv or cargo shim earlier in PATH (as on this
  // machine) makes samba's waf and nodejs' configure pick a Python without Debian's modules.
  process.env.PATH = debianPath;
  const tools = await toolsFingerprint();
  const fresh: PackageResults[] = [];
  for (const pkg of opts.packages) fresh.push(await classifyPackage(pkg, opts, tools));
  const merged = mergeResults(await readPreviousResults(opts.outDir), fresh, corpusPackages, opts.view);
  const notRun = corpusPackages.filter((p) => !merged.some((m) => m.package === p)).map((p) => ({ package: p, why: 'not run yet with this view' }));
  return writeResults(opts.outDir, opts.view, tools, merged, notRun);
}

export function summaryLine(file: ResultsFile, outDir: string): string {
  const t = file.total.row;
  return `${t.units.all} units (${t.units.cve} CVE): ${t.code.all} change code, ${t.textOnly.all} text-only, ${t.kpatchable.all} kpatch-able (${t.confirmed.all} confirmed against the binary), ${t.liveWithNewData.all} live-patchable with new data, ${t.failed.all} failed → ${join(outDir, 'bookworm.md')}`;
}
