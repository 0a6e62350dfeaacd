/**
 * The command-line contract every script shares: `--help` (or `-h`) prints the script's help on stdout and exits
 * 0 whatever else is on the line; a mistake on the command line (an unknown option, a missing value, a bad
 * number) is one line on stderr and exit 2, never a stack trace.
 */

/** A mistake on the command line: reported as its message alone. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Runs `parse` (a node:util parseArgs call) unless help was asked for. `help` is the full text: a usage line,
 * then every option with what it does and its default.
 */
export function parseCommandLine<T>(help: string, parse: () => T, argv: readonly string[] = process.argv.slice(2)): T {
  const end = argv.indexOf('--');
  const options = end === -1 ? argv : argv.slice(0, end);
  if (options.includes('--help') || options.includes('-h')) {
    process.stdout.write(help.endsWith('\n') ? help : `${help}\n`);
    process.exit(0);
  }
  try {
    return parse();
  } catch (err) {
    exitWithUsageError(err);
  }
}

/** One line on stderr (the first line of the message, pointing at --help), exit 2. */
export function exitWithUsageError(err: unknown): never {
  // node:util's unknown-option message goes on about positionals after `--`: the first sentence says it.
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
  process.stderr.write(`${message} (--help lists the options)\n`);
  process.exit(2);
}

/**
 * A script's last resort: a usage error is one line (exit 2); anything else keeps its stack (exit 1), because
 * then the script itself failed and where matters.
 */
export function reportFailure(err: unknown): never {
  if (err instanceof UsageError) exitWithUsageError(err);
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

/** `--name VALUE` as a number within bounds, or a UsageError naming the option. */
export function numberOption(name: string, value: string | undefined, { min = 0, integer = false, exclusiveMin = false } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const ok = Number.isFinite(n) && (exclusiveMin ? n > min : n >= min) && (!integer || Number.isInteger(n));
  if (!ok) throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} ${exclusiveMin ? '>' : '>='} ${min} (got ${JSON.stringify(value)})`);
  return n;
}
