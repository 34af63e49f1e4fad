/** A wfbuild sub-command. `run` gets the arguments after the command name. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Full help text for `wfbuild <name> --help`. */
  readonly help: string;
  run(args: string[]): Promise<number>;
}
