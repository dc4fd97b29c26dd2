// Rendering: the objects to deploy, from a compose project (converted) or from users' manifests
// (kept as yaml Documents), pinned by digest, with image pull secrets added to every pod spec, and
// the text published as the `renderedManifests` artifact (Secret values redacted there).
import * as path from 'node:path';
import type { Document } from 'yaml';
import type { Environment } from '../compose/interpolate';
import { InputError } from '../errors';
import { lazyRequire } from '../util/lazy';
import { indexLock } from '../lock/pin';
import type { ImageLock } from '../lock/types';
import type { ApplyItem } from './apply';
import { loadComposeProject } from './compose-project';
import { convertCompose } from './convert';
import { ManifestFile, checkDuplicates, documentNodes, readManifests, renderManifestFiles, renderObjects } from './manifests';
import { KubeObject, podSpecOf, podSpecPath } from './objects';
import { isObject } from '../util/object';
import { PinReport, Pinner, pinManifestFiles, pinObjects } from './pin';

const yaml = lazyRequire<typeof import('yaml')>(() => require('yaml'));

export interface RenderOptions {
  source: 'compose' | 'manifests';
  composeFiles?: string[];
  env?: Environment;
  envFile?: string;
  /** Folders outside the project directory whose files the compose files may name (the allowedPaths input). */
  allowedPaths?: string[];
  manifests?: string[];
  /** Where relative manifest paths start. */
  baseDir: string;
  lock?: ImageLock;
  lockInput: string;
  allowUnpinned: boolean;
  /** Names added to every pod spec's imagePullSecrets. */
  imagePullSecrets: string[];
  namespace: string;
}

export interface Rendered {
  items: ApplyItem[];
  /** The multi-document YAML published as the artifact (Secret data redacted). */
  text: string;
  pins: PinReport;
  warnings: string[];
  /** Values to register as secrets (Secret data of converted compose secrets). */
  secretValues: string[];
  /** Compose services not converted because they belong to a profile. */
  inactiveServices: string[];
}

export function render(options: RenderOptions): Rendered {
  const lockIndex = options.lock ? indexLock(options.lock) : undefined;
  const pinner = new Pinner({ lock: lockIndex, allowUnpinned: options.allowUnpinned, lockInput: options.lockInput });
  if (options.source === 'compose') {
    const project = loadComposeProject(options.composeFiles ?? [], { env: options.env, envFile: options.envFile, allowedPaths: options.allowedPaths });
    const conversion = convertCompose(project, {
      imageFor: (service) => options.lock?.images.find((i) => i.name === service)?.ref,
    });
    pinObjects(conversion.objects, pinner);
    const pins = pinner.finish();
    for (const obj of conversion.objects) addPullSecrets(obj, options.imagePullSecrets);
    const items = conversion.objects.map((object) => ({ object, where: `converted from ${path.basename(project.files[0])}` }));
    checkDuplicates(items, options.namespace);
    return {
      items,
      text: `# Rendered by KubernetesDeploy@1 from ${project.files.map((f) => path.relative(options.baseDir, f) || f).join(', ')}\n${renderObjects(conversion.objects.map(redactSecret))}`,
      pins,
      warnings: [...conversion.warnings, ...pins.warnings],
      secretValues: conversion.secretValues,
      inactiveServices: project.inactiveServices,
    };
  }
  const files = readManifests(options.manifests ?? [], options.baseDir);
  pinManifestFiles(files, pinner);
  const pins = pinner.finish();
  addPullSecretsToFiles(files, options.imagePullSecrets);
  const items: ApplyItem[] = [];
  for (const f of files) {
    for (const d of f.documents) {
      d.objects.forEach((object, i) => items.push({ object, where: `manifest '${path.relative(options.baseDir, f.file) || f.file}', document ${d.index}${d.objects.length > 1 ? `, item ${i + 1}` : ''}` }));
    }
  }
  if (items.length === 0) throw new InputError(`Input 'manifests': the files hold no Kubernetes objects.`);
  checkDuplicates(items, options.namespace);
  return {
    items,
    text: renderManifestFiles(redactFiles(files), options.baseDir),
    pins,
    warnings: pins.warnings,
    secretValues: secretDataValues(items.map((i) => i.object)),
    inactiveServices: [],
  };
}

// ---- image pull secrets -----------------------------------------------------------------------

export function addPullSecrets(obj: KubeObject, names: string[]): void {
  if (!names.length) return;
  const spec = podSpecOf(obj);
  if (!spec) return;
  const list = Array.isArray(spec.imagePullSecrets) ? (spec.imagePullSecrets as { name: string }[]) : [];
  for (const name of names) if (!list.some((s) => s.name === name)) list.push({ name });
  spec.imagePullSecrets = list;
}

function addPullSecretsToFiles(files: ManifestFile[], names: string[]): void {
  if (!names.length) return;
  const y = yaml();
  for (const f of files) {
    for (const d of f.documents) {
      const nodes = documentNodes(d);
      d.objects.forEach((obj, i) => {
        const node = nodes[i];
        const p = podSpecPath(obj.kind);
        if (!p || !y.isMap(node)) return;
        addPullSecrets(obj, names);
        const specNode = node.getIn(p, true);
        if (!y.isMap(specNode)) return;
        const existing = specNode.get('imagePullSecrets', true);
        const have = new Set<string>();
        if (y.isSeq(existing)) for (const item of existing.items) if (y.isMap(item)) have.add(String(item.get('name')));
        const missing = names.filter((n) => !have.has(n));
        if (!missing.length) return;
        if (y.isSeq(existing)) for (const n of missing) existing.add(d.doc.createNode({ name: n }));
        else specNode.set('imagePullSecrets', d.doc.createNode(missing.map((n) => ({ name: n }))));
      });
    }
  }
}

// ---- secrets in the artifact -------------------------------------------------------------------

const REDACTED = '(redacted by KubernetesDeploy: the value is applied to the cluster but not published)';
/** `data` holds base64: the redacted text is encoded too, so the published set stays valid for the API server (a dry run accepts it). */
const redactedValue = (key: string) => (key === 'data' ? Buffer.from(REDACTED).toString('base64') : REDACTED);

function secretDataValues(objects: KubeObject[]): string[] {
  const out: string[] = [];
  for (const o of objects) {
    if (o.kind !== 'Secret') continue;
    for (const key of ['data', 'stringData']) {
      const data = o[key];
      if (!isObject(data)) continue;
      for (const v of Object.values(data)) {
        if (typeof v !== 'string' || !v) continue;
        out.push(v);
        if (key === 'data') out.push(Buffer.from(v, 'base64').toString('utf8'));
      }
    }
  }
  return out;
}

function redactSecret(obj: KubeObject): KubeObject {
  if (obj.kind !== 'Secret') return obj;
  const copy = structuredClone(obj);
  for (const key of ['data', 'stringData']) {
    const data = copy[key];
    if (isObject(data)) for (const k of Object.keys(data)) data[k] = redactedValue(key);
  }
  return copy;
}

function redactFiles(files: ManifestFile[]): ManifestFile[] {
  const y = yaml();
  return files.map((f) => ({
    file: f.file,
    documents: f.documents.map((d) => {
      if (!d.objects.some((o) => o.kind === 'Secret')) return d;
      const copy = { ...d, doc: d.doc.clone() as Document.Parsed };
      documentNodes(copy).forEach((node, i) => {
        if (d.objects[i]?.kind !== 'Secret' || !y.isMap(node)) return;
        for (const key of ['data', 'stringData']) {
          const data = node.get(key, true);
          if (y.isMap(data)) for (const pair of data.items) pair.value = copy.doc.createNode(redactedValue(key));
        }
      });
      return copy;
    }),
  }));
}
