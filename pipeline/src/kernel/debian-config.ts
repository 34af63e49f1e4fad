import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import type { Prerequisite } from './prerequisites.ts';

/** Debian's amd64 kernel configuration, from the linux-config-6.1 package (same version as linux-source-6.1). */
export const debianConfigFile = '/usr/src/linux-config-6.1/config.amd64_none_amd64.xz';
export const debianConfigPrerequisite: Prerequisite = {
  what: "Debian's amd64 kernel configuration",
  path: debianConfigFile,
  debianPackage: 'linux-config-6.1',
};

/** The decompressed Debian configuration. */
export async function readDebianConfig(file: string = debianConfigFile): Promise<string> {
  if (!(await exists(file))) throw new UserError(`${file} is missing (apt-get install linux-config-6.1)`);
  return (await execa('xz', ['-dc', file], { stripFinalNewline: false })).stdout;
}

/**
 * Debian's configuration without modules: every `=m` becomes "is not set" and CONFIG_MODULES
 * is turned off. (Turning off MODULES alone would not do: Kconfig promotes m to y when
 * modules are off, which would build every driver in.) What the guest needs built in is
 * then set =y by debian.config.
 */
export function withoutModules(config: string): string {
  return config
    .split('\n')
    .map((line) => {
      const m = /^(CONFIG_[A-Za-z0-9_]+)=m$/.exec(line);
      if (m) return `# ${m[1]} is not set`;
      if (line === 'CONFIG_MODULES=y') return '# CONFIG_MODULES is not set';
      return line;
    })
    .join('\n');
}
