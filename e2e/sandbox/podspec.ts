// Checking a Pod before anything is created, and turning its volumes into bind mounts.
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { BindMount } from './launch.js';
import type { Container, Pod } from './types.js';

const fail = (field: string, msg: string): WeftError => new WeftError(ErrorCodes.SANDBOX, `runPod: ${field}: ${msg}`, { field });

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A checked copy of the Pod with metadata.name, namespace and uid filled in. */
export function checkPod(input: unknown): Pod {
  if (!isObj(input)) throw fail('(root)', 'must be a Pod object');
  const pod = structuredClone(input) as Pod;
  if (pod.kind !== undefined && pod.kind !== 'Pod') throw fail('kind', `"${String(pod.kind)}" is not allowed; allowed: Pod`);
  if (!isObj(pod.spec)) throw fail('spec', 'must be an object');
  const meta = (pod.metadata ??= {});
  if (typeof meta.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(meta.name)) throw fail('metadata.name', `"${String(meta.name)}" must be a DNS-1123 name`);
  meta.namespace ??= 'default';
  meta.uid ??= randomUUID();
  if (!/^[0-9a-f-]{8,64}$/.test(meta.uid)) throw fail('metadata.uid', `"${meta.uid}" must be a UUID`);
  const spec = pod.spec;
  if (spec.hostNetwork === true) throw fail('spec.hostNetwork', 'true is not emulated; pods always get their own network namespace');
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) throw fail('spec.containers', 'must be a non-empty array');
  const names = new Set<string>();
  const volumes = new Set<string>();
  (spec.volumes ?? []).forEach((v, i) => {
    if (!isObj(v) || typeof v.name !== 'string') throw fail(`spec.volumes[${i}].name`, 'must be a string');
    if (!v.hostPath && !v.emptyDir) throw fail(`spec.volumes[${i}]`, 'only hostPath and emptyDir volumes are emulated');
    if (v.hostPath && (typeof v.hostPath.path !== 'string' || !isAbsolute(v.hostPath.path))) throw fail(`spec.volumes[${i}].hostPath.path`, 'must be an absolute path');
    volumes.add(v.name);
  });
  const checkList = (list: Container[] | undefined, field: string): void => {
    if (list === undefined) return;
    if (!Array.isArray(list)) throw fail(field, 'must be an array');
    list.forEach((c, i) => {
      const at = `${field}[${i}]`;
      if (!isObj(c) || typeof c.name !== 'string' || c.name === '') throw fail(`${at}.name`, 'must be a non-empty string');
      if (names.has(c.name)) throw fail(`${at}.name`, `"${c.name}" is used twice; container names are unique across initContainers and containers`);
      names.add(c.name);
      for (const k of ['command', 'args'] as const) {
        const v = c[k];
        if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))) throw fail(`${at}.${k}`, 'must be an array of strings');
      }
      (c.volumeMounts ?? []).forEach((m, j) => {
        if (!volumes.has(m.name)) throw fail(`${at}.volumeMounts[${j}].name`, `"${m.name}" names no volume in spec.volumes`);
        if (typeof m.mountPath !== 'string' || !isAbsolute(m.mountPath)) throw fail(`${at}.volumeMounts[${j}].mountPath`, 'must be an absolute path');
      });
    });
  };
  checkList(spec.initContainers, 'spec.initContainers');
  checkList(spec.containers, 'spec.containers');
  return pod;
}

/** Host path as the Pod writes it → path here, longest mapped prefix first. */
export function mapHostPath(path: string, map: Record<string, string>): string {
  const p = normalize(path).replace(/(.)\/$/, '$1');
  const keys = Object.keys(map).sort((a, b) => b.length - a.length);
  for (const k of keys) {
    const kk = normalize(k).replace(/\/$/, '');
    if (p === kk || p.startsWith(`${kk}/`)) return map[k]! + p.slice(kk.length);
  }
  return p;
}

export interface MountContext {
  pod: Pod;
  podDir: string;
  hostPathMap: Record<string, string>;
  /** Called for every host path the sandbox creates, so it is removed at teardown. */
  created(path: string): void;
}

/** Create `path` (a directory, or a file when `file`) with missing parents, recording each. */
function ensurePath(path: string, file: boolean, created: (p: string) => void): void {
  if (existsSync(path)) return;
  const missing: string[] = [];
  for (let d = file ? dirname(path) : path; !existsSync(d); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    mkdirSync(d);
    created(d);
  }
  if (file) {
    writeFileSync(path, '');
    created(path);
  }
}

/** The container's volumeMounts as bind mounts; creates emptyDirs, `*OrCreate` hostPaths and missing mountPaths. */
export function bindMounts(c: Container, where: string, ctx: MountContext): BindMount[] {
  return (c.volumeMounts ?? []).map((m, i) => {
    const at = `${where}.volumeMounts[${i}]`;
    const vol = (ctx.pod.spec.volumes ?? []).find((v) => v.name === m.name)!;
    let source: string;
    if (vol.emptyDir) {
      source = join(ctx.podDir, 'volumes', vol.name);
      mkdirSync(source, { recursive: true });
      chmodSync(source, 0o777); // as the kubelet makes emptyDirs: any container user may write
    } else {
      const hp = vol.hostPath!;
      source = mapHostPath(hp.path, ctx.hostPathMap);
      const type = hp.type ?? '';
      if (type === 'DirectoryOrCreate') ensurePath(source, false, ctx.created);
      else if (type === 'FileOrCreate') ensurePath(source, true, ctx.created);
      else if (!existsSync(source)) throw fail(`${at}`, `hostPath ${hp.path} (here ${source}) does not exist (type "${type}")`);
    }
    if (m.subPath) {
      if (isAbsolute(m.subPath) || m.subPath.split('/').includes('..')) throw fail(`${at}.subPath`, 'must be a relative path without ..');
      source = join(source, m.subPath);
      if (!existsSync(source)) mkdirSync(source, { recursive: true });
    }
    const isFile = !statSync(source).isDirectory();
    ensurePath(m.mountPath, isFile, ctx.created);
    return { source, target: m.mountPath, readOnly: m.readOnly === true };
  });
}
