/**
 * Stage 5, object diff: each changed object is placed (the link map follows it into the
 * binaries the package installs) and judged against each of them (judge.ts).
 */
import { basename, join } from 'node:path';
import { exists } from '../common/fs.ts';
import { linkMap } from '../wrapper/index.ts';
import { ensureCreateDiffObject } from './create-diff-object.ts';
import { needsBuild, type Candidate, type Stage, type StageContext } from './context.ts';
import type { ObjectPair } from './judge.ts';
import { crossObjectNotes, judgeFirst, resolveAcrossObjects, type Judged } from './cross-object.ts';
import { loadingPrograms } from './loaded-by.ts';
import { originalBinary } from './binaries.ts';
import { libraryDir } from './library-dir.ts';
import { holdsUnit } from './members.ts';
import { memberFinder } from './carry.ts';

/** Places one candidate; null when it is no target (notes and reasons say why). */
async function placeCandidate(ctx: StageContext, cand: Candidate, links: ReadonlyMap<string, readonly string[]>, onProgress: (line: string) => void): Promise<ObjectPair | null> {
  const original = ctx.original!;
  const patched = ctx.patched!;
  const all = links.get(cand.object) ?? linkMap(patched.log).get(cand.object) ?? [];
  const installed = original.shipped === null ? all : all.filter((b) => b in original.shipped!);
  const skipped = all.filter((b) => !installed.includes(b));
  if (skipped.length) ctx.notes.push(`${cand.object}: linked into ${skipped.join(', ')}, which the package does not install: not a target`);
  const binaries: string[] = [];
  for (const binary of installed) {
    if ((await holdsUnit(await originalBinary(original, binary), cand.source)) === false) {
      ctx.notes.push(`${cand.object}: not in ${binary}, whose symbol table names no unit ${basename(cand.source)} (an archive member its link did not pull in): not a target`);
    } else binaries.push(binary);
  }
  if (all.length === 0) {
    // Not a silent "nothing to do": the change is real, we just cannot place it.
    ctx.reasons.push({ object: cand.object, kind: 'unmapped', symbol: null, what: 'changed, but the build log links it into no file (an archive or link step the wrapper did not see?)' });
    ctx.objects.push({ object: cand.object, source: cand.source, binaries: [], verdicts: [{ binary: '', outcome: 'unmapped', exitCode: null, verdict: null }] });
    return null;
  }
  if (binaries.length === 0) return null;
  return {
    object: cand.object,
    source: cand.source,
    original: cand.hasOriginal ? join(original.tree, cand.object) : null,
    patched: join(patched.tree, cand.object),
    sourceExisted: await exists(join(original.tree, cand.source)),
    targets: await Promise.all(
      binaries.map(async (binary) => ({
        name: binary,
        path: await originalBinary(original, binary),
        loadedBy: await Promise.all(loadingPrograms(ctx.input.options.loaders, binary).map((p) => originalBinary(original, p))),
        libraryDir: await libraryDir(original.linked),
      })),
    ),
    scratch: ctx.scratch!,
    onProgress,
    members: (target) => (target.path === null ? null : memberFinder({ log: original.log, tree: patched.tree, binary: target.name, binaryPath: target.path })),
  };
}

export const objectDiffStage: Stage = {
  key: 'diff',
  title: () => 'create-diff-object on each changed object',
  async run(ctx, task) {
    if (!needsBuild(ctx) || ctx.patched!.candidates.length === 0) return task.skip('no changed objects');
    const candidates = ctx.patched!.candidates;
    if (candidates.some((cand) => cand.hasOriginal)) await ensureCreateDiffObject();
    const links = linkMap(ctx.original!.log);
    const onProgress = (line: string): void => {
      task.output = line;
    };
    const all: Judged[] = [];
    for (const cand of candidates) {
      const pair = await placeCandidate(ctx, cand, links, onProgress);
      if (pair) all.push(await judgeFirst(pair));
    }
    await resolveAcrossObjects(all);
    for (const j of all) {
      const { judged } = j;
      ctx.reasons.push(...judged.reasons);
      ctx.notes.push(...judged.notes, ...crossObjectNotes(j));
      for (const [binary, patch] of judged.patches) ctx.perBinary.set(binary, [...(ctx.perBinary.get(binary) ?? []), patch]);
      ctx.objects.push(judged.report);
    }
    task.title = `create-diff-object: ${ctx.objects.length} object(s)`;
  },
};
