// Flag declarations and their help text, without zod: what flags.ts validates with a schema,
// and what zod-free fast paths (pkg/api/proxy-fast.ts, pkg/intercept/init-fast.ts) read.
export interface FlagSpec {
  /** `string` flags take a value; `boolean` flags do not. */
  type: 'string' | 'boolean';
  /** Repeated flags collect into an array (schema should accept string[]). */
  multiple?: boolean;
  short?: string;
  help: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

/** `proxy-port` → `WEFT_PROXY_PORT`. */
export const envName = (flag: string): string => `WEFT_${flag.toUpperCase().replaceAll('-', '_')}`;

export function helpText(command: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  ${s.short ? `-${s.short}, ` : ''}--${name}${s.type === 'string' ? ' VALUE' : ''}`;
    return `${left.padEnd(34)} ${s.help} (env ${envName(name)})`;
  });
  return `usage: weft ${command} [flags]\n\n${summary}\n\nflags:\n${rows.join('\n')}\n  -h, --help                       this help\n`;
}

