import { ensureBuildDeps } from '../common/build-deps.ts';
import { needsBuild, type Stage } from './context.ts';

/**
 * Stage 3a, build dependencies (Debian trees): dpkg-checkbuilddeps, then — as root —
 * `apt-get build-dep` of the exact version (--package) or of the tree (--source); otherwise
 * exit 13 naming what is missing. Before the original build, so a missing -dev package is
 * never a configure error (or a silently smaller binary) later.
 */
export const buildDepsStage: Stage = {
  key: 'buildDeps',
  title: () => 'build dependencies',
  async run(ctx, task) {
    if (!needsBuild(ctx)) return task.skip('no compiled code touched: nothing to build');
    const tree = ctx.tree!;
    if (!tree.debian || ctx.buildDepsFrom === undefined) return task.skip('not a Debian tree: no declared build dependencies');
    const label = tree.package ? `${tree.package.name} ${tree.package.version}` : tree.dir;
    const missing = await ensureBuildDeps({ tree: tree.dir, installFrom: ctx.buildDepsFrom, label, log: (line) => (task.output = line) });
    task.title = missing.depends.length > 0 ? `build dependencies installed: ${missing.depends.join(' ')}` : 'build dependencies: all installed';
  },
};
