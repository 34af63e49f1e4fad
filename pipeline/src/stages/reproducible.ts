/**
 * The reproducible-builds settings both builds get, so that an object recompiled without a
 * change in its sources comes out with the same bytes: SOURCE_DATE_EPOCH (GCC takes __DATE__
 * and __TIME__ from it; Debian's tools set it from debian/changelog too). The path of the tree
 * is already mapped away by the wrapper's -ffile-prefix-map.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { exists } from '../common/fs.ts';

/**
 * For a tree without a changelog: any fixed value does, as long as the original and the
 * patched build get the same one (2000-01-01 00:00 UTC).
 */
const fixedEpoch = '946684800';

/** The latest debian/changelog entry's time, as dpkg-buildpackage and debhelper take it; else fixedEpoch. */
export async function sourceDateEpoch(tree: string): Promise<string> {
  if (process.env.SOURCE_DATE_EPOCH) return process.env.SOURCE_DATE_EPOCH;
  if (await exists(join(tree, 'debian/changelog'))) {
    const result = await execa('dpkg-parsechangelog', ['-STimestamp'], { cwd: tree, reject: false });
    if (result.exitCode === 0 && /^\d+$/.test(result.stdout.trim())) return result.stdout.trim();
  }
  return fixedEpoch;
}

export async function reproducibleEnv(tree: string): Promise<Record<string, string>> {
  return { SOURCE_DATE_EPOCH: await sourceDateEpoch(tree) };
}
