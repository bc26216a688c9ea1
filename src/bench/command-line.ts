/** The bench scripts' `--flag value` command lines: each flag in turn, its value read as text or as an integer. */
export interface Flag {
  name: string;
  /** The next argument; an error naming the flag and the usage when there is none. */
  value(): string;
  /** The next argument as an integer >= min. */
  count(min: number): number;
}

export function* flags(argv: string[], usage: string): Generator<Flag> {
  for (let i = 0; i < argv.length; i += 1) {
    const name = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value; ${usage}`);
      return v;
    };
    const count = (min: number): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}`);
      return v;
    };
    yield { name, value, count };
  }
}
