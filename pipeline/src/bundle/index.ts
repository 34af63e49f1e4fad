import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';

/** `.wfpatch.meta` content (kpatch-fork/FORMAT.md): what the runtime logs about a bundle. */
export interface BundleMeta {
  readonly format: 1;
  readonly patch: string;
  readonly sha256: string;
  readonly cves: readonly string[];
  readonly target: { readonly path: string; readonly buildId: string | null };
}

/** The GNU build-id of an ELF file (lowercase hex), or null when it has none. */
export async function buildId(elf: string): Promise<string | null> {
  const result = await execa('readelf', ['-n', '--wide', elf], { reject: false });
  const match = /Build ID:\s*([0-9a-f]+)/.exec(result.stdout);
  return match ? match[1] : null;
}

export interface BundleResult {
  readonly ok: boolean;
  /** Why linking failed (ld's or objcopy's message), when !ok. */
  readonly error: string | null;
  readonly sha256: string | null;
}

/**
 * Links per-object patches into one relocatable bundle (`ld -r` keeps every symbol and
 * relocation, which is all the runtime resolves) and adds the metadata as a non-allocated
 * `.wfpatch.meta` section, NUL-terminated JSON.
 */
export async function writeBundle(objects: readonly string[], meta: BundleMeta, output: string, scratch: string): Promise<BundleResult> {
  const linked = `${output}.ld-r.o`;
  const ld = await execa('ld', ['-r', '-o', linked, ...objects], { reject: false, all: true });
  if (ld.exitCode !== 0) return { ok: false, error: `ld -r: ${(ld.all ?? '').trim()}`, sha256: null };
  const metaFile = `${scratch}/wfpatch-meta.json`;
  await writeFile(metaFile, JSON.stringify(meta) + '\0');
  const objcopy = await execa(
    'objcopy',
    ['--add-section', `.wfpatch.meta=${metaFile}`, '--set-section-flags', '.wfpatch.meta=readonly,contents', linked, output],
    { reject: false, all: true },
  );
  await execa('rm', ['-f', linked, metaFile]);
  if (objcopy.exitCode !== 0) return { ok: false, error: `objcopy: ${(objcopy.all ?? '').trim()}`, sha256: null };
  return { ok: true, error: null, sha256: createHash('sha256').update(await readFile(output)).digest('hex') };
}

/** Reads a bundle's `.wfpatch.meta` back (tests, `wfbuild report`). */
export async function readBundleMeta(bundle: string, scratch: string): Promise<BundleMeta | null> {
  const dump = `${scratch}/meta-${process.pid}-${Date.now()}.json`;
  // --dump-section works for non-allocated sections, which -O binary would drop.
  const result = await execa('objcopy', ['--dump-section', `.wfpatch.meta=${dump}`, bundle, `${dump}.o`], { reject: false });
  await execa('rm', ['-f', `${dump}.o`]);
  if (result.exitCode !== 0) return null;
  const text = (await readFile(dump, 'utf8')).replace(/\0+$/, '');
  await execa('rm', ['-f', dump]);
  return text ? (JSON.parse(text) as BundleMeta) : null;
}
