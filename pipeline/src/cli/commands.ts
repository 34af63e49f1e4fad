import type { Command } from './command.ts';
import { setupCommand } from '../setup/command.ts';

/** Every sub-command, in the order `wfbuild --help` lists them. */
export const commands: readonly Command[] = [
  setupCommand,
];
