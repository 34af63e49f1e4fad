/** DEBIAN/control, the copyright and changelog of a hot-fix package (pure text). */
import type { PackagePlan } from './plan.ts';

/** Words wrapped to lines of at most `width` characters. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function cveText(cves: readonly string[]): string {
  return cves.length > 0 ? ` (${cves.join(', ')})` : '';
}

/** The extended description: each live fix, then each fix that needs a restart and why. */
export function extendedDescription(plan: PackagePlan): string[] {
  const out: string[] = [];
  const para = (text: string, indent = ''): void => {
    const lines = wrap(text, 76 - indent.length);
    lines.forEach((l, i) => out.push(` ${i === 0 ? indent : ' '.repeat(indent.length)}${l}`));
  };
  para(
    `Live patches for ${plan.target.name} ${plan.target.version} (${plan.targetPath}, build-id ${plan.buildId}). ` +
      `Installing applies them to every running process of that build without a restart; ` +
      `libwfpatch loads them again whenever the service starts.`,
  );
  out.push(' .');
  para(`Fixes applied live (${plan.fixes.length}):`);
  for (const f of plan.fixes) {
    const d = f.metadata.description ?? f.fix.report.patch.name;
    para(`${f.stem}${cveText(f.metadata.cves)}: ${d}`, ' * ');
  }
  if (plan.notLive.length > 0) {
    out.push(' .');
    para(`Fixes that could not be made live (${plan.notLive.length}): restart ${plan.target.name} after upgrading it to get them.`);
    for (const n of plan.notLive) {
      const d = n.report.patch.description ?? n.report.patch.name;
      para(`${n.name}${cveText(n.report.cves)}: ${d}. Not live: ${n.reasons.join('; ')}`, ' * ');
    }
  }
  return out;
}

export function controlFile(plan: PackagePlan, installedSizeKiB: number): string {
  const fields: [string, string][] = [
    ['Package', plan.name],
    ['Version', plan.version],
    ['Architecture', plan.architecture],
    ['Maintainer', plan.maintainer],
    ['Installed-Size', String(installedSizeKiB)],
    ['Depends', [`${plan.target.name} (= ${plan.target.version})`, ...plan.extraDepends].join(', ')],
    ['Section', 'admin'],
    ['Priority', 'optional'],
    ['Description', `live patches for ${plan.target.name} ${plan.target.version}\n${extendedDescription(plan).join('\n')}`],
  ];
  return fields.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
}

export function copyrightFile(plan: PackagePlan): string {
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: ${plan.name}`,
    `Comment: Live patches built by wfbuild from the source patches of ${plan.target.name};`,
    ` each patch keeps the license of the ${plan.target.name} source it changes, and`,
    ' wfpatch-ctl is part of wfpatch.',
    '',
    'Files: *',
    `Copyright: ${new Date().getUTCFullYear()} the authors of the patched sources and of wfpatch`,
    'License: GPL-2',
    ' On Debian systems the full text of the GNU General Public License version 2',
    ' can be found in /usr/share/common-licenses/GPL-2.',
    '',
  ].join('\n');
}

/** debian/changelog format, one entry for this release; `date` in RFC 2822. */
export function changelogEntry(plan: PackagePlan, date: string): string {
  const lines = [`${plan.name} (${plan.version}) unstable; urgency=high`, ''];
  for (const f of plan.fixes) {
    const text = `${f.stem}${cveText(f.metadata.cves)}: ${f.metadata.description ?? f.fix.report.patch.name}`;
    wrap(text, 74).forEach((l, i) => lines.push(`  ${i === 0 ? '*' : ' '} ${l}`));
  }
  for (const n of plan.notLive) {
    wrap(`${n.name}${cveText(n.report.cves)}: not live (${n.reasons[0]}); restart needed`, 74).forEach((l, i) => lines.push(`  ${i === 0 ? '*' : ' '} ${l}`));
  }
  lines.push('', ` -- ${plan.maintainer}  ${date}`, '');
  return lines.join('\n');
}

/**
 * A patch object is a relocatable ELF whose symbols the loader resolves: stripping it would
 * break it, so lintian's unstripped-binary-or-object does not apply to the .wfp files.
 */
export function lintianOverrides(plan: PackagePlan): string {
  return [
    '# Live-patch objects (relocatable ELF) keep the symbols libwfpatch resolves them with.',
    `${plan.name}: unstripped-binary-or-object [${plan.dir.slice(1)}/*.wfp]`,
    '',
  ].join('\n');
}
