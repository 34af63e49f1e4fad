import { parseArgs } from 'node:util';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { Listr } from 'listr2';
import { execa } from 'execa';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { requiredPackages, buildDependencyPackages } from './packages.ts';
import { aptInstall, aptUpdate, ensureDebSrc, missingPackages } from './apt.ts';
import { tail } from '../common/text.ts';
import { repoRoot } from '../paths.ts';

const stateDir = '/var/lib/wfpatch';

interface SetupContext {
  missing: string[];
  aptUpdated: boolean;
}

const help = `Usage: wfbuild setup [--skip-native]

Installs, idempotently, everything wfpatch needs on Debian 12 (run as root):
  - deb-src entries for apt-get source (derived from the existing deb entries)
  - Debian packages: ${requiredPackages.map((p) => p.name).join(', ')}
  - build dependencies of the corpus packages built in tests (${buildDependencyPackages.join(', ')})
  - native builds: make -C kpatch-fork (create-diff-object, libwfpatch)
A second run only checks. 'npm run setup' also runs npm ci first.`;

async function ensureAptUpdated(ctx: SetupContext): Promise<void> {
  if (ctx.aptUpdated) return;
  await aptUpdate();
  ctx.aptUpdated = true;
}

async function fileExists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

export const setupCommand: Command = {
  name: 'setup',
  summary: 'install Debian packages, deb-src entries and native builds (idempotent, root)',
  help,
  async run(args) {
    const { values } = parseArgs({ args, options: { 'skip-native': { type: 'boolean' } }, strict: true });
    if (process.getuid?.() !== 0) {
      throw new UserError('run as root: set-up installs Debian packages with apt-get', ExitCode.missingPrerequisite);
    }
    const tasks = new Listr<SetupContext>(
      [
        {
          title: 'deb-src entries (apt-get source fetches Debian packages to patch)',
          task: async (ctx, task) => {
            if (await ensureDebSrc()) {
              task.title = 'deb-src entries added';
              await ensureAptUpdated(ctx);
            } else task.title = 'deb-src entries present';
          },
        },
        {
          title: 'Debian packages',
          task: async (ctx, task) => {
            ctx.missing = await missingPackages(requiredPackages.map((p) => p.name));
            if (ctx.missing.length === 0) {
              task.title = `Debian packages: all ${requiredPackages.length} installed`;
              return;
            }
            for (const name of ctx.missing) {
              const why = requiredPackages.find((p) => p.name === name)?.why;
              task.output = `${name}: ${why}`;
            }
            task.title = `Debian packages: installing ${ctx.missing.join(', ')}`;
            await ensureAptUpdated(ctx);
            await aptInstall(ctx.missing);
          },
          rendererOptions: { persistentOutput: true },
        },
        {
          title: `build dependencies of ${buildDependencyPackages.join(', ')} (to build them before and after a patch)`,
          task: async (ctx, task) => {
            await mkdir(stateDir, { recursive: true });
            for (const pkg of buildDependencyPackages) {
              const stamp = `${stateDir}/build-dep-${pkg}`;
              if (await fileExists(stamp)) continue;
              await ensureAptUpdated(ctx);
              const result = await execa('apt-get', ['build-dep', '-y', '-q', pkg], {
                env: { DEBIAN_FRONTEND: 'noninteractive' },
                reject: false,
                all: true,
              });
              if (result.exitCode !== 0) {
                throw new UserError(`apt-get build-dep ${pkg} failed:\n${tail(result.all ?? '', 10)}`, ExitCode.missingPrerequisite);
              }
              await writeFile(stamp, new Date().toISOString() + '\n');
            }
            task.title = `build dependencies of ${buildDependencyPackages.join(', ')} installed`;
          },
        },
        {
          title: 'native builds (make -C kpatch-fork)',
          skip: () => values['skip-native'] === true,
          task: async (_ctx, task) => {
            if (!(await fileExists(`${repoRoot}/kpatch-fork/Makefile`))) {
              task.skip('kpatch-fork has no Makefile yet');
              return;
            }
            const result = await execa('make', ['-C', `${repoRoot}/kpatch-fork`, `-j${2}`], { reject: false, all: true });
            if (result.exitCode !== 0) {
              throw new UserError(`make -C kpatch-fork failed:\n${tail(result.all ?? '', 20)}`, ExitCode.buildFailed);
            }
          },
        },
      ],
      { renderer: 'default', fallbackRenderer: 'simple', exitOnError: true },
    );
    await tasks.run({ missing: [], aptUpdated: false });
    return ExitCode.ok;
  },
};
