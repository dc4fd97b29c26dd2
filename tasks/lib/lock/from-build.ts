// The image lock of another pipeline run: a release stage (or a deployment job in another
// pipeline) names the build pipeline and, optionally, the run; this downloads the lock artifact that
// PushWithDigest@1 published there, through the Azure DevOps REST API (azure-devops-node-api's
// BuildApi, not WebApi: WebApi loads every API client, a megabyte of bundle) with the job's
// System.AccessToken. No run given: the latest successful run of that pipeline (optionally of a
// branch). The artifact comes as a zip (build and pipeline artifacts alike); the lock file inside
// it is found by name (image-lock.json, else the only .json file) and written to destDir.
//
// The token goes to the collection's host only: a redirect to another host (blob storage with a
// SAS URL, as pipeline artifacts are served) does not get it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import { lazyRequire } from '../util/lazy';
import { FileError, InputError, OuterLoopError, errorMessage } from '../errors';

type BuildApiModule = typeof import('azure-devops-node-api/BuildApi');
type BearerModule = typeof import('azure-devops-node-api/handlers/bearertoken');
const buildApiModule = lazyRequire<BuildApiModule>(() => require('azure-devops-node-api/BuildApi'));
const bearerModule = lazyRequire<BearerModule>(() => require('azure-devops-node-api/handlers/bearertoken'));

/** The Azure DevOps REST API refused or failed a request while fetching the lock. */
export class DevOpsError extends OuterLoopError {
  readonly status?: number;
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

export interface LockFromBuildOptions {
  /** System.CollectionUri, e.g. https://dev.azure.com/contoso/ */
  collectionUri: string;
  /** Project name or id (System.TeamProject for the same project). */
  project: string;
  /** Build pipeline (definition) name or numeric id. */
  pipeline: string;
  /** Run (build) id; default: the latest successful run. */
  runId?: string;
  /** With no runId: only runs of this branch (refs/heads/main or main). */
  branch?: string;
  /** The artifact PushWithDigest published (default there: image-lock). */
  artifactName: string;
  /** System.AccessToken. */
  accessToken: string;
  /** Folder to write image-lock.json into (created when missing). */
  destDir: string;
  setSecret: (secret: string) => void;
  log?: { info(message: string): void; debug(message: string): void };
  /** Largest artifact zip accepted, in bytes (default 32 MB). */
  maxBytes?: number;
}

const BUILD_STATUS_COMPLETED = 2; // BuildInterfaces.BuildStatus.Completed
const BUILD_RESULT_SUCCEEDED = 2; // BuildInterfaces.BuildResult.Succeeded
const QUERY_FINISH_TIME_DESCENDING = 3; // BuildInterfaces.BuildQueryOrder.FinishTimeDescending
const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

/** Downloads the image lock artifact of a pipeline run; returns the path of the image-lock.json written. */
export async function lockFromBuild(options: LockFromBuildOptions): Promise<string> {
  const what = `the image lock of pipeline '${options.pipeline}'`;
  if (!options.accessToken) {
    throw new InputError(
      `Input 'lockFromBuild': fetching ${what} needs the job's access token (System.AccessToken). In YAML map it into the step (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)); in a classic release enable "Allow scripts to access the OAuth token".`,
    );
  }
  options.setSecret(options.accessToken);
  if (!options.collectionUri) throw new InputError("Input 'lockFromBuild': the collection URI (System.CollectionUri) is not known; run the task on an Azure Pipelines agent.");
  if (!options.project) throw new InputError("Input 'lockFromBuild': the project of the build pipeline is not set.");
  if (!options.pipeline.trim()) throw new InputError("Input 'lockFromBuild': name the build pipeline (its name or numeric id).");
  if (!options.artifactName.trim()) throw new InputError("Input 'lockArtifactName': name the artifact that carries the image lock (PushWithDigest@1 publishes 'image-lock').");
  if (options.runId !== undefined && !/^\d+$/.test(options.runId.trim())) {
    throw new InputError(`Input 'lockFromBuild': the run id '${options.runId}' must be a number (the buildId in the run's URL), or empty for the latest successful run.`);
  }

  const { BuildApi } = buildApiModule();
  const { BearerCredentialHandler } = bearerModule();
  const baseUrl = options.collectionUri.endsWith('/') ? options.collectionUri : `${options.collectionUri}/`;
  const api = new BuildApi(baseUrl, [new BearerCredentialHandler(options.accessToken, false)], {
    allowRetries: true,
    maxRetries: 3,
    socketTimeout: 60_000,
  });
  const project = options.project;

  const definitionId = await call(`finding the pipeline '${options.pipeline}'`, async () => {
    const text = options.pipeline.trim();
    if (/^\d+$/.test(text)) return Number(text);
    const found = (await api.getDefinitions(project, text)) ?? [];
    const exact = found.filter((d) => d.name?.toLowerCase() === text.toLowerCase());
    if (exact.length === 0) {
      throw new DevOpsError(
        `Input 'lockFromBuild': there is no build pipeline named '${text}' in project '${project}' (or the job's identity cannot read it). Check the name, or give the pipeline's numeric id.`,
        404,
      );
    }
    if (exact.length > 1) {
      throw new DevOpsError(
        `Input 'lockFromBuild': ${exact.length} pipelines are named '${text}' in project '${project}' (${exact.map((d) => `id ${d.id} in ${d.path ?? '\\'}`).join(', ')}). Give the numeric id instead.`,
      );
    }
    return exact[0].id as number;
  });

  const run = await call(`finding the run of pipeline '${options.pipeline}'`, async () => {
    if (options.runId) {
      const build = await api.getBuild(project, Number(options.runId.trim()));
      if (!build) throw new DevOpsError(`Input 'lockFromBuild': run ${options.runId} of pipeline '${options.pipeline}' was not found in project '${project}'.`, 404);
      if (build.definition?.id !== undefined && build.definition.id !== definitionId) {
        throw new DevOpsError(
          `Input 'lockFromBuild': run ${options.runId} belongs to pipeline '${build.definition.name ?? build.definition.id}', not to '${options.pipeline}'. Check the run id.`,
        );
      }
      return build;
    }
    const branch = options.branch ? (options.branch.startsWith('refs/') ? options.branch : `refs/heads/${options.branch}`) : undefined;
    const builds = await api.getBuilds(
      project,
      [definitionId],
      undefined, // queues
      undefined, // buildNumber
      undefined, // minTime
      undefined, // maxTime
      undefined, // requestedFor
      undefined, // reasonFilter
      BUILD_STATUS_COMPLETED,
      BUILD_RESULT_SUCCEEDED,
      undefined, // tagFilters
      undefined, // properties
      1, // top
      undefined, // continuationToken
      undefined, // maxBuildsPerDefinition
      undefined, // deletedFilter
      QUERY_FINISH_TIME_DESCENDING,
      branch,
    );
    if (!builds || builds.length === 0) {
      throw new DevOpsError(
        `Input 'lockFromBuild': pipeline '${options.pipeline}' has no successful run${branch ? ` on ${branch}` : ''} in project '${project}'. Run it, or give a run id.`,
        404,
      );
    }
    return builds[0];
  });
  const buildId = run.id as number;
  const runName = run.buildNumber ?? buildId;
  options.log?.info(`Image lock from pipeline '${options.pipeline}', run ${runName} (id ${buildId}), artifact '${options.artifactName}'.`);

  const zip = await call(`downloading artifact '${options.artifactName}' of run ${buildId}`, async () => {
    const message = (await api.getArtifactContentZip(project, buildId, options.artifactName)) as unknown as IncomingMessage;
    const status = message.statusCode ?? 0;
    if (status === 404) {
      message.resume();
      throw new DevOpsError(
        `Input 'lockArtifactName': run ${runName} of pipeline '${options.pipeline}' has no artifact named '${options.artifactName}'. Check the name PushWithDigest@1 published it under (default 'image-lock').`,
        404,
      );
    }
    if (status < 200 || status >= 300) {
      message.resume();
      throw new DevOpsError(`Azure DevOps answered ${status} ${message.statusMessage ?? ''} for the artifact download.`.trim(), status);
    }
    return readLimited(message, options.maxBytes ?? DEFAULT_MAX_BYTES, options.artifactName);
  });

  const entries = readZip(zip, `artifact '${options.artifactName}'`);
  const files = entries.filter((e) => !e.name.endsWith('/'));
  const jsonFiles = files.filter((e) => e.name.toLowerCase().endsWith('.json'));
  const chosen = files.find((e) => path.posix.basename(e.name) === 'image-lock.json') ?? (jsonFiles.length === 1 ? jsonFiles[0] : undefined);
  if (!chosen) {
    throw new FileError(
      `Artifact '${options.artifactName}' of run ${runName} has no image-lock.json (it holds: ${files.map((f) => f.name).slice(0, 10).join(', ') || 'nothing'}). Is it the artifact PushWithDigest@1 published?`,
    );
  }
  const content = extract(zip, chosen, `artifact '${options.artifactName}'`);
  fs.mkdirSync(options.destDir, { recursive: true });
  const out = path.join(options.destDir, 'image-lock.json');
  fs.writeFileSync(out, content);
  options.log?.debug(`Wrote ${out} (${content.length} bytes, from ${chosen.name}).`);
  return out;
}

/** Runs one REST step; turns the node API's errors (statusCode on the error) into messages that say what to do. */
async function call<T>(step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OuterLoopError) throw err;
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 401 || status === 203) {
      throw new DevOpsError(
        `Azure DevOps refused the job's access token while ${step} (${status}). Check that System.AccessToken reaches the task (YAML: env SYSTEM_ACCESSTOKEN: $(System.AccessToken)).`,
        status,
        { cause: err },
      );
    }
    if (status === 403) {
      throw new DevOpsError(
        `The job's identity may not read the build pipeline while ${step} (403). Grant the project's build service "View builds" on that pipeline, or turn off "Limit job authorization scope" for cross-project access.`,
        status,
        { cause: err },
      );
    }
    if (status === 404) throw new DevOpsError(`Azure DevOps answered 404 while ${step}: check the project and pipeline names.`, status, { cause: err });
    throw new DevOpsError(`Azure DevOps request failed while ${step}: ${errorMessage(err)}`, status, { cause: err });
  }
}

function readLimited(stream: NodeJS.ReadableStream, max: number, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new FileError(`Artifact '${name}' is larger than ${max} bytes; an image lock is a few kilobytes. Is it the right artifact?`));
        (stream as unknown as { destroy?: () => void }).destroy?.();
        return;
      }
      chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', (err: Error) => reject(new DevOpsError(`Downloading artifact '${name}' failed: ${err.message}`, undefined, { cause: err })));
  });
}

// ---------------------------------------------------------------------------------------------
// A small zip reader (central directory, stored and deflated entries, CRC checked). Enough for
// the artifact zips Azure DevOps serves; no ZIP64 (an image lock is small).

export interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export function readZip(buf: Buffer, what: string): ZipEntry[] {
  const bad = (why: string) => new FileError(`${what} is not a readable zip file (${why}).`);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end of central directory');
  const count = buf.readUInt16LE(eocd + 10);
  const cdSize = buf.readUInt32LE(eocd + 12);
  let offset = buf.readUInt32LE(eocd + 16);
  if (offset === 0xffffffff || count === 0xffff) throw bad('ZIP64 is not supported');
  if (offset + cdSize > buf.length) throw bad('central directory out of range');
  const entries: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (offset + 46 > buf.length || buf.readUInt32LE(offset) !== 0x02014b50) throw bad('broken central directory');
    const nameLength = buf.readUInt16LE(offset + 28);
    const extraLength = buf.readUInt16LE(offset + 30);
    const commentLength = buf.readUInt16LE(offset + 32);
    entries.push({
      method: buf.readUInt16LE(offset + 10),
      crc: buf.readUInt32LE(offset + 16),
      compressedSize: buf.readUInt32LE(offset + 20),
      size: buf.readUInt32LE(offset + 24),
      localHeaderOffset: buf.readUInt32LE(offset + 42),
      name: buf.toString('utf8', offset + 46, offset + 46 + nameLength).replace(/\\/g, '/'),
    });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

export function extract(buf: Buffer, entry: ZipEntry, what: string): Buffer {
  const bad = (why: string) => new FileError(`${what}: ${entry.name} cannot be extracted (${why}).`);
  const at = entry.localHeaderOffset;
  if (at + 30 > buf.length || buf.readUInt32LE(at) !== 0x04034b50) throw bad('broken local header');
  const start = at + 30 + buf.readUInt16LE(at + 26) + buf.readUInt16LE(at + 28);
  const raw = buf.subarray(start, start + entry.compressedSize);
  if (raw.length !== entry.compressedSize) throw bad('truncated');
  let data: Buffer;
  if (entry.method === 0) data = Buffer.from(raw);
  else if (entry.method === 8) data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
  else throw bad(`compression method ${entry.method} is not supported`);
  if (data.length !== entry.size) throw bad('size mismatch');
  if (crc32(data) !== entry.crc) throw bad('CRC mismatch');
  return data;
}

let crcTable: Uint32Array | undefined;
export function crc32(data: Buffer): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const byte of data) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
