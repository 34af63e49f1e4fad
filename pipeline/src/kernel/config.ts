import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { sha256 } from './series.ts';

export type KernelVariant = 'debug' | 'bench' | 'debian' | 'debian-modules';
export const kernelVariants: readonly KernelVariant[] = ['debug', 'bench', 'debian', 'debian-modules'];

/**
 * Variants merged on Debian's amd64 configuration instead of tinyconfig + base.config:
 * 'debian' without modules (the harness's guest), 'debian-modules' with Debian's modules
 * (a package for a real machine, whose disk and file-system drivers Debian builds as modules).
 */
export function isDebianBased(variant: KernelVariant): boolean {
  return variant === 'debian' || variant === 'debian-modules';
}

/** A Kconfig fragment file and its parsed assignments. */
export interface ConfigFragment {
  readonly name: string;
  readonly path: string;
  readonly content: string;
  readonly sha256: string;
}

/**
 * The fragments for `variant`, in merge order: base.config, every fragment that is not a
 * variant (e.g. wfgen.config, from the kernel extension), then the variant's own. A
 * Debian-based variant has no base.config: Debian's configuration is its base.
 */
export async function configFragments(configDir: string, variant: KernelVariant): Promise<ConfigFragment[]> {
  let names: string[];
  try {
    names = (await readdir(configDir)).filter((n) => n.endsWith('.config')).sort();
  } catch (error) {
    throw new UserError(`cannot read kernel config folder ${configDir}: ${(error as Error).message}`);
  }
  if (!names.includes('base.config')) throw new UserError(`${configDir} has no base.config`);
  if (!names.includes(`${variant}.config`)) throw new UserError(`${configDir} has no ${variant}.config`);
  const variantNames = new Set(kernelVariants.map((v) => `${v}.config`));
  variantNames.add('base.config');
  const ordered = [
    ...(isDebianBased(variant) ? [] : ['base.config']),
    ...names.filter((n) => n !== 'base.config' && !variantNames.has(n)),
    `${variant}.config`,
  ];
  return Promise.all(
    ordered.map(async (name) => {
      const path = join(configDir, name);
      const content = await readFile(path, 'utf8');
      return { name, path, content, sha256: sha256(content) };
    }),
  );
}

/** `CONFIG_X` → value ('n' for "is not set"), from a .config or a fragment. */
export function parseConfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (set) values.set(set[1], set[2]);
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line.trim());
    if (unset) values.set(unset[1], 'n');
  }
  return values;
}

/**
 * Every option the fragments ask for must survive olddefconfig; Kconfig silently drops an
 * option whose dependencies are not met, which would otherwise go unnoticed.
 */
export function checkMergedConfig(fragments: readonly ConfigFragment[], finalConfig: string): void {
  const final = parseConfig(finalConfig);
  const wanted = new Map<string, { value: string; from: string }>();
  for (const f of fragments) {
    for (const [key, value] of parseConfig(f.content)) wanted.set(key, { value, from: basename(f.path) });
  }
  const dropped: string[] = [];
  for (const [key, { value, from }] of wanted) {
    const actual = final.get(key) ?? 'n';
    if (actual !== value) dropped.push(`  ${key}=${value} (${from}) is ${actual === 'n' ? 'not set' : actual} after olddefconfig`);
  }
  if (dropped.length > 0) {
    throw new UserError(
      `kernel config: ${dropped.length} option(s) from the fragments did not survive (unmet dependencies?):\n${dropped.join('\n')}`,
      ExitCode.buildFailed,
    );
  }
}
