import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.ts';
import { UserError } from '../cli/errors.ts';
import { applyCommand } from './command.ts';

const help = `Usage: wfbuild revert --pid PID | --all [--json] [--timeout S]

Rolls back the newest applied patch in process PID, or in every libwfpatch process (--all):
the same as wfbuild apply --rollback. Exit codes as wfbuild apply.`;

export const revertCommand: Command = {
  name: 'revert',
  summary: 'roll back the newest patch in one (--pid) or every (--all) libwfpatch process',
  help,
  async run(args) {
    const { values } = parseArgs({ args, strict: true, options: { pid: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' }, timeout: { type: 'string' } } });
    if ((values.pid === undefined) === (values.all !== true)) throw new UserError('give --pid PID or --all');
    return applyCommand.run([...args, '--rollback']);
  },
};
