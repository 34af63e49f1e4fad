import { parseArgs } from 'node:util';
import { basename, dirname } from 'node:path';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { enablePackage, type EnableResult } from './index.ts';

const help = `Usage: wfbuild enable --package NAME=VERSION [--without PATCH]... [--out DIR] [--json]

Builds the Debian source package NAME=VERSION enabled for live patching: its enablement patch
(corpus/apps/NAME/*.patch: links libwfpatch, calls wf_init, places the quiescence points) is
added to debian/patches/series, a VERSION+wfpatch1 changelog entry is written, and
dpkg-buildpackage -b builds the .debs through wfbuild's compiler wrapper, linked with the
repository's libwfpatch (kpatch-fork/runtime/build/libwfpatch.a, statically).

The .debs and the build tree stay in $WFPATCH_CACHE/enable/NAME_VERSION-KEY/ (KEY: a hash of
the enablement patch, the libwfpatch build and the build settings); a second call with the same
inputs is a cache hit.

Options:
  --package NAME=VERSION   the source package and its exact version (apt-cache showsrc NAME)
  --without PATCH          leave this patch of the package's own series out (repeatable): the
                           build a fix from the series is live-patched onto; a distinct cache
                           entry and version (VERSION+wfpatch1~without.NNNN)
  --out DIR                also copy the .debs into DIR
  --json                   print the result as JSON

Exit: 0 built (or cached); 2 bad input (no enablement patch for NAME, unknown package or
version, a patch that does not apply); 12 the build failed; 13 libwfpatch is not built or a
tool is missing.`;

function describe(r: EnableResult): string {
  const lines = [
    `${r.package} ${r.version}: ${r.cached ? 'from the cache' : `built in ${(r.buildMs / 1000).toFixed(0)} s`} (${r.patch}${r.without.length ? `; without ${r.without.join(', ')}` : ''})`,
    `  cache: ${r.dir}`,
    ...r.debs.map((d) => `  ${basename(d)}`),
  ];
  if (r.copied.length) lines.push(`  copied to ${dirname(r.copied[0])}`);
  return lines.join('\n');
}

export const enableCommand: Command = {
  name: 'enable',
  summary: 'build a Debian package enabled for live patching (enablement patch, +wfpatch1, libwfpatch)',
  help,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { package: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, without: { type: 'string', multiple: true } },
    });
    if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'`);
    if (values.package === undefined) throw new UserError('--package NAME=VERSION is required');
    const result = await enablePackage({
      package: values.package,
      out: values.out,
      without: values.without ?? [],
      onOutput: values.json ? undefined : (line) => console.error(`enable: ${line}`),
    });
    console.log(values.json ? JSON.stringify(result, null, 2) : describe(result));
    return ExitCode.ok;
  },
};
