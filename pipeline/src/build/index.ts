import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Listr, type ListrTask } from 'listr2';
import { ExitCode, UserError } from '../cli/errors.ts';
import { cacheRoot } from '../paths.ts';
import { triagePatch, type Triage } from '../triage/index.ts';
import { linkMap } from '../wrapper/index.ts';
import { buildId, writeBundle } from '../bundle/index.ts';
import type { BundleReport, ObjectReport, Reason, Report } from '../report/types.ts';
import { chooseBuildCommand, type BuildCommand } from './command.ts';
import { describeTree, fetchPackage, type SourceTree } from './source.ts';
import { originalBuild, type OriginalBuild } from './original.ts';
import { applyPatch, patchedBuild, sweepWork, type PatchedBuild } from './patched.ts';
import { ensureCreateDiffObject } from './diffobj.ts';
import { judgeObjectPair } from './judge.ts';
import { classifyOutcome } from './classify.ts';
import { alive } from '../common/lock.ts';
import { copyTree, exists } from '../common/fs.ts';

export type { Report } from '../report/types.ts';
export { exitCodeFor } from '../report/types.ts';

export interface ClassifyOptions {
  /** The Debian source patch (unified diff, applied with patch -p1). */
  readonly patch: string;
  /** `NAME[=VERSION]`, fetched with apt-get source into the cache. One of package/source. */
  readonly package?: string;
  /** An unpacked tree (a Debian tree with its own patches applied). */
  readonly source?: string;
  /** Build command line (default: debian/rules build, or make). */
  readonly buildCmd?: string;
  /** Output folder for report.json (and bundles); null writes nothing. */
  readonly out?: string | null;
  /** Write bundles into `out` (build) or only classify (classify). Default true. */
  readonly bundles?: boolean;
  /** listr2 renderer: 'default' (terminal), 'simple' (logs), 'silent' (API, --json). */
  readonly renderer?: 'default' | 'simple' | 'silent';
  /** Cache root (default: cacheRoot from paths.ts). */
  readonly cache?: string;
}

interface Ctx {
  triage?: Triage;
  tree?: SourceTree;
  cmd?: BuildCommand;
  original?: OriginalBuild;
  patched?: PatchedBuild;
  objects: ObjectReport[];
  reasons: Reason[];
  notes: string[];
  bundles: BundleReport[];
  unbundled: string[];
  /** Patch objects per affected binary, for the bundle stage. */
  perBinary: Map<string, string[]>;
  scratch?: string;
  timings: Record<string, number>;
}


/** Default output folder: ./wfbuild-out/<patch name without .diff/.patch>. */
export function defaultOut(patch: string): string {
  return resolve('wfbuild-out', basename(patch).replace(/\.(diff|patch)$/, ''));
}

/**
 * From a Debian source patch to a classification (and bundles). The original build is cached
 * (cacheRoot/wfbuild/orig/<key>), so classifying many patches of one package builds it once.
 * Throws UserError for bad input (exit code inside); returns the report for every
 * classification, including "no compiled code changed".
 */
export async function classifyPatch(opts: ClassifyOptions): Promise<Report> {
  if ((opts.package === undefined) === (opts.source === undefined)) {
    throw new UserError('give exactly one of --package NAME[=VERSION] and --source DIR');
  }
  // Absolute: the compiler wrapper writes its records from whatever folder make is in.
  const cache = resolve(opts.cache ?? cacheRoot, 'wfbuild');
  const patchPath = resolve(opts.patch);
  const writeBundles = opts.bundles ?? true;
  const out = opts.out === undefined ? defaultOut(opts.patch) : opts.out === null ? null : resolve(opts.out);
  const ctx: Ctx = { objects: [], reasons: [], notes: [], bundles: [], unbundled: [], perBinary: new Map(), timings: {} };
  await sweepWork(join(cache, 'work'));

  const timed = (key: string, title: string, fn: ListrTask<Ctx>['task']): ListrTask<Ctx> => ({
    title,
    task: async (c, task) => {
      const start = performance.now();
      try {
        return await (fn as (c: Ctx, t: typeof task) => Promise<void>)(c, task);
      } finally {
        c.timings[key] = Math.round(performance.now() - start);
        task.title = `${task.title} (${(c.timings[key] / 1000).toFixed(1)} s)`;
      }
    },
  });
  const needsBuild = (c: Ctx): boolean => c.triage?.touchesCompiledCode === true;

  const tasks = new Listr<Ctx>(
    [
      timed('triage', 'triage: parse the patch and its DEP-3 header', async (c, task) => {
        const text = await readFile(patchPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
          throw new UserError(`${opts.patch}: cannot read (${e.code ?? e.message})`);
        });
        c.triage = triagePatch(text, patchPath);
        const kinds = [...new Set(c.triage.files.map((f) => f.kind))].join(', ');
        task.title = `triage: ${c.triage.files.length} file(s) (${kinds})${c.triage.cves.length ? `, ${c.triage.cves.join(' ')}` : ''}`;
      }),
      timed('source', 'source tree', async (c, task) => {
        c.tree = opts.package !== undefined ? await fetchPackage(opts.package, join(cache, 'sources')) : await describeTree(opts.source!);
        c.cmd = await chooseBuildCommand(c.tree, opts.buildCmd);
        // Apply check against the pristine tree before any build: a patch for another package
        // or version fails here, in seconds.
        const check = join(cache, 'work', `check-${process.pid}-${Date.now()}`);
        await mkdir(check, { recursive: true });
        try {
          // Only the touched files: patch needs nothing else, and a big tree is not copied twice.
          const files = c.triage!.files.filter((f) => f.change !== 'added').map((f) => f.path);
          for (const f of files) {
            if (await exists(join(c.tree.dir, f))) {
              await mkdir(dirname(join(check, f)), { recursive: true });
              await copyFile(join(c.tree.dir, f), join(check, f));
            }
          }
          await applyPatch(check, patchPath, c.triage!.name);
        } finally {
          await rm(check, { recursive: true, force: true });
        }
        const id = c.tree.package ? `${c.tree.package.name} ${c.tree.package.version}` : c.tree.dir;
        task.title = `source tree: ${id}; the patch applies`;
      }),
      timed('originalBuild', 'build the original through the compiler wrapper', async (c, task) => {
        if (!needsBuild(c)) return task.skip('no compiled code touched: nothing to build');
        c.original = await originalBuild(c.tree!, c.cmd!, join(cache, 'orig'), (line) => (task.output = line));
        const compiles = c.original.log.filter((e) => e.kind === 'compile').length;
        task.title = `original build ${c.original.cached ? 'from the cache' : 'built'}: ${compiles} objects (${c.cmd!.display})`;
      }),
      timed('patchedBuild', 'apply the patch and rebuild incrementally', async (c, task) => {
        if (!needsBuild(c)) return task.skip('no compiled code touched');
        c.patched = await patchedBuild(c.original!, c.cmd!, patchPath, c.triage!.name, join(cache, 'work'), c.tree!.debian);
        c.scratch = join(dirname(c.patched.tree), 'scratch');
        await mkdir(c.scratch, { recursive: true });
        const compiledSources = new Set(c.original!.log.flatMap((e) => (e.kind === 'compile' ? e.sources : [])));
        for (const f of c.triage!.files) {
          if ((f.kind === 'c-source' || f.kind === 'cxx-source' || f.kind === 'asm') && !compiledSources.has(f.path)) {
            c.notes.push(`${f.path}: not compiled by this build (${c.cmd!.display})`);
          }
        }
        for (const object of c.patched.unchanged) c.notes.push(`${object}: recompiled, identical bytes`);
        task.title = `patched build: ${c.patched.recompiled.length} recompiled, ${c.patched.candidates.length} changed`;
      }),
      timed('diff', 'create-diff-object on each changed object', async (c, task) => {
        if (!needsBuild(c) || c.patched!.candidates.length === 0) return task.skip('no changed objects');
        const map = linkMap(c.original!.log);
        const shipped = c.original!.shipped;
        const candidates = c.patched!.candidates;
        if (candidates.some((cand) => cand.hasOriginal)) await ensureCreateDiffObject();
        for (const cand of candidates) {
          const all = map.get(cand.object) ?? linkMap(c.patched!.log).get(cand.object) ?? [];
          const binaries = shipped === null ? all : all.filter((b) => b in shipped);
          const skipped = all.filter((b) => !binaries.includes(b));
          if (skipped.length) c.notes.push(`${cand.object}: linked into ${skipped.join(', ')}, which the package does not install: not a target`);
          if (all.length === 0) {
            // Not a silent "nothing to do": the change is real, we just cannot place it.
            c.reasons.push({ object: cand.object, kind: 'unmapped', symbol: null, what: 'changed, but the build log links it into no file (an archive or link step the wrapper did not see?)' });
            c.objects.push({ object: cand.object, source: cand.source, binaries: [], verdicts: [{ binary: '', outcome: 'unmapped', exitCode: null, verdict: null }] });
            continue;
          }
          if (binaries.length === 0) continue;
          const judged = await judgeObjectPair({
            object: cand.object,
            source: cand.source,
            original: cand.hasOriginal ? join(c.original!.tree, cand.object) : null,
            patched: join(c.patched!.tree, cand.object),
            sourceExisted: await exists(join(c.original!.tree, cand.source)),
            targets: binaries.map((binary) => ({ name: binary, path: join(c.original!.tree, binary) })),
            scratch: c.scratch!,
            onProgress: (line) => (task.output = line),
          });
          c.reasons.push(...judged.reasons);
          c.notes.push(...judged.notes);
          for (const [binary, patch] of judged.patches) c.perBinary.set(binary, [...(c.perBinary.get(binary) ?? []), patch]);
          c.objects.push(judged.report);
        }
        task.title = `create-diff-object: ${c.objects.length} object(s)`;
      }),
      timed('bundle', writeBundles ? 'bundle per affected binary (ld -r + .wfpatch.meta)' : 'link a bundle per affected binary (checked, not written)', async (c, task) => {
        const affected = new Set(c.objects.flatMap((o) => o.verdicts.filter((v) => v.outcome !== 'nothing' && v.binary !== '').map((v) => v.binary)));
        if (affected.size === 0) return task.skip('no affected binary');
        const blocked = c.objects.some((o) => (o.layoutChanges?.length ?? 0) > 0 || o.verdicts.some((v) => v.outcome !== 'patch' && v.outcome !== 'nothing'));
        for (const binary of affected) {
          const patches = c.perBinary.get(binary) ?? [];
          if (blocked || patches.length === 0) {
            c.unbundled.push(binary);
            continue;
          }
          const installedPath = c.original!.shipped?.[binary] ?? null;
          const id = await buildId(join(c.original!.tree, binary));
          const file = `${basename(binary)}.wfp`;
          const result = await writeBundle(
            patches,
            { format: 1, patch: c.triage!.name, sha256: c.triage!.sha256, cves: c.triage!.cves, target: { path: installedPath ?? binary, buildId: id } },
            join(c.scratch!, file),
            c.scratch!,
          );
          if (!result.ok) {
            c.unbundled.push(binary);
            c.reasons.push({ object: null, kind: 'bundle', symbol: null, what: `bundle for ${binary} does not link: ${result.error}` });
            continue;
          }
          c.bundles.push({ binary, installedPath, originalPath: join(c.original!.tree, binary), buildId: id, file: writeBundles ? file : null, sha256: result.sha256, objects: c.objects.filter((o) => o.binaries.includes(binary)).map((o) => o.object) });
        }
        task.title = `bundles: ${c.bundles.length} of ${affected.size} binaries`;
      }),
    ],
    {
      renderer: opts.renderer ?? 'default',
      fallbackRenderer: 'simple',
      exitOnError: true,
      rendererOptions: { collapseSubtasks: false },
    } as ConstructorParameters<typeof Listr<Ctx>>[1],
  );

  try {
    await tasks.run(ctx);
    const t = ctx.triage!;
    const cls = classifyOutcome({ touchesCompiledCode: t.touchesCompiledCode, objects: ctx.objects, reasons: ctx.reasons, unbundled: ctx.unbundled });
    if (!t.touchesCompiledCode) ctx.notes.push(`only ${[...new Set(t.files.map((f) => f.kind))].join(', ')} files change: nothing to build`);
    const report: Report = {
      format: 1,
      patch: {
        name: t.name,
        path: patchPath,
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
      cves: t.cves,
      files: t.files,
      outcome: cls.outcome,
      textOnly: cls.textOnly,
      kpatchable: cls.kpatchable,
      reasons: cls.outcome === 'no-compiled-code' ? [] : ctx.reasons,
      notes: [...new Set(ctx.notes)],
      objects: ctx.objects,
      bundles: cls.outcome === 'kpatchable' ? ctx.bundles : [],
      originalBuild: ctx.original ? { key: ctx.original.key, cached: ctx.original.cached } : null,
      timings: ctx.timings,
    };
    if (out !== null) await writeOut(out, report, writeBundles ? ctx.scratch ?? null : null);
    return report;
  } finally {
    await ctx.patched?.cleanup();
  }
}

/** Writes report.json and the bundles into a temporary sibling of `out`, then renames it into place. */
async function writeOut(out: string, report: Report, scratch: string | null): Promise<void> {
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
