// Pinning users' manifests by parsed repository, in place: comments and formatting survive; every
// pod-bearing kind (CronJob and List items included) is pinned; unknown kinds pass through; images
// missing from the lock fail naming the input unless allowUnpinned. Hostile YAML is refused.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { readLock } from '../../tasks/lib/lock/file';
import { indexLock } from '../../tasks/lib/lock/pin';
import { globToRegExp } from '../../tasks/lib/kube/glob';
import { parseManifestText, readManifests, renderManifestFiles } from '../../tasks/lib/kube/manifests';
import { Pinner, pinManifestFiles } from '../../tasks/lib/kube/pin';
import { render } from '../../tasks/lib/kube/render';

const DIR = path.join(__dirname, '..', 'fixtures', 'kube');
const lock = readLock(path.join(DIR, 'lock.json'));
const D = (n: string) => `sha256:${n.repeat(64)}`;

test('manifests are pinned in place; comments, quotes and order survive', () => {
  const files = readManifests(['manifests/*.yaml'], DIR);
  assert.deepEqual(files.map((f) => path.basename(f.file)), ['app.yaml', 'list.yaml']);
  const pinner = new Pinner({ lock: indexLock(lock), allowUnpinned: false });
  pinManifestFiles(files, pinner);
  const report = pinner.finish();
  const text = renderManifestFiles(files, DIR);
  // Comments survive.
  for (const comment of ['# Shop manifests, kept by hand.', '# the storefront', '# image first in the list', '# the worker shares the web prefix', "# already carries an old digest: the lock's digest wins", '# not a pod spec: untouched']) {
    assert.ok(text.includes(comment), `comment lost: ${comment}`);
  }
  // Every pod image is pinned by repository, not by text.
  assert.ok(text.includes(`- image: registry.example.com/shop/api@${D('2')} # image first in the list`));
  assert.ok(text.includes(`- image: registry.example.com/shop/web@${D('1')}`));
  assert.ok(text.includes(`image: "registry.example.com/shop/web-worker@${D('6')}"`), 'shared prefix: web-worker gets its own digest, quotes kept');
  assert.ok(text.includes(`image: registry.example.com/shop/api@${D('2')}\n`), 'the CronJob template is pinned, an old digest replaced');
  assert.ok(text.includes(`image: docker.io/library/postgres@${D('5')}`), 'List items are pinned; postgres:16 is docker.io/library/postgres');
  assert.ok(text.includes(`image: registry.example.com/shop/agent@${D('4')}`));
  assert.ok(text.includes('image: registry.example.com/shop/web:1.0 # not a pod spec: untouched'), 'unknown kinds pass through untouched');
  assert.equal(report.images.length, 6);
  assert.ok(report.warnings.some((w) => w.includes(`carries digest ${D('9')}`)));
  // The plain objects agree with the documents.
  const cron = files[0].documents[2].objects[0] as any;
  assert.equal(cron.spec.jobTemplate.spec.template.spec.containers[0].image, `registry.example.com/shop/api@${D('2')}`);
  // Nothing else changed: the source with exactly the image references replaced.
  const original = fs.readFileSync(path.join(DIR, 'manifests', 'app.yaml'), 'utf8');
  const expected = original
    .replace('image: registry.example.com/shop/api:1.0 # image first', `image: registry.example.com/shop/api@${D('2')} # image first`)
    .replace('- image: registry.example.com/shop/web:1.0\n', `- image: registry.example.com/shop/web@${D('1')}\n`)
    .replace('"registry.example.com/shop/web-worker:1.0"', `"registry.example.com/shop/web-worker@${D('6')}"`)
    .replace(`api@${D('9')}`, `api@${D('2')}`);
  const rendered = text.split('# Source: manifests/list.yaml')[0].replace(/^# Source:.*\n/gm, '').replace(/^---\n/gm, '');
  assert.equal(rendered.trimEnd(), expected.replace(/^---\n/gm, '').trimEnd());
});

test('an image missing from the lock fails naming the lock input, unless allowUnpinned', () => {
  const text = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - {name: c, image: "other.example.com/tool:2"}\n    - {name: d, image: "other.example.com/tool@sha256:' + '7'.repeat(64) + '"}\n';
  const strict = new Pinner({ lock: indexLock(lock), allowUnpinned: false, lockInput: 'lockFile' });
  pinManifestFiles([parseManifestText(text, 'p.yaml')], strict);
  assert.throws(() => strict.finish(), (err: Error) => /1 image\(s\) are not in the image lock \(input 'lockFile'\)/.test(err.message) && err.message.includes('Pod p, container \'c\': other.example.com/tool:2') && /allowUnpinned: true/.test(err.message));
  const loose = new Pinner({ lock: indexLock(lock), allowUnpinned: true });
  pinManifestFiles([parseManifestText(text, 'p.yaml')], loose);
  const report = loose.finish();
  assert.deepEqual(report.images.map((i) => i.source), ['unpinned', 'manifest-digest']);
  assert.ok(report.warnings[0].startsWith('Not pinned (allowUnpinned)'));
  const noLock = new Pinner({ allowUnpinned: false });
  pinManifestFiles([parseManifestText(text, 'p.yaml')], noLock);
  assert.throws(() => noLock.finish(), /No image lock was given \(input 'lockFile'\)/);
});

test('hostile or broken manifests are refused with the file and document named', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-kpin-'));
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
  fs.writeFileSync(path.join(dir, 'bomb.yaml'), `${bomb.join('\n')}\n`);
  const started = Date.now();
  assert.throws(() => readManifests(['bomb.yaml'], dir), /Input 'manifests': manifest '.*bomb\.yaml', document 1 is not usable YAML: .*aliases/);
  assert.ok(Date.now() - started < 2000, 'an alias bomb fails fast');
  fs.writeFileSync(path.join(dir, 'notyaml.yaml'), 'kind: Deployment\n  metadata: : [\n');
  assert.throws(() => readManifests(['notyaml.yaml'], dir), /Input 'manifests': manifest '.*notyaml\.yaml' is not valid YAML/);
  fs.writeFileSync(path.join(dir, 'dup.yaml'), 'apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: x}\n');
  assert.throws(() => readManifests(['dup.yaml'], dir), /not valid YAML: Map keys must be unique/);
  fs.writeFileSync(path.join(dir, 'noname.yaml'), 'apiVersion: v1\nkind: ConfigMap\ndata: {}\n');
  assert.throws(() => readManifests(['noname.yaml'], dir), /document 1 \(ConfigMap\) has no metadata.name/);
  assert.throws(() => readManifests(['missing/*.yaml'], dir), /Input 'manifests': the pattern 'missing\/\*\.yaml' matches no file/);
  assert.throws(() => readManifests(['nope.yaml'], dir), /Input 'manifests': 'nope\.yaml' does not exist/);
  fs.writeFileSync(path.join(dir, 'twice.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
  assert.throws(() => render({ source: 'manifests', manifests: ['twice.yaml'], baseDir: dir, lockInput: 'lockFile', allowUnpinned: true, imagePullSecrets: [], namespace: 'default' }), /ConfigMap 'x' is defined twice/);
});

test('globs', () => {
  assert.ok(globToRegExp('k8s/**/*.yaml').test('k8s/a/b/c.yaml'));
  assert.ok(globToRegExp('k8s/**/*.yaml').test('k8s/c.yaml'));
  assert.ok(!globToRegExp('k8s/*.yaml').test('k8s/a/c.yaml'));
  assert.ok(globToRegExp('*.{yaml,yml}').test('x.yml'));
  assert.ok(globToRegExp('file?.yaml').test('file1.yaml'));
});

test('render: pull secrets join every pod spec, Secret values are redacted in the artifact', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-krender-'));
  fs.writeFileSync(
    path.join(dir, 'm.yaml'),
    `apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata:\n  password: ${Buffer.from('hunter2-very-secret').toString('base64')}\n---\n` +
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  selector: {matchLabels: {a: w}}\n  template:\n    metadata: {labels: {a: w}}\n    spec:\n      imagePullSecrets: [{name: existing}]\n      containers: [{name: w, image: "registry.example.com/shop/web:1.0"}]\n',
  );
  const r = render({ source: 'manifests', manifests: ['m.yaml'], baseDir: dir, lock, lockInput: 'lockFile', allowUnpinned: false, imagePullSecrets: ['regcred'], namespace: 'default' });
  assert.ok(!r.text.includes(Buffer.from('hunter2-very-secret').toString('base64')));
  assert.ok(r.text.includes(`password: ${Buffer.from('(redacted by KubernetesDeploy: the value is applied to the cluster but not published)').toString('base64')}`), 'redacted, and still base64 as `data` must be');
  assert.ok(r.secretValues.includes('hunter2-very-secret'));
  assert.ok(r.text.includes('imagePullSecrets: [{name: existing}, {name: regcred}]'), 'the flow style of the source is kept');
  const dep = r.items[1].object as any;
  assert.deepEqual(dep.spec.template.spec.imagePullSecrets, [{ name: 'existing' }, { name: 'regcred' }]);
  // The Secret applied keeps its real value.
  assert.equal((r.items[0].object as any).data.password, Buffer.from('hunter2-very-secret').toString('base64'));
});

test('render: a List of one item is edited through its item (Secret redacted, pull secret added)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-krender-list-'));
  const password = Buffer.from('hunter2-in-a-list').toString('base64');
  fs.writeFileSync(
    path.join(dir, 'm.yaml'),
    `apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Secret\n    metadata: {name: creds}\n    data: {password: ${password}}\n---\n` +
      'apiVersion: v1\nkind: List\nitems:\n  - apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: w}\n    spec:\n      selector: {matchLabels: {a: w}}\n      template:\n        metadata: {labels: {a: w}}\n        spec:\n          containers: [{name: w, image: "registry.example.com/shop/web:1.0"}]\n',
  );
  const r = render({ source: 'manifests', manifests: ['m.yaml'], baseDir: dir, lock, lockInput: 'lockFile', allowUnpinned: false, imagePullSecrets: ['regcred'], namespace: 'default' });
  assert.ok(!r.text.includes(password), 'the Secret value is not published');
  assert.match(r.text, /password: KHJlZGFjdGVkIGJ5IEt1YmVybmV0ZXNEZXBsb3k6/, 'base64 of "(redacted by KubernetesDeploy: …"');
  assert.ok(r.text.includes(`image: "registry.example.com/shop/web@${D('1')}"`));
  assert.match(r.text, /imagePullSecrets:\n\s+- name: regcred/);
  fs.rmSync(dir, { recursive: true, force: true });
});
