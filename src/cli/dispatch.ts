import { EgressdError, errorMessage } from '../core/errors.ts';

/** A subcommand: parses its own argv, writes its output, returns the exit code. */
export type Command = (argv: string[]) => Promise<number>;

export interface CommandEntry {
  summary: string;
  /** Loaded on use, so that `egressctl validate` does not load the agent, nor the agent the CA. */
  load: () => Promise<Command>;
}

export interface Program {
  name: string;
  commands: Readonly<Record<string, CommandEntry>>;
  /** Exit code for an error that is not a usage error (which is always 2). */
  failureExitCode: number;
}

function usage(program: Program): string {
  const lines = Object.entries(program.commands).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`);
  return `usage: ${program.name} <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\nRun "${program.name} <command> --help" for the flags of a command.`;
}

/**
 * Runs the subcommand named by argv[0]. Errors are printed once, as
 * `program command: message (CODE)`; usage errors exit 2 with a hint.
 */
export async function dispatch(program: Program, argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage(program)}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(program.commands, name) ? program.commands[name] : undefined;
  if (!command) {
    process.stderr.write(`${program.name}: unknown command "${name}"\n\n${usage(program)}\n`);
    return 2;
  }
  try {
    return await (await command.load())(rest);
  } catch (err) {
    const code = err instanceof EgressdError ? err.code : 'unexpected';
    const hint = code === 'EGRESSD_ERR_USAGE' ? `\nRun "${program.name} ${name} --help" for its flags.` : '';
    process.stderr.write(`${program.name} ${name}: ${errorMessage(err)} (${code})${hint}\n`);
    return code === 'EGRESSD_ERR_USAGE' ? 2 : program.failureExitCode;
  }
}
