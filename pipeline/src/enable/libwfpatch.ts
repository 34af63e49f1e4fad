import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { repoRoot } from '../paths.ts';

/** libwfpatch's folder in the repository (`make -C kpatch-fork` builds it). */
export const runtimeDir: string = join(repoRoot, 'kpatch-fork', 'runtime');

/** A content-addressed copy of the libwfpatch an enabled package is linked with. */
export interface LibwfpatchSnapshot {
  /** Holds libwfpatch.a and wfpatch.h; never modified once published. */
  readonly dir: string;
  /** sha256 of the static library and the header. */
  readonly sha256: string;
}

/**
 * Copies libwfpatch.a and wfpatch.h into `<cacheDir>/libwfpatch/<hash>/` (once per content).
 * The enabled build links that copy, so its recorded paths stay valid whatever happens to the
 * work tree the runtime was built in, and the hash is part of the enabled build's cache key.
 */
export async function snapshotLibwfpatch(cacheDir: string, runtime: string = runtimeDir): Promise<LibwfpatchSnapshot> {
  const files = { 'libwfpatch.a': join(runtime, 'build', 'libwfpatch.a'), 'wfpatch.h': join(runtime, 'wfpatch.h') };
  const hash = createHash('sha256');
  for (const [name, path] of Object.entries(files)) {
    const bytes = await readFile(path).catch(() => null);
    if (!bytes) throw new UserError(`libwfpatch is not built (${path} missing): run make -C kpatch-fork (or npm run setup)`, ExitCode.missingPrerequisite);
    hash.update(name).update(bytes);
  }
  const sha256 = hash.digest('hex');
  const dir = join(cacheDir, 'libwfpatch', sha256.slice(0, 16));
  if (await exists(join(dir, 'libwfpatch.a'))) return { dir, sha256 };
  const temp = `${dir}.tmp-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  for (const [name, path] of Object.entries(files)) await copyFile(path, join(temp, name));
  await writeFile(join(temp, 'sha256'), `${sha256}\n`);
  try {
    await rename(temp, dir);
  } catch (error) {
    // Another process published the same content first: theirs is as good as ours.
    await rm(temp, { recursive: true, force: true });
    if (!(await exists(join(dir, 'libwfpatch.a')))) throw error;
  }
  return { dir, sha256 };
}

/**
 * The environment that makes an autotools package's Debian build link libwfpatch statically:
 * the header through dpkg-buildflags (DEB_CPPFLAGS_APPEND), the archive through LIBS (after
 * the objects on every link line), with libgcc_s for the unwinder that registers a patch's
 * .eh_frame (kpatch-fork/runtime/README.md).
 */
export function libwfpatchBuildEnv(lib: LibwfpatchSnapshot): Record<string, string> {
  return {
    DEB_CPPFLAGS_APPEND: `-I${lib.dir}`,
    LIBS: `${join(lib.dir, 'libwfpatch.a')} -ldl -lpthread -Wl,--no-as-needed -lgcc_s`,
  };
}
