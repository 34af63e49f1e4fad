/**
 * Stage 7, report: the classification (classify.ts) and report.json, written with the bundles
 * into `--out` whole or not at all.
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { copyTree } from '../common/fs.ts';
import { alive } from '../common/lock.ts';
import type { Report } from '../report/types.ts';
import { classifyOutcome } from './classify.ts';
import type { StageContext } from './context.ts';

/** Default output folder: ./wfbuild-out/<patch name without .diff/.patch>. */
export function defaultOut(patch: string): string {
  return resolve('wfbuild-out', basename(patch).replace(/\.(diff|patch)$/, ''));
}

/** report.json (format 1, pipeline/README.md) out of what the stages found. */
export function assembleReport(ctx: StageContext): Report {
  const t = ctx.triage!;
  const cls = classifyOutcome({ touchesCompiledCode: t.touchesCompiledCode, objects: ctx.objects, reasons: ctx.reasons, unbundled: ctx.unbundled });
  const notes = t.touchesCompiledCode ? ctx.notes : [...ctx.notes, `only ${[...new Set(t.files.map((f) => f.kind))].join(', ')} files change: nothing to build`];
  return {
    format: 1,
    patch: {
      name: t.name,
      path: ctx.input.patchPath,
      sha256: t.sha256,
      description: t.header.description,
      longDescription: t.header.longDescription,
      origin: t.header.origin,
      bugs: t.header.bugs,
      bugDebian: t.header.bugDebian,
      forwarded: t.header.forwarded,
      author: t.header.author,
    },
    package: ctx.tree?.package ?? null,
    source: ctx.tree?.dir ?? null,
    buildCommand: ctx.cmd?.display ?? null,
    after: ctx.after ?? [],
    build: ctx.cmd ? { argv: ctx.cmd.argv, env: ctx.cmd.env } : null,
    cves: t.cves,
    files: t.files,
    outcome: cls.outcome,
    textOnly: cls.textOnly,
    kpatchable: cls.kpatchable,
    reasons: cls.outcome === 'no-compiled-code' ? [] : ctx.reasons,
    notes: [...new Set(notes)],
    objects: ctx.objects,
    ignored: ctx.ignored,
    // Per binary: a daemon's bundle stands when only a utility sharing its objects cannot be
    // patched (the outcome then says not kpatch-able, and live fixes refuse it as a whole).
    bundles: cls.outcome === 'kpatchable' || cls.outcome === 'not-kpatchable' ? ctx.bundles : [],
    originalBuild: ctx.original ? { key: ctx.original.key, cached: ctx.original.cached } : null,
    patchedBuild: ctx.patched
      ? { how: ctx.patched.how, recompiled: ctx.patched.recompiled.length, differing: ctx.patched.candidates.length + ctx.ignored.length, changed: ctx.patched.candidates.length }
      : null,
    timings: ctx.timings,
  };
}

/** Writes report.json and the bundles into a temporary sibling of `out`, then renames it into place. */
export async function writeOut(out: string, report: Report, scratch: string | null): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  const temp = `${out}.tmp-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  // A killed run's temporary folder (never the output itself) is removed.
  for (const name of await readdir(dirname(out))) {
    const pid = name.startsWith(`${basename(out)}.tmp-`) ? Number(name.slice(basename(out).length + 5)) : 0;
    if (pid > 0 && !alive(pid)) await rm(join(dirname(out), name), { recursive: true, force: true });
  }
  await mkdir(temp);
  try {
    for (const bundle of report.bundles) {
      if (bundle.file && scratch) await copyTree(join(scratch, bundle.file), join(temp, bundle.file));
    }
    await writeFile(join(temp, 'report.json'), JSON.stringify(report, null, 2) + '\n');
    await rm(out, { recursive: true, force: true });
    await rename(temp, out);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new UserError(`writing ${out} failed: ${(error as Error).message}`, ExitCode.internal);
  }
}
