// startKubeApi: the store, the controller and the routes behind one HTTP(S) server on 127.0.0.1,
// with a test CA whose client certificates authenticate (CN = user name).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { closeServer, listenLocal } from '../http-double';
import { issueCert, makeCa, type Pki } from '../pki';
import { Controller } from './controller';
import { defaultImageId, PodSimulation } from './pods';
import { resourceByKind, type Obj } from './resources';
import { kubeApiHandler } from './routes';
import { ObjectStore } from './store';
import type { ApiRequestRecord, Fault, KubeApiOptions, KubeApiServer } from './types';

/** The double's CA and serving certificate, in a folder of its own. */
function serverPki(): { ca: Pki; key: string; cert: string } {
  const ca = makeCa(fs.mkdtempSync(path.join(os.tmpdir(), 'col-kube-pki-')), 'kube-test-ca');
  const server = issueCert(ca, 'server', { commonName: 'kube-apiserver', sans: ['127.0.0.1', 'localhost', 'kubernetes.default.svc'] });
  return { ca, key: server.keyPem, cert: server.certPem };
}

export async function startKubeApi(options: KubeApiOptions = {}): Promise<KubeApiServer> {
  const useTls = options.tls ?? true;
  const pki = useTls ? serverPki() : undefined;
  const store = new ObjectStore(options.historyLimit ?? 10_000);
  const requests: ApiRequestRecord[] = [];
  const faults: Fault[] = [];
  // The knobs tests turn while the server runs; the controller and the pods read them each step.
  const knobs = { observeDelayMs: 0, imageIdFor: defaultImageId };
  const nodes = options.nodes ?? 2;
  const pods = new PodSimulation(store, { podStartTicks: options.podStartTicks ?? 2, nodes }, knobs);
  const controller = new Controller(store, pods, { stepMs: options.stepMs ?? 15, secondMs: options.secondMs ?? 1000, nodes }, knobs);

  const handler = kubeApiHandler({ store, pods, requests, faults, tokens: options.tokens ?? {}, deny: options.deny, tls: useTls });
  const server = pki ? https.createServer({ key: pki.key, cert: pki.cert, ca: pki.ca.caPem, requestCert: true, rejectUnauthorized: false }, handler) : http.createServer(handler);
  const port = await listenLocal(server);

  store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } });

  const stored = (apiVersion: string, kind: string, namespace: string | undefined, name: string) => {
    const r = resourceByKind(apiVersion, kind);
    return r && store.get(r, namespace, name);
  };
  const api: KubeApiServer = {
    url: `${useTls ? 'https' : 'http'}://127.0.0.1:${port}`,
    caPem: pki?.ca.caPem,
    clientCertificate: (user: string) => {
      if (!pki) throw new Error('client certificates need tls: true');
      const issued = issueCert(pki.ca, `client-${createHash('sha1').update(user).digest('hex').slice(0, 8)}`, { commonName: user, groups: ['deployers'] });
      return { cert: issued.certPem, key: issued.keyPem };
    },
    requests,
    behave: (match, behaviour) => pods.behave(match, behaviour),
    get observeDelayMs() {
      return knobs.observeDelayMs;
    },
    set observeDelayMs(ms: number) {
      knobs.observeDelayMs = ms;
    },
    get imageIdFor() {
      return knobs.imageIdFor;
    },
    set imageIdFor(f: (image: string) => string) {
      knobs.imageIdFor = f;
    },
    get: (apiVersion, kind, namespace, name) => {
      const s = stored(apiVersion, kind, namespace, name);
      return s ? store.serialize(s) : undefined;
    },
    list: (apiVersion, kind, namespace) => {
      const r = resourceByKind(apiVersion, kind);
      return store
        .all()
        .filter((s) => s.res === r && (!namespace || s.obj.metadata.namespace === namespace))
        .map((s) => store.serialize(s));
    },
    update: (apiVersion, kind, namespace, name, manager, mutate: (obj: Obj) => void) => {
      const s = stored(apiVersion, kind, namespace, name);
      if (!s) throw new Error(`${kind} ${namespace}/${name} not found`);
      return store.update(s, manager, mutate);
    },
    create: (obj, manager) => store.create(obj, manager),
    compact: () => store.compact(),
    fault: (f) => void faults.push({ ...f, times: f.times ?? 1 }),
    closeWatches: () => {
      for (const w of [...store.watchers]) w.end();
    },
    stop: async () => {
      controller.stop();
      for (const w of [...store.watchers]) w.end();
      await closeServer(server);
      if (pki) fs.rmSync(pki.ca.dir, { recursive: true, force: true });
    },
  };
  return api;
}
