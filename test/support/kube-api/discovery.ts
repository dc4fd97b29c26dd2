// Discovery as clients read it: /version, /api, /apis and the resource list of a group version
// (with the status and log subresources); an unknown group version answers 404.
import { RESOURCES, statusBody, type Answer } from './resources';

export const NOT_FOUND: Answer = { status: 404, body: statusBody(404, 'NotFound', 'the server could not find the requested resource') };

/** The answer to GET `path` when it is a discovery path, else undefined. */
export function discovery(path: string): Answer | undefined {
  if (path === '/version') return { status: 200, body: { major: '1', minor: '31', gitVersion: 'v1.31.0-outer-loop-test' } };
  if (path === '/api') return { status: 200, body: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] } };
  if (path === '/apis') {
    const groups = [...new Set(RESOURCES.filter((r) => r.group).map((r) => `${r.group}/${r.version}`))].map((gv) => {
      const [name, version] = gv.split('/');
      return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } };
    });
    return { status: 200, body: { kind: 'APIGroupList', apiVersion: 'v1', groups } };
  }
  const gv = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/?$/.exec(path);
  if (!gv) return undefined;
  const group = gv[1] ? '' : gv[2];
  const version = gv[1] ?? gv[3];
  const list = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (!list.length) return NOT_FOUND;
  const resources = list.flatMap((r) => {
    const entry = { name: r.name, singularName: r.singularName, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs };
    const subs = [{ name: `${r.name}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] }];
    if (r.kind === 'Pod') subs.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
    return [entry, ...subs];
  });
  return { status: 200, body: { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources } };
}
