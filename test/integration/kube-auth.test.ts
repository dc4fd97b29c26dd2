// Authentication to a Kubernetes API server, on both backends with the same assertions: the real
// control plane (test/support/kube-cluster.ts) and the test double (test/support/kube-api.ts).
// Kubeconfigs with a token, a client certificate, an exec credential plugin
// (client.authentication.k8s.io/v1 and v1beta1); the forms a `kubernetes` service connection takes
// (Kubeconfig, ServiceAccount); and the errors for broken kubeconfigs. Who the server took us for
// is asked the server itself (SelfSubjectReview, what `kubectl auth whoami` does).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as YAML from 'yaml';
import { secretForms } from '../../tasks/lib/context';
import { KubeClient } from '../../tasks/lib/kube/client';
import { KubeCredentials } from '../../tasks/lib/kube/credentials';
import { parseKubeconfig } from '../../tasks/lib/kube/kubeconfig';
import { kubeconfigFromEndpoint } from '../../tasks/lib/pipeline/cluster-connection';
import { KubeApiServer, kubeconfigFor as sharedKubeconfigFor, startKubeApi } from '../support/kube-api';
import { startKubeCluster } from '../support/kube-cluster';

type Obj = Record<string, any>;

/** What the authentication tests need of a server: where it is, and identities it accepts. */
interface AuthBackend {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  url: string;
  caPem: string;
  /** A token the server maps to a user; `fresh` makes every earlier token of that name invalid. */
  token(name: string, options?: { fresh?: boolean }): { token: string; username: string };
  clientCertificate(user: string): { cert: string; key: string };
}

function doubleBackend(): AuthBackend {
  let api: KubeApiServer;
  const tokens: Record<string, string> = {};
  let counter = 0;
  const backend: AuthBackend = {
    name: 'the test double',
    async start() {
      api = await startKubeApi({ tokens, stepMs: 20 });
      backend.url = api.url;
      backend.caPem = api.caPem!;
    },
    stop: async () => api?.stop(),
    url: '',
    caPem: '',
    token(name, options = {}) {
      if (options.fresh) for (const [t, user] of Object.entries(tokens)) if (user === name) delete tokens[t];
      const token = `${name}-token-${++counter}`;
      tokens[token] = name;
      return { token, username: name };
    },
    clientCertificate: (user) => api.clientCertificate(user),
  };
  return backend;
}

function clusterBackend(): AuthBackend {
  let cluster: Awaited<ReturnType<typeof startKubeCluster>>;
  const backend: AuthBackend = {
    name: 'the real control plane',
    async start() {
      cluster = await startKubeCluster();
      backend.url = cluster.url;
      backend.caPem = cluster.caPem;
    },
    stop: async () => undefined, // kept for the rest of the run (scripts/test.mjs stops it)
    url: '',
    caPem: '',
    token: (name, options) => cluster.serviceAccountToken(name, options),
    clientCertificate: (user) => cluster.clientCertificate(user),
  };
  return backend;
}

for (const backend of [doubleBackend(), clusterBackend()]) describe(`authentication on ${backend.name}`, () => {
  let work: string;
  before(async () => {
    await backend.start();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kauth-'));
  });
  after(async () => {
    await backend.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const kubeconfigFor = (user: Parameters<typeof sharedKubeconfigFor>[1], options: { insecure?: boolean } = {}) => sharedKubeconfigFor(backend, user, options);

  function clientFor(text: string, secrets: Set<string> = new Set(), source = "Input 'kubernetesServiceConnection'") {
    // The value given, and what TaskContext.setSecret registers for it (its lines, base64).
    const setSecret = (s: string) => [s, ...secretForms(s)].forEach((f) => secrets.add(f));
    const config = parseKubeconfig(text, { source, baseDir: work, setSecret });
    return new KubeClient(config, { setSecret, attempts: 1 });
  }

  /** The user the server took the client's credentials for (kubectl auth whoami). */
  async function whoAmI(client: KubeClient): Promise<string | undefined> {
    const { body } = await client.request<Obj>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    return body.status?.userInfo?.username;
  }

  /** An exec plugin: a node script that records its invocation and prints an ExecCredential. */
  function plugin(name: string, body: string): string {
    const file = path.join(work, `${name}.js`);
    fs.writeFileSync(
      file,
      `const fs = require('fs');
  const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO || '{}');
  fs.appendFileSync(${JSON.stringify(path.join(work, `${name}.log`))}, JSON.stringify({ argv: process.argv.slice(2), info, env: process.env.PLUGIN_SETTING }) + '\\n');
  ${body}
  `,
    );
    return file;
  }

  function runs(name: string): { argv: string[]; info: any; env?: string }[] {
    const log = path.join(work, `${name}.log`);
    return fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
  }

  /** Waits until the server refuses `token` (a real API server caches token reviews for a few seconds). */
  async function refused(token: string): Promise<void> {
    const client = clientFor(kubeconfigFor({ token }));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const status = await whoAmI(client).then(() => 200, (err: { status?: number }) => err.status ?? 0);
      if (status === 401) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`the server still accepts the rotated token after 30 s`);
  }

  describe('kubeconfig authentication', () => {
    test('a bearer token', async () => {
      const secrets = new Set<string>();
      const alice = backend.token('alice');
      const client = clientFor(kubeconfigFor({ token: alice.token }), secrets);
      assert.equal(await whoAmI(client), alice.username);
      assert.ok(secrets.has(alice.token));
      client.close();
    });

    test('a client certificate signed by the cluster CA', async () => {
      const secrets = new Set<string>();
      const cert = backend.clientCertificate('cert-user');
      const client = clientFor(kubeconfigFor({ clientCertificate: cert }), secrets);
      assert.equal(await whoAmI(client), 'cert-user');
      assert.ok(secrets.has(cert.key), 'the private key is registered as a secret');
      assert.ok([...secrets].some((s) => cert.key.includes(s) && s.length > 40 && !s.startsWith('-----')), 'and its lines');
      client.close();
    });

    test('an exec plugin (v1): env, args and KUBERNETES_EXEC_INFO given; token from stdout, cached, renewed once on 401', async () => {
      const script = plugin('exec-v1', `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: fs.readFileSync(${JSON.stringify(path.join(work, 'current-token'))}, 'utf8'), expirationTimestamp: new Date(Date.now() + 3600e3).toISOString() } }));`);
      const first = backend.token('exec-user', { fresh: true });
      fs.writeFileSync(path.join(work, 'current-token'), first.token);
      const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [script, '--cluster', 'test'], env: [{ name: 'PLUGIN_SETTING', value: 'from-kubeconfig' }], interactiveMode: 'Never', provideClusterInfo: true };
      const secrets = new Set<string>();
      const client = clientFor(kubeconfigFor({ exec }), secrets);
      assert.equal(await whoAmI(client), first.username);
      assert.equal(await whoAmI(client), first.username);
      let calls = runs('exec-v1');
      assert.equal(calls.length, 1, 'the credential is cached until it expires');
      assert.deepEqual(calls[0].argv, ['--cluster', 'test']);
      assert.equal(calls[0].env, 'from-kubeconfig');
      assert.equal(calls[0].info.kind, 'ExecCredential');
      assert.equal(calls[0].info.apiVersion, 'client.authentication.k8s.io/v1');
      assert.equal(calls[0].info.spec.interactive, false);
      assert.equal(calls[0].info.spec.cluster.server, backend.url, 'provideClusterInfo passes the cluster');
      assert.ok(secrets.has(first.token));
      assert.ok(!calls[0].argv.some((a) => a.includes(first.token)), 'no token on the command line');
      // The token is rotated on the server: a 401 re-runs the plugin once.
      const second = backend.token('exec-user', { fresh: true });
      await refused(first.token);
      fs.writeFileSync(path.join(work, 'current-token'), second.token);
      assert.equal(await whoAmI(client), second.username);
      calls = runs('exec-v1');
      assert.equal(calls.length, 2);
      client.close();
    });

    test('an exec plugin (v1beta1) that returns a client certificate', async () => {
      const cert = backend.clientCertificate('exec-cert-user');
      const script = plugin('exec-cert', `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { clientCertificateData: ${JSON.stringify(cert.cert)}, clientKeyData: ${JSON.stringify(cert.key)} } }));`);
      const client = clientFor(kubeconfigFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: process.execPath, args: [script] } }));
      assert.equal(await whoAmI(client), 'exec-cert-user');
      client.close();
    });

    test('exec plugin failures are clear', async () => {
      const missing = clientFor(kubeconfigFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'kubelogin-not-installed', args: ['get-token'], installHint: 'Install kubelogin: https://azure.github.io/kubelogin/', interactiveMode: 'Never' } }));
      await assert.rejects(whoAmI(missing), /exec plugin 'kubelogin-not-installed' \(user 'deployer'\) is not installed on the agent \(not found on PATH\)\. Install kubelogin/);
      const failing = plugin('exec-fail', `process.stderr.write('error: AADSTS700016: application not found\\n'); process.exit(3);`);
      await assert.rejects(whoAmI(clientFor(kubeconfigFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [failing] } }))), /exited with code 3: error: AADSTS700016: application not found/);
      const wrong = plugin('exec-wrong', `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'leaky-token-xyz' } }));`);
      const secrets = new Set<string>();
      await assert.rejects(whoAmI(clientFor(kubeconfigFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [wrong] } }), secrets)), /expected an ExecCredential of client\.authentication\.k8s\.io\/v1/);
      assert.ok(secrets.has('leaky-token-xyz'), 'a token is registered before any check can print it');
      assert.throws(() => clientFor(kubeconfigFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'x' } })), /v1alpha1 was removed/);
      assert.throws(() => clientFor(kubeconfigFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'x', interactiveMode: 'Always' } })), /a pipeline cannot answer prompts/);
    });

    test('a wrong token gets 401 with the input named', async () => {
      const client = clientFor(kubeconfigFor({ token: 'nope' }));
      await assert.rejects(whoAmI(client), /refused the credentials of Input 'kubernetesServiceConnection' \(401 Unauthorized\)/);
    });

    test('insecure-skip-tls-verify', async () => {
      const alice = backend.token('alice');
      const client = clientFor(kubeconfigFor({ token: alice.token }, { insecure: true }));
      assert.equal(await whoAmI(client), alice.username);
    });
  });

  describe('kubernetes service connections', () => {
    const endpoint = (auth: Record<string, string>, data: Record<string, string>, url = backend.url) => ({ id: 'k8s-conn', input: 'kubernetesServiceConnection', url, scheme: 'Kubernetes', auth, data });

    test('ServiceAccount: base64 token and certificate, as the secret holds them', async () => {
      const secrets = new Set<string>();
      const sa = backend.token('deployer');
      const config = kubeconfigFromEndpoint(
        endpoint({ apitoken: Buffer.from(sa.token).toString('base64'), serviceaccountcertificate: Buffer.from(backend.caPem).toString('base64') }, { authorizationtype: 'ServiceAccount' }),
        (s) => secrets.add(s),
      );
      assert.ok(secrets.has(sa.token));
      const client = new KubeClient(config, { setSecret: () => undefined });
      assert.equal(await whoAmI(client), sa.username);
      client.close();
    });

    test('Kubeconfig with a cluster context, and acceptUntrustedCerts', async () => {
      const alice = backend.token('alice');
      const doc = YAML.parse(kubeconfigFor({ token: alice.token }));
      doc.contexts.push({ name: 'broken', context: { cluster: 'nowhere', user: 'deployer' } });
      doc['current-context'] = 'broken';
      delete doc.clusters[0].cluster['certificate-authority-data'];
      const text = YAML.stringify(doc);
      const secrets = new Set<string>();
      const config = kubeconfigFromEndpoint(endpoint({ kubeconfig: text, clustercontext: 'test' }, { authorizationtype: 'Kubeconfig', acceptuntrustedcerts: 'true' }), (s) => secrets.add(s));
      assert.ok(secrets.has(alice.token), 'tokens in the kubeconfig are registered before it is parsed');
      const client = new KubeClient(config, { setSecret: () => undefined });
      assert.equal(await whoAmI(client), alice.username);
      client.close();
      assert.throws(() => kubeconfigFromEndpoint(endpoint({ kubeconfig: text }, { authorizationtype: 'Kubeconfig' }), () => undefined), /context 'broken' names cluster 'nowhere', which is not in the kubeconfig/);
    });

    test('invalid kubeconfigs are named', () => {
      const bad = (text: string) => () => kubeconfigFromEndpoint(endpoint({ kubeconfig: text }, { authorizationtype: 'Kubeconfig' }), () => undefined);
      assert.throws(bad('clusters: [\n'), /Input 'kubernetesServiceConnection' \(service connection 'k8s-conn'\): the kubeconfig is not valid YAML/);
      assert.throws(bad('just text'), /is not a kubeconfig/);
      assert.throws(bad('apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n'), /has no current-context and 0 contexts/);
      const azure = YAML.parse(kubeconfigFor({ token: 'x' }));
      azure.users[0].user = { 'auth-provider': { name: 'azure', config: { 'apiserver-id': 'x' } } };
      assert.throws(bad(YAML.stringify(azure)), /uses the auth-provider 'azure', which was removed from Kubernetes clients\. Convert the kubeconfig with `kubelogin convert-kubeconfig`/);
      const noServer = YAML.parse(kubeconfigFor({ token: 'x' }));
      noServer.clusters[0].cluster.server = 'not a url';
      assert.throws(bad(YAML.stringify(noServer)), /has no valid server URL/);
      assert.throws(() => kubeconfigFromEndpoint(endpoint({}, { authorizationtype: 'ServiceAccount' }), () => undefined), /has neither a kubeconfig nor a service account token/);
    });

    test('exec credentials expire and are renewed', async () => {
      const script = plugin('exec-expiring', `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: ${JSON.stringify(backend.token('alice').token)}, expirationTimestamp: new Date(Date.now() + 60000).toISOString() } }));`);
      const config = parseKubeconfig(kubeconfigFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [script], interactiveMode: 'IfAvailable' } }), { source: 'test', setSecret: () => undefined });
      let now = Date.now();
      const credentials = new KubeCredentials(config, { setSecret: () => undefined, now: () => now });
      await credentials.get();
      await credentials.get();
      assert.equal(runs('exec-expiring').length, 1);
      now += 120_000;
      await credentials.get();
      assert.equal(runs('exec-expiring').length, 2, 'an expired credential runs the plugin again');
    });
  });
});
