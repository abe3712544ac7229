// `weft <command> [flags]`: dispatch only. Each command lives in cmd/<name>/index.ts and
// exports `run(argv): Promise<number>` (the exit code). Loaded lazily so `weft version`
// does not pay for the proxy's imports.
import { ErrorCodes, WeftError, isWeftError } from '../pkg/errors/index.js';

const COMMANDS: Record<string, string> = {
  controller: 'the admission webhook and policy server',
  inject: 'offline injection of Kubernetes YAML',
  init: 'program traffic interception inside a pod (tproxy or ebpf)',
  proxy: 'the sidecar proxy',
  policy: 'evaluate policies offline (weft policy check)',
  'wait-ready': 'wait until the local proxy is ready (classic-sidecar postStart hook)',
  check: 'preflight of the kernel features and tools this host offers',
  demo: 'the data plane on this machine, pods as network namespaces',
  version: 'print versions',
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([n, d]) => `  ${n.padEnd(11)} ${d}`);
  return `usage: weft <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\nRun 'weft <command> --help' for a command's flags.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') return main(['version']);
  if (!Object.hasOwn(COMMANDS, name)) {
    throw new WeftError(ErrorCodes.UNKNOWN_COMMAND, `unknown command "${name}"; allowed: ${Object.keys(COMMANDS).join(', ')}`, { field: 'command' });
  }
  let mod: { run: (argv: string[]) => Promise<number> };
  try {
    mod = (await import(`./${name}/index.js`)) as typeof mod;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes(`/cmd/${name}/index.js`)) {
      throw new WeftError(ErrorCodes.UNKNOWN_COMMAND, `command "${name}" is not built into this weft yet`, { field: 'command' });
    }
    throw e;
  }
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (isWeftError(e)) {
      process.stderr.write(`weft: ${e.code}: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`weft: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
