import { dirname, join } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { describeTree, fetchPackage } from '../common/debian-source.ts';
import { chooseBuildCommand } from './build-command.ts';
import { explainReject, patchApplies } from './apply-patch.ts';
import { resolveEarlierPatches, treeWithEarlierPatches } from './after-patches.ts';
import type { SourceTree, Stage } from './context.ts';
import { enabledOriginal } from '../enable/original.ts';

export type { SourceTree } from './context.ts';
export { debianIdentity, describeTree, fetchPackage, parsePackageSpec } from '../common/debian-source.ts';

/**
 * Stage 2, source tree: fetch (apt-get source) or describe the tree, choose the build command,
 * and check that the patch applies — before any build, so a patch for another package or
 * version fails in seconds.
 */
export const sourceStage: Stage = {
  key: 'source',
  title: () => 'source tree',
  async run(ctx, task) {
    const { options, cache, patchPath } = ctx.input;
    const fetched = options.package !== undefined ? await fetchPackage(options.package, join(cache, 'sources')) : await describeTree(options.source!);
    // Build dependencies come from what was fetched or given, not from the prepared copy.
    if (fetched.debian) ctx.buildDepsFrom = fetched.package && options.package !== undefined ? `${fetched.package.name}=${fetched.package.version}` : fetched.dir;
    ctx.after = await resolveEarlierPatches(options.after ?? []);
    // --enabled: the tree and the original build are wfbuild enable's (cached, or built now).
    const enabled = options.enabled ? await enabledOriginal(options.package!, patchPath, { cacheRoot: dirname(cache), onOutput: (line) => (task.output = line) }) : null;
    const tree = enabled ? enabled.tree : ctx.after.length > 0 ? await treeWithEarlierPatches(fetched, ctx.after, join(cache, 'based')) : fetched;
    ctx.tree = tree;
    ctx.cmd = enabled ? enabled.cmd : await chooseBuildCommand(tree, options.buildCmd);
    if (enabled) ctx.original = enabled.original;
    const check = await patchApplies(tree.dir, patchPath, join(cache, 'work'));
    if (!check.ok) {
      const hint = ctx.after.length === 0 ? '\n(if it is written on top of earlier fixes of the same update, name them with --after P1.patch,P2.patch or a series file)' : '';
      throw new UserError(`${explainReject(check.output, ctx.triage!.name)}${hint}`, ExitCode.usage);
    }
    const id = tree.package ? `${tree.package.name} ${tree.package.version}` : tree.dir;
    const after = ctx.after.length > 0 ? ` after ${ctx.after.map((p) => p.name).join(', ')}` : '';
    task.title = `source tree: ${id}${after}; the patch applies`;
  },
};
