// Image → local command. A Pod says `image: nginx`; the sandbox has no image store, so each
// image maps to a program of this machine. The weft image maps to the local build; nginx and
// redis to the installed servers with a config written into the pod's directory.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { ImageContext, ImageMapping, MappedCommand } from './index.js';

/** Kubernetes: `command` replaces the entrypoint, `args` the image's default arguments. */
function entrypoint(ctx: ImageContext, entry: string[], defaultArgs: string[]): string[] {
  return [...(ctx.command ?? entry), ...(ctx.args ?? (ctx.command ? [] : defaultArgs))];
}

/** `<repo>/bin/weft` run by the Node running the tests; `command: ["weft"]` resolves to it. */
export const weftImage: ImageMapping = (ctx) => {
  const argv = entrypoint(ctx, ['weft'], []);
  if (argv[0] === 'weft') argv[0] = ctx.node.weftBinary;
  return { argv };
};

const portOf = (ctx: ImageContext, fallback: number): number => ctx.container.ports?.[0]?.containerPort ?? fallback;

/** nginx answering `200 <pod name>` on its first containerPort (default 80), IPv4 and IPv6. */
export const nginxImage: ImageMapping = (ctx) => {
  if (ctx.command) return { argv: entrypoint(ctx, [], []) };
  const dir = ctx.podDir;
  const port = portOf(ctx, 80);
  const conf = join(dir, `nginx-${ctx.container.name}.conf`);
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx-${ctx.container.name}.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  server {
    listen ${port};
    listen [::]:${port};
    location / { default_type text/plain; return 200 "${ctx.pod.name}\\n"; }
  }
}
`,
  );
  return { argv: ['nginx', '-p', dir, '-e', 'stderr', '-c', conf, ...(ctx.args ?? [])] };
};

/** redis-server on its first containerPort (default 6379), no persistence, all addresses. */
export const redisImage: ImageMapping = (ctx) => {
  if (ctx.command) return { argv: entrypoint(ctx, [], []) };
  const port = portOf(ctx, 6379);
  return {
    argv: ['redis-server', '--port', String(port), '--bind', '* -::*', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', ctx.podDir, ...(ctx.args ?? [])],
  };
};

/** Used when no mapping of the test matches. */
export const builtinImages: Readonly<Record<string, ImageMapping>> = Object.freeze({
  nginx: nginxImage,
  redis: redisImage,
});

/** `registry.example/team/nginx:1.25@sha256:…` → [as written, `registry.example/team/nginx`, `nginx`]. */
export function imageKeys(image: string): string[] {
  const noDigest = image.split('@')[0] ?? image;
  const lastColon = noDigest.lastIndexOf(':');
  const noTag = lastColon > noDigest.lastIndexOf('/') ? noDigest.slice(0, lastColon) : noDigest;
  const last = noTag.slice(noTag.lastIndexOf('/') + 1);
  return [...new Set([image, noTag, last])];
}

/**
 * The mapping for an image: the test's tables first (pod, then node), then the weft image for
 * any name containing "weft", then the built-ins; an unknown image with a `command` runs that
 * command from this machine's PATH.
 */
export async function mapImage(tables: Record<string, ImageMapping>[], ctx: ImageContext, where: string): Promise<MappedCommand> {
  const keys = imageKeys(ctx.image);
  for (const table of tables) {
    for (const k of keys) {
      const m = table[k];
      if (m) return m(ctx);
    }
  }
  if (ctx.image.includes('weft')) return weftImage(ctx);
  for (const k of keys) {
    const m = builtinImages[k];
    if (m) return m(ctx);
  }
  if (ctx.command && ctx.command.length > 0) return { argv: entrypoint(ctx, [], []) };
  throw new WeftError(
    ErrorCodes.SANDBOX,
    `${where}.image: "${ctx.image}" has no mapping and the container gives no command; map it with the \`images\` option (built in: weft*, ${Object.keys(builtinImages).join(', ')})`,
    { field: `${where}.image` },
  );
}
