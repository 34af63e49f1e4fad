import { delimiter, join } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';

/** A tool or file the kernel build or the guest harness needs, and the Debian package that has it. */
export interface Prerequisite {
  readonly what: string;
  /** An absolute path that must exist, or a command name looked up in PATH. */
  readonly path: string;
  readonly debianPackage: string;
}


/** Resolves a command name through PATH (like `command -v`), or undefined. */
export async function whichCommand(name: string): Promise<string | undefined> {
  if (name.includes('/')) return (await exists(name)) ? name : undefined;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (dir && (await exists(join(dir, name)))) return join(dir, name);
  }
  return undefined;
}

/**
 * Fails with one message listing every missing prerequisite, the Debian packages that
 * provide them and the command that installs them (exit 13).
 */
export async function requirePrerequisites(list: readonly Prerequisite[]): Promise<void> {
  const missing: Prerequisite[] = [];
  for (const p of list) {
    const found = p.path.startsWith('/') ? await exists(p.path) : (await whichCommand(p.path)) !== undefined;
    if (!found) missing.push(p);
  }
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((p) => p.debianPackage))];
  const lines = missing.map((p) => `  ${p.what} (${p.path}) from Debian package ${p.debianPackage}`);
  throw new UserError(
    `missing prerequisites:\n${lines.join('\n')}\ninstall with: apt-get install -y ${packages.join(' ')}  (or run: npm run setup)`,
    ExitCode.missingPrerequisite,
  );
}

export const linuxSourceTarball = '/usr/src/linux-source-6.1.tar.xz';
export const linuxSourcePackage = 'linux-source-6.1';

export const kernelBuildPrerequisites: readonly Prerequisite[] = [
  { what: "Debian's Linux 6.1 source", path: linuxSourceTarball, debianPackage: linuxSourcePackage },
  { what: 'xz', path: 'xz', debianPackage: 'xz-utils' },
  { what: 'make', path: 'make', debianPackage: 'build-essential' },
  { what: 'gcc', path: 'gcc', debianPackage: 'build-essential' },
  { what: 'patch', path: 'patch', debianPackage: 'patch' },
  { what: 'flex', path: 'flex', debianPackage: 'flex' },
  { what: 'bison', path: 'bison', debianPackage: 'bison' },
  { what: 'bc', path: 'bc', debianPackage: 'bc' },
  { what: 'libelf headers (objtool)', path: '/usr/include/libelf.h', debianPackage: 'libelf-dev' },
  { what: 'OpenSSL headers', path: '/usr/include/openssl/ssl.h', debianPackage: 'libssl-dev' },
];
