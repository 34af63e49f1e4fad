import { join } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { tail } from '../common/text.ts';
import { cacheRoot } from '../paths.ts';
import type { BuildCommand, SourceTree } from './context.ts';
import { buildProcessEnv, cleanBuildEnv } from './build-env.ts';
import { keepFailedBuild, tellingLines } from './build-failure.ts';

import { exists } from '../common/fs.ts';

export type { BuildCommand } from './context.ts';

/** Debian's own build without tests; nostrip so the binaries keep .symtab for create-diff-object. */
export const debBuildOptions = 'nocheck nostrip parallel=2';

/**
 * The build command: the user's (`--build-cmd`, run by sh -c: it is a command line the user
 * wrote), else `debian/rules build-arch` for a Debian tree — live patches concern the
 * architecture-dependent binaries only, and `build` would also build the documentation, with
 * generators (sphinx, asciidoctor, …) that need more build dependencies and can fail — else make
 * (after ./configure when the tree has only a configure script). A tree with none of these has
 * no build system we know. Every command runs in the clean environment of build-env.ts.
 */
export async function chooseBuildCommand(tree: SourceTree, userCommand: string | undefined): Promise<BuildCommand> {
  const env: Record<string, string> = cleanBuildEnv({ DEB_BUILD_OPTIONS: debBuildOptions });
  if (userCommand !== undefined) {
    if (userCommand.trim() === '') throw new UserError('--build-cmd: empty command');
    return { display: userCommand, argv: ['sh', '-c', userCommand], env };
  }
  if (tree.debian) return { display: 'debian/rules build-arch', argv: ['debian/rules', 'build-arch'], env };
  for (const makefile of ['GNUmakefile', 'makefile', 'Makefile']) {
    if (await exists(join(tree.dir, makefile))) return { display: 'make -j2', argv: ['make', '-j2'], env };
  }
  if (await exists(join(tree.dir, 'configure'))) {
    return { display: './configure && make -j2', argv: ['sh', '-c', './configure && make -j2'], env };
  }
  throw new UserError(
    `${tree.dir}: no build system found (no debian/rules, Makefile or configure); pass --build-cmd`,
    ExitCode.usage,
  );
}

/** Which build failed: the corpus tries another base tree when the original does not build. */
export type BuildStep = 'original' | 'patched' | 'other';

/**
 * A build that exited non-zero (exit code 12): the message has the telling error lines, where
 * the whole log was kept, and the output's last lines.
 */
export class BuildFailed extends UserError {
  constructor(message: string, readonly step: BuildStep, readonly logDir: string | null = null) {
    super(message, ExitCode.buildFailed);
    this.name = 'BuildFailed';
  }
}

let canBind: Promise<boolean> | null = null;

/** Whether this process may bind-mount in a private mount namespace (root, unshare(1)). */
export function bindMountAvailable(): Promise<boolean> {
  canBind ??= execa('unshare', ['-m', '--propagation', 'private', 'true'], { reject: false }).then((r) => r.exitCode === 0, () => false);
  return canBind;
}

/**
 * Runs the build in `cwd` under `nice` (the machine is shared); throws BuildFailed on failure.
 * With `at`, the tree in `cwd` is bind-mounted over the path `at` in a private mount namespace
 * and built there: the build sees the original's path, so absolute paths a configure step or
 * CMake stored (CMakeCache.txt refuses another folder) stay valid, and nobody else sees the mount.
 */
export async function runBuild(
  cmd: BuildCommand,
  cwd: string,
  env: Record<string, string>,
  what: string,
  at?: string,
  step: BuildStep = 'other',
  failedLogs: string = join(cacheRoot, 'wfbuild', 'failed'),
): Promise<string> {
  const argv = ['nice', '-n', '10', ...cmd.argv];
  // The paths are positional parameters of a constant script, never spliced into it.
  const bound = at === undefined ? argv : ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$@"', 'sh', cwd, at, ...argv];
  const result = await execa(bound[0], bound.slice(1), {
    cwd,
    // Nothing of the caller's environment: only the clean one (a command that brings its own
    // variables, such as enable's dpkg-buildpackage, gets the clean defaults under them) and the wrapper's.
    env: buildProcessEnv({ ...cleanBuildEnv(), ...cmd.env }, env),
    extendEnv: false,
    reject: false,
    all: true,
    stdin: 'ignore',
  });
  if (result.exitCode !== 0) {
    const output = result.all ?? '';
    const stamp = `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${step}`;
    const kept = await keepFailedBuild(join(failedLogs, stamp), cwd, output).catch(() => null);
    const telling = tellingLines(output, kept?.configLogs ?? []);
    const parts = [
      `${what} failed (${cmd.display}, exit ${result.exitCode ?? result.signal}):`,
      ...(telling.length > 0 ? ['the error:', ...telling.map((l) => `  ${l}`)] : []),
      ...(kept ? [`full log: ${join(kept.dir, 'build.log')}${kept.configLogs.length > 0 ? ' (and the config.log files beside it)' : ''}`] : []),
      'last lines:',
      tail(output, telling.length > 0 ? 10 : 25),
    ];
    throw new BuildFailed(parts.join('\n'), step, kept?.dir ?? null);
  }
  return result.all ?? '';
}
