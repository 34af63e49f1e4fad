/** Stage 1, triage: parse the patch and its DEP-3 header (src/triage/). */
import { readFile } from 'node:fs/promises';
import { UserError } from '../cli/errors.ts';
import { triagePatch } from '../triage/index.ts';
import type { Stage } from './context.ts';

export const triageStage: Stage = {
  key: 'triage',
  title: () => 'triage: parse the patch and its DEP-3 header',
  async run(ctx, task) {
    const { patchPath, options } = ctx.input;
    const text = await readFile(patchPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`${options.patch}: cannot read (${e.code ?? e.message})`);
    });
    const triage = triagePatch(text, patchPath);
    ctx.triage = triage;
    const kinds = [...new Set(triage.files.map((f) => f.kind))].join(', ');
    task.title = `triage: ${triage.files.length} file(s) (${kinds})${triage.cves.length ? `, ${triage.cves.join(' ')}` : ''}`;
  },
};
