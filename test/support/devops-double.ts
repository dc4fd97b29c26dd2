// A test double of the Azure DevOps Build REST API on 127.0.0.1: just what fetching another run's
// artifact needs, following the real service's shapes (azure-devops-node-api talks to it unchanged):
//   OPTIONS /<org>/_apis/build            → resource locations (id, routeTemplate, versions)
//   GET /<org>/<project>/_apis/build/definitions?name=…            → {count, value: [{id, name, path}]}
//   GET /<org>/<project>/_apis/build/builds?definitions=…&statusFilter=…&resultFilter=…&$top=…&queryOrder=…[&branchName=…]
//   GET /<org>/<project>/_apis/build/builds/<id>
//   GET /<org>/<project>/_apis/build/builds/<id>/artifacts?artifactName=…  (Accept: application/zip)
//       → 302 to http://127.0.0.2:<port>/blob/<…>?sig=…, another host, as pipeline artifacts are
//         served from blob storage with a SAS; the blob host refuses requests that carry an
//         Authorization header (the token must not follow a redirect), like Azure Storage does.
// Every API request needs `Authorization: Bearer <token>` (else 401, as with X-TFS-FedAuthRedirect:
// Suppress); `deny: true` on a definition answers 403.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';

export interface DoubleBuild {
  id: number;
  definitionId: number;
  buildNumber: string;
  result: 'succeeded' | 'failed' | 'partiallySucceeded' | 'canceled';
  finishTime: string;
  sourceBranch?: string;
  /** artifact name → files (path inside the zip → content). */
  artifacts: Record<string, Record<string, string | Buffer>>;
}

export interface DoubleDefinition {
  id: number;
  name: string;
  path?: string;
  deny?: boolean;
}

export interface DevOpsDouble {
  /** e.g. http://127.0.0.1:PORT/org/ */
  collectionUri: string;
  token: string;
  requests: { method: string; url: string; authorization?: string }[];
  stop(): Promise<void>;
}

const LOCATIONS = [
  { id: 'dbeaf647-6167-421a-bda9-c9327b25e2e6', area: 'build', resourceName: 'definitions', routeTemplate: '{project}/_apis/build/definitions/{definitionId}', resourceVersion: 7, minVersion: '2.0', maxVersion: '7.2', releasedVersion: '7.1' },
  { id: '0cd358e1-9217-4d94-8269-1c1ee6f93dcf', area: 'build', resourceName: 'builds', routeTemplate: '{project}/_apis/build/builds/{buildId}', resourceVersion: 7, minVersion: '2.0', maxVersion: '7.2', releasedVersion: '7.1' },
  { id: '1db06c96-014e-44e1-ac91-90b2d4b3e984', area: 'build', resourceName: 'artifacts', routeTemplate: '{project}/_apis/build/builds/{buildId}/artifacts', resourceVersion: 5, minVersion: '2.0', maxVersion: '7.2', releasedVersion: '7.1' },
];

const STATUS_COMPLETED = ['2', 'completed'];
const RESULT_SUCCEEDED = ['2', 'succeeded'];

export async function startDevOpsDouble(options: { org?: string; project?: string; token?: string; definitions: DoubleDefinition[]; builds: DoubleBuild[] }): Promise<DevOpsDouble> {
  const org = options.org ?? 'org';
  const project = options.project ?? 'shop';
  const token = options.token ?? 'devops-token-7f1e2d';
  const requests: DevOpsDouble['requests'] = [];
  const blobs = new Map<string, Buffer>();

  const blobServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://blob');
    requests.push({ method: req.method ?? '', url: `blob:${url.pathname}${url.search}`, authorization: req.headers.authorization });
    if (req.headers.authorization) {
      res.writeHead(400, { 'content-type': 'application/xml' });
      return res.end('<Error><Code>InvalidAuthenticationInfo</Code><Message>Authentication information is not given in the correct format.</Message></Error>');
    }
    const blob = blobs.get(url.pathname);
    if (!blob || url.searchParams.get('sig') !== 'sas') {
      res.writeHead(403);
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': blob.length });
    res.end(blob);
  });
  await new Promise<void>((resolve) => blobServer.listen(0, '127.0.0.2', resolve));
  const blobPort = (blobServer.address() as AddressInfo).port;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://double');
    requests.push({ method: req.method ?? '', url: url.pathname + url.search, authorization: req.headers.authorization });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${token}`) return json(401, { message: 'TF400813: The user is not authorized to access this resource.' });
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== org) return json(404, { message: `no collection ${parts[0]}` });
    if (req.method === 'OPTIONS' && parts[1] === '_apis' && parts[2] === 'build') return json(200, { count: LOCATIONS.length, value: LOCATIONS });
    if (parts[1] !== project || parts[2] !== '_apis' || parts[3] !== 'build') return json(404, { message: `TF200016: The following project does not exist: ${parts[1]}`, typeKey: 'ProjectDoesNotExistWithNameException' });
    if (req.method !== 'GET') return json(405, { message: 'method' });

    if (parts[4] === 'definitions' && parts.length === 5) {
      const name = url.searchParams.get('name');
      const found = options.definitions.filter((d) => !name || d.name.toLowerCase() === name.toLowerCase());
      return json(200, { count: found.length, value: found.map((d) => ({ id: d.id, name: d.name, path: d.path ?? '\\', project: { name: project } })) });
    }
    if (parts[4] === 'builds' && parts.length === 5) {
      const defs = (url.searchParams.get('definitions') ?? '').split(',').filter(Boolean).map(Number);
      if (defs.some((id) => options.definitions.find((d) => d.id === id)?.deny)) return json(403, { message: 'TF215106: Access denied.' });
      const status = url.searchParams.get('statusFilter');
      const result = url.searchParams.get('resultFilter');
      const branch = url.searchParams.get('branchName');
      let builds = options.builds.filter((b) => defs.length === 0 || defs.includes(b.definitionId));
      if (status && !STATUS_COMPLETED.includes(status.toLowerCase())) builds = [];
      if (result && RESULT_SUCCEEDED.includes(result.toLowerCase())) builds = builds.filter((b) => b.result === 'succeeded');
      if (branch) builds = builds.filter((b) => (b.sourceBranch ?? 'refs/heads/main') === branch);
      const order = url.searchParams.get('queryOrder');
      if (order === '3' || order === 'finishTimeDescending') builds = [...builds].sort((a, b) => b.finishTime.localeCompare(a.finishTime));
      const top = Number(url.searchParams.get('$top') ?? '0');
      if (top > 0) builds = builds.slice(0, top);
      return json(200, { count: builds.length, value: builds.map(buildJson) });
    }
    const build = parts[4] === 'builds' ? options.builds.find((b) => b.id === Number(parts[5])) : undefined;
    if (parts[4] === 'builds' && parts.length === 6) {
      if (!build) return json(404, { message: `TF215022: build ${parts[5]} not found` });
      return json(200, buildJson(build));
    }
    if (parts[4] === 'builds' && parts[6] === 'artifacts' && parts.length === 7) {
      if (!build) return json(404, { message: 'build not found' });
      const name = url.searchParams.get('artifactName') ?? '';
      const files = build.artifacts[name];
      if (!files) return json(404, { message: `Artifact ${name} not found for build ${build.id}.`, typeKey: 'ArtifactNotFoundException' });
      if (!(req.headers.accept ?? '').includes('application/zip')) {
        return json(200, { id: 1, name, resource: { type: 'PipelineArtifact', downloadUrl: `http://double/blob/${build.id}/${name}` } });
      }
      const blobPath = `/blob/${build.id}/${encodeURIComponent(name)}`;
      blobs.set(blobPath, makeZip(Object.fromEntries(Object.entries(files).map(([p, c]) => [`${name}/${p}`, c]))));
      res.writeHead(302, { location: `http://127.0.0.2:${blobPort}${blobPath}?sig=sas` });
      return res.end();
    }
    return json(404, { message: `no route ${url.pathname}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  function buildJson(b: DoubleBuild) {
    const def = options.definitions.find((d) => d.id === b.definitionId);
    return {
      id: b.id,
      buildNumber: b.buildNumber,
      status: 'completed',
      result: b.result,
      finishTime: b.finishTime,
      sourceBranch: b.sourceBranch ?? 'refs/heads/main',
      definition: { id: b.definitionId, name: def?.name },
      project: { name: project },
    };
  }

  return {
    collectionUri: `http://127.0.0.1:${port}/${org}/`,
    token,
    requests,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => blobServer.close(() => resolve()));
    },
  };
}

/** A zip (deflated entries, central directory) as Azure DevOps serves artifact downloads. */
export function makeZip(files: Record<string, string | Buffer>): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const packed = zlib.deflateRawSync(data);
    const nameBuf = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(zlib.crc32(data), 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    locals.push(local, nameBuf, packed);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4); // version made by
    local.copy(entry, 6, 4, 30); // version needed … extra length: the local header's fields
    entry.writeUInt32LE(offset, 42);
    central.push(entry, nameBuf);
    offset += 30 + nameBuf.length + packed.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
