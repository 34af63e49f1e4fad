/**
 * Stage 6, bundle: per affected binary, its patch objects linked into one bundle (src/bundle/:
 * ld -r + .wfpatch.meta). No bundle where any object blocks it (a data or layout change, an
 * error, a new or unplaceable object); `classify` links them only to know they link.
 */
import { basename, join } from 'node:path';
import { buildId, writeBundle } from '../bundle/index.ts';
import type { Stage, StageContext } from './context.ts';
import { originalBinary } from './binaries.ts';
import { libraryDir } from './library-dir.ts';
import { loopReasons, quiescenceLoops } from '../enable/loops.ts';
import type { Reason } from '../report/types.ts';

/**
 * Whether no bundle can be made for `binary`: an object linked into it changes a data layout
 * or has no patch for it, or a changed object lands in no binary at all. A utility the patch
 * cannot patch (exim4's exim_dumpdb, sharing dbfn.o with the daemon) does not block the
 * daemon's bundle: verdicts are per binary.
 */
export function blockedFor(ctx: Pick<StageContext, 'objects'>, binary: string): boolean {
  return ctx.objects.some(
    (o) =>
      (o.binaries.includes(binary) && (o.layoutChanges?.length ?? 0) > 0) ||
      o.verdicts.some((v) => (v.binary === binary || v.binary === '') && v.outcome !== 'patch' && v.outcome !== 'nothing'),
  );
}

/**
 * Bundle file names: the binary's name, or — when two affected binaries share it (openssh's
 * debian/build-deb/ssh and debian/build-udeb/ssh, exim4's light and heavy daemons) — its
 * tree-relative path with '/' as '_', so no bundle overwrites another in --out.
 */
export function bundleFileNames(binaries: readonly string[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const b of binaries) count.set(basename(b), (count.get(basename(b)) ?? 0) + 1);
  return new Map(binaries.map((b) => [b, `${count.get(basename(b))! > 1 ? b.replace(/^\/+/, '').replace(/\//g, '_') : basename(b)}.wfp`]));
}

async function bundleFor(ctx: StageContext, binary: string, patches: readonly string[], file: string): Promise<void> {
  const original = ctx.original!;
  const triage = ctx.triage!;
  const installedPath = original.shipped?.[binary] ?? null;
  const originalPath = await originalBinary(original, binary);
  const id = await buildId(originalPath);
  const meta = { format: 1, patch: triage.name, sha256: triage.sha256, cves: triage.cves, target: { path: installedPath ?? binary, buildId: id } } as const;
  const result = await writeBundle([...patches], meta, join(ctx.scratch!, file), ctx.scratch!);
  if (!result.ok) {
    ctx.unbundled.push(binary);
    ctx.reasons.push({ object: null, kind: 'bundle', symbol: null, what: `bundle for ${binary} does not link: ${result.error}` });
    return;
  }
  const objects = ctx.objects.filter((o) => o.binaries.includes(binary)).map((o) => o.object);
  ctx.bundles.push({ binary, installedPath, originalPath, libraryDir: await libraryDir(original.linked), buildId: id, file: ctx.input.writeBundles ? file : null, sha256: result.sha256, objects });
}

export const bundleStage: Stage = {
  key: 'bundle',
  title: (input) => (input.writeBundles ? 'bundle per affected binary (ld -r + .wfpatch.meta)' : 'link a bundle per affected binary (checked, not written)'),
  async run(ctx, task) {
    const affected = new Set(ctx.objects.flatMap((o) => o.verdicts.filter((v) => v.outcome !== 'nothing' && v.binary !== '').map((v) => v.binary)));
    if (affected.size === 0) return task.skip('no affected binary');
    // Against a running enabled build: no bundle that replaces a loop a thread never leaves (enable/loops.ts).
    const loops = ctx.input.options.enabled && ctx.tree?.package ? await quiescenceLoops(ctx.tree.package.name) : null;
    const refused = loops ? loopReasons(ctx.objects, loops) : new Map<string, Reason[]>();
    for (const reasons of refused.values()) ctx.reasons.push(...reasons);
    const files = bundleFileNames([...affected]);
    for (const binary of affected) {
      const patches = ctx.perBinary.get(binary) ?? [];
      if (blockedFor(ctx, binary) || patches.length === 0 || refused.has(binary)) ctx.unbundled.push(binary);
      else await bundleFor(ctx, binary, patches, files.get(binary)!);
    }
    task.title = `bundles: ${ctx.bundles.length} of ${affected.size} binaries`;
  },
};
