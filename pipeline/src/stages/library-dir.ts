/**
 * The build's own shared libraries under the names binaries ask for them by. A server's
 * programs often need libraries of the same package (dovecot's auth needs libdovecot.so.0,
 * strongswan's charon libcharon.so.0), installed where their run path points (/usr/lib/dovecot)
 * and absent from this machine. The wrapper captures libdovecot.so.0.0.0; DT_NEEDED says
 * libdovecot.so.0. create-diff-object --binary and `wfpatch-ctl check` resolve references
 * through this directory (`--library-dir`): one symbolic link per DT_SONAME, to the captured
 * file, as the dynamic linker would find the installed library.
 */
import { readdir, mkdir, rename, rm, symlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execa } from 'execa';

const made = new Map<string, Promise<string | null>>();

/** A library's DT_SONAME (readelf -d), or null for a file without one. */
async function sonameOf(file: string): Promise<string | null> {
  const r = await execa('readelf', ['-d', '--wide', file], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) return null;
  return /\(SONAME\)\s+Library soname: \[([^\]\/]+)\]/.exec(r.stdout)?.[1] ?? null;
}

/** Shared objects among `linked`'s files, by name (lib….so, lib….so.N…, module.so). */
function isSharedObjectName(name: string): boolean {
  return /\.so(\.\d+)*$/.test(name);
}

/**
 * The directory of soname links for the linked files under `linked` (made once per process;
 * beside `linked`, replaced whole so a reader never sees half of it). Null when the build
 * links no shared object with a soname.
 */
export function libraryDir(linked: string): Promise<string | null> {
  let dir = made.get(linked);
  if (!dir) {
    dir = makeLibraryDir(linked);
    made.set(linked, dir);
  }
  return dir;
}

async function makeLibraryDir(linked: string): Promise<string | null> {
  const entries = await readdir(linked, { recursive: true, withFileTypes: true }).catch(() => []);
  const files = entries.filter((e) => e.isFile() && isSharedObjectName(e.name)).map((e) => join(e.parentPath, e.name)).sort();
  const bySoname = new Map<string, string>();
  for (const file of files) {
    const soname = await sonameOf(file);
    // Two files of one soname (a library built twice, e.g. for two flavours): the first in
    // path order, so the choice does not depend on the order the directory lists them.
    if (soname && !bySoname.has(soname)) bySoname.set(soname, file);
  }
  if (bySoname.size === 0) return null;
  const dir = `${linked}.sonames`;
  const staging = `${dir}.${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  for (const [soname, file] of bySoname) await symlink(relative(dir, file), join(staging, soname));
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  return dir;
}

/** create-diff-object's and wfpatch-ctl check's arguments for it. */
export function libraryDirArgs(dir: string | null | undefined): string[] {
  return dir ? ['--library-dir', dir] : [];
}
