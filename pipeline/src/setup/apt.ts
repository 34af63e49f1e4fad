import { readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { UserError, ExitCode } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { tail } from '../common/text.ts';

const aptEnv = { DEBIAN_FRONTEND: 'noninteractive' };
const mainSources = '/etc/apt/sources.list.d/debian.sources';
const srcSources = '/etc/apt/sources.list.d/wfpatch-src.sources';

/** Names of the given packages that dpkg does not report as installed. */
export async function missingPackages(names: readonly string[]): Promise<string[]> {
  const result = await execa('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\n', ...names], {
    reject: false,
  });
  const installed = new Set(
    result.stdout
      .split('\n')
      .filter((line) => line.endsWith(' installed'))
      .map((line) => line.split(' ')[0]),
  );
  return names.filter((name) => !installed.has(name));
}

/**
 * Derives deb-src stanzas from the deb822 sources file: same mirrors and suites,
 * so `apt-get source` sees the versions the binary packages come from.
 */
export function debSrcStanzas(deb822: string): string {
  return deb822
    .split(/\n\s*\n/)
    .filter((stanza) => /^Types:.*\bdeb\b/m.test(stanza))
    .map((stanza) => stanza.replace(/^Types:.*$/m, 'Types: deb-src').trim())
    .join('\n\n') + '\n';
}


async function hasDebSrc(): Promise<boolean> {
  const result = await execa('sh', ['-c', 'grep -rhsE "^(Types:.*deb-src|deb-src )" /etc/apt/sources.list /etc/apt/sources.list.d/'], {
    reject: false,
  });
  return result.stdout.trim().length > 0;
}

/** Adds deb-src entries when there are none; returns whether it changed anything. */
export async function ensureDebSrc(): Promise<boolean> {
  if (await hasDebSrc()) return false;
  if (!(await exists(mainSources))) {
    throw new UserError(
      `no deb-src entries and no ${mainSources} to derive them from; add deb-src lines for bookworm, bookworm-updates and bookworm-security`,
      ExitCode.missingPrerequisite,
    );
  }
  await writeFile(srcSources, debSrcStanzas(await readFile(mainSources, 'utf8')));
  return true;
}

export async function aptUpdate(): Promise<void> {
  const result = await execa('apt-get', ['update', '-q'], { env: aptEnv, reject: false, all: true });
  if (result.exitCode !== 0 || /^(W|E): Failed to fetch/m.test(result.all ?? '')) {
    throw new UserError(
      `apt-get update failed; is Debian's package registry reachable?\n${tail(result.all ?? '', 10)}`,
      ExitCode.missingPrerequisite,
    );
  }
}

export async function aptInstall(names: readonly string[]): Promise<void> {
  const result = await execa('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...names], {
    env: aptEnv,
    reject: false,
    all: true,
  });
  if (result.exitCode !== 0) {
    throw new UserError(`apt-get install ${names.join(' ')} failed:\n${tail(result.all ?? '', 15)}`, ExitCode.missingPrerequisite);
  }
}
