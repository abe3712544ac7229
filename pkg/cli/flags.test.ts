import t from 'tap';
import { z } from 'zod';
import { parseFlags, flag } from './flags.js';

const specs = {
  'proxy-port': { type: 'string' as const, help: 'port' },
  'dry-run': { type: 'boolean' as const, help: 'print only' },
};
const schema = z.object({ proxyPort: flag.port().default(15001), dryRun: z.boolean().default(false) }).strict();

t.test('flags win over env and are validated', async (t) => {
  const got = parseFlags('x', 's', specs, schema, ['--proxy-port', '123'], { WEFT_PROXY_PORT: '9' });
  t.same(got, { proxyPort: 123, dryRun: false });
  t.ok(Object.isFrozen(got));
  t.same(parseFlags('x', 's', specs, schema, [], { WEFT_PROXY_PORT: '9', WEFT_DRY_RUN: 'true' }), { proxyPort: 9, dryRun: true });
});

t.test('bad values name the flag and the allowed range', async (t) => {
  t.throws(() => parseFlags('x', 's', specs, schema, ['--proxy-port', '70000']), {
    name: 'WeftError',
    code: 'WEFT_ERR_BAD_FLAG',
    message: /--proxy-port \(WEFT_PROXY_PORT\): must be 1-65535/,
  });
  t.throws(() => parseFlags('x', 's', specs, schema, ['--nope']), /Unknown option '--nope'/);
  t.throws(() => parseFlags('x', 's', specs, schema, [], { WEFT_DRY_RUN: 'maybe' }), /WEFT_DRY_RUN: "maybe" is not a boolean/);
});
