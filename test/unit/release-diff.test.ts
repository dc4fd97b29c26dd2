// The promotion diff's own logic: states, commit ranges, links and the summary table. Reading what
// runs (Engine API, API server) and the labels (registry config blobs) is tested on real peers in
// test/integration/compose-diff.test.ts and kube-diff.test.ts.
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import {
  Provenance,
  ReleaseDiff,
  commitLink,
  compareRelease,
  diffHeadline,
  diffLines,
  diffTable,
  imageRefs,
  promotionDiff,
  releaseDecision,
  repositoryPage,
  withCommits,
} from '../../tasks/lib/release/diff';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const R = 'registry.example.com/shop';
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const GH = 'https://github.com/contoso/shop';

describe('compareRelease', () => {
  const running = [
    { service: 'web', image: `${R}/web@${D('1')}`, digests: [D('1')] },
    { service: 'api', image: `${R}/api@${D('2')}`, digests: [D('2')] },
    { service: 'old', image: `${R}/old@${D('3')}`, digests: [D('3')] },
    { service: 'moved', image: `${R}/moved@${D('4')}`, digests: [D('4')] },
    { service: 'half', image: `${R}/half@${D('5')}`, digests: [D('5'), D('6')] },
    { service: 'tagged', image: `${R}/tagged:1.0`, digests: [] },
  ];
  const release = [
    { service: 'web', image: `${R}/web@${D('9')}`, digest: D('9') },
    { service: 'api', image: `${R}/api@${D('2')}`, digest: D('2') },
    { service: 'new', image: `${R}/new@${D('7')}`, digest: D('7') },
    { service: 'moved', image: `other.example.com/moved@${D('4')}`, digest: D('4') },
    { service: 'half', image: `${R}/half@${D('6')}`, digest: D('6') },
    { service: 'tagged', image: `${R}/tagged:1.0` },
  ];
  const states = Object.fromEntries(compareRelease(running, release).map((s) => [s.service, s.state]));

  test('unchanged only when the one digest running is the lock\'s, in the same repository', () => {
    assert.deepEqual(states, { api: 'unchanged', half: 'changed', moved: 'changed', new: 'added', old: 'removed', tagged: 'changed', web: 'changed' });
  });

  test('sorted by service, with the digests on both sides', () => {
    const diff = compareRelease(running, release);
    assert.deepEqual(diff.map((s) => s.service), ['api', 'half', 'moved', 'new', 'old', 'tagged', 'web']);
    const web = diff.find((s) => s.service === 'web')!;
    assert.deepEqual([web.digestsNow, web.digestNext], [[D('1')], D('9')]);
    const old = diff.find((s) => s.service === 'old')!;
    assert.deepEqual([old.digestsNow, old.digestNext, old.imageNext], [[D('3')], undefined, undefined]);
  });
});

describe('commit ranges and links', () => {
  const services = compareRelease(
    [
      { service: 'web', image: `${R}/web@${D('1')}`, digests: [D('1')] },
      { service: 'api', image: `${R}/api@${D('2')}`, digests: [D('2')] },
      { service: 'gone', image: `${R}/gone@${D('3')}`, digests: [D('3')] },
      { service: 'elsewhere', image: `${R}/elsewhere@${D('4')}`, digests: [D('4')] },
    ],
    [
      { service: 'web', image: `${R}/web@${D('9')}`, digest: D('9') },
      { service: 'api', image: `${R}/api@${D('2')}`, digest: D('2') },
      { service: 'fresh', image: `${R}/fresh@${D('7')}`, digest: D('7') },
      { service: 'elsewhere', image: `${R}/elsewhere@${D('8')}`, digest: D('8') },
      { service: 'unlabelled', image: `${R}/unlabelled@${D('6')}`, digest: D('6') },
    ],
  );
  const provenance = new Map<string, Provenance>([
    [`${R}/web@${D('1')}`, { revision: A, source: GH }],
    [`${R}/web@${D('9')}`, { revision: B, source: `${GH}.git` }],
    [`${R}/api@${D('2')}`, { revision: A, source: GH }],
    [`${R}/gone@${D('3')}`, { revision: A, source: GH }],
    [`${R}/fresh@${D('7')}`, { revision: B, source: 'https://dev.azure.com/contoso/shop/_git/fresh' }],
    [`${R}/elsewhere@${D('4')}`, { revision: A, source: 'https://github.com/contoso/old-home' }],
    [`${R}/elsewhere@${D('8')}`, { revision: B, source: 'https://github.com/contoso/new-home' }],
  ]);
  const diff = withCommits(services, provenance);
  const by = (name: string) => diff.services.find((s) => s.service === name)!;

  test('every image is read once, by repository@digest', () => {
    assert.deepEqual(imageRefs(services).sort(), [
      `${R}/api@${D('2')}`,
      `${R}/elsewhere@${D('4')}`,
      `${R}/elsewhere@${D('8')}`,
      `${R}/fresh@${D('7')}`,
      `${R}/gone@${D('3')}`,
      `${R}/unlabelled@${D('6')}`,
      `${R}/web@${D('1')}`,
      `${R}/web@${D('9')}`,
    ]);
  });

  test('a changed service links the compare page of its range (the .git of a clone URI ignored)', () => {
    assert.deepEqual([by('web').revisionNow, by('web').revisionNext], [A, B]);
    assert.equal(by('web').link, `${GH}/compare/${A}...${B}`);
  });

  test('an unchanged service links its one commit; an added or removed one its own commit', () => {
    assert.equal(by('api').link, `${GH}/commit/${A}`);
    assert.equal(by('fresh').link, `https://dev.azure.com/contoso/shop/_git/fresh/commit/${B}`);
    assert.equal(by('gone').link, `${GH}/commit/${A}`);
  });

  test('a range across two repositories is no range: only the new commit is linked', () => {
    assert.equal(by('elsewhere').link, `https://github.com/contoso/new-home/commit/${B}`);
  });

  test('no labels: no link, and changedServices lists every service that is not unchanged', () => {
    assert.equal(by('unlabelled').link, undefined);
    assert.deepEqual(diff.changedServices, ['elsewhere', 'fresh', 'gone', 'unlabelled', 'web']);
  });

  test('the summary table: one row per service, short digests, the range linked', () => {
    const table = diffTable(diff).split('\n');
    assert.equal(table[0], '| service | state | digest now | digest to come | commits |');
    assert.equal(table.length, 2 + 6);
    assert.equal(table.find((l) => l.startsWith('| web '))!, `| web | changed | \`sha256:111111111111\` | \`sha256:999999999999\` | [aaaaaaaaaaaa…bbbbbbbbbbbb](${GH}/compare/${A}...${B}) |`);
    assert.equal(table.find((l) => l.startsWith('| api '))!, `| api | unchanged | \`sha256:222222222222\` | \`sha256:222222222222\` | [aaaaaaaaaaaa (same commit)](${GH}/commit/${A}) |`);
    assert.equal(table.find((l) => l.startsWith('| gone '))!, `| gone | removed | \`sha256:333333333333\` | — | [was aaaaaaaaaaaa](${GH}/commit/${A}) |`);
    assert.equal(table.find((l) => l.startsWith('| unlabelled '))!, '| unlabelled | added | — | `sha256:666666666666` | unknown |');
  });

  test('the log lines and the headline', () => {
    assert.match(diffLines(diff).find((l) => l.startsWith('web:'))!, new RegExp(`^web: changed; ${D('1')} → ${D('9')}; commits a{12}…b{12} \\(${GH}/compare/`));
    assert.equal(diffHeadline(diff), 'The release changes elsewhere, fresh, gone, unlabelled, web (2 changed, 2 added, 1 removed, 1 unchanged).');
  });
});

test('a revision label cannot inject a logging command into the log', () => {
  const [service] = compareRelease([], [{ service: 'web', image: `${R}/web@${D('1')}`, digest: D('1') }]);
  const diff = withCommits([service], new Map([[`${R}/web@${D('1')}`, { revision: '##vso[task.setvariable variable=x]1' }]]));
  assert.doesNotMatch(diffLines(diff)[0], /##vso\[/);
});

describe('repositoryPage', () => {
  const cases: [string, string | undefined][] = [
    ['https://github.com/contoso/shop', 'https://github.com/contoso/shop'],
    ['https://github.com/contoso/shop.git', 'https://github.com/contoso/shop'],
    ['git@github.com:contoso/shop.git', 'https://github.com/contoso/shop'],
    ['https://github.com/contoso/shop/tree/main/web', 'https://github.com/contoso/shop'],
    ['https://contoso@dev.azure.com/contoso/Shop%20App/_git/shop', 'https://dev.azure.com/contoso/Shop%20App/_git/shop'],
    ['https://contoso.visualstudio.com/Shop/_git/shop', 'https://contoso.visualstudio.com/Shop/_git/shop'],
    ['https://tfs.example.com/tfs/DefaultCollection/Shop/_git/shop', 'https://tfs.example.com/tfs/DefaultCollection/Shop/_git/shop'],
    ['https://gitlab.com/contoso/shop', undefined],
    ['https://github.com/contoso', undefined],
    ['not a url', undefined],
    ['ssh://git@ssh.dev.azure.com/v3/contoso/Shop/shop', undefined],
  ];
  for (const [source, page] of cases) {
    test(`${source} → ${page ?? 'no page'}`, () => assert.equal(repositoryPage(source)?.url, page));
  }

  test('Azure Repos compares two commits on branchCompare (GC = a commit)', () => {
    assert.equal(commitLink('https://dev.azure.com/contoso/Shop/_git/shop', A, B), `https://dev.azure.com/contoso/Shop/_git/shop/branchCompare?baseVersion=GC${A}&targetVersion=GC${B}&_a=commits`);
    assert.equal(commitLink(GH, undefined, undefined), undefined);
    assert.equal(commitLink('https://gitlab.com/contoso/shop', A, B), undefined);
  });
});

describe('releaseDecision', () => {
  const unchanged: ReleaseDiff = { services: [], changedServices: [] };
  const changed: ReleaseDiff = { services: [], changedServices: ['web'] };
  test('diffOnly deploys nothing, whatever changes', () => {
    assert.equal(releaseDecision(changed, { diffOnly: true, deployIfUnchanged: true }).deploy, false);
  });
  test('deployIfUnchanged: false skips only a release that changes nothing, saying why', () => {
    const skip = releaseDecision(unchanged, { diffOnly: false, deployIfUnchanged: false });
    assert.ok(!skip.deploy && /changes nothing.*deployIfUnchanged is false/.test(skip.reason));
    assert.equal(releaseDecision(changed, { diffOnly: false, deployIfUnchanged: false }).deploy, true);
    assert.equal(releaseDecision(unchanged, { diffOnly: false, deployIfUnchanged: true }).deploy, true);
  });
});

test('a registry the agent cannot reach costs one image\'s attempts, not every image\'s, and one warning more', async () => {
  // Every connection is cut at once: a network failure, as an unknown host or a firewall gives.
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  try {
    const release = ['a', 'b', 'c', 'd'].map((service, i) => ({ service, image: `${host}/shop/${service}@${D(String(i + 1))}`, digest: D(String(i + 1)) }));
    const warnings: string[] = [];
    const ctx = { warn: (m: string) => warnings.push(m), debug: () => undefined, setSecret: () => undefined, signal: new AbortController().signal };
    const diff = await promotionDiff([], release, undefined, ctx);
    assert.deepEqual(diff.services.map((s) => [s.service, s.state, s.revisionNext]), [['a', 'added', undefined], ['b', 'added', undefined], ['c', 'added', undefined], ['d', 'added', undefined]]);
    assert.equal(connections, 2, 'the first image tried twice (its attempts), the other three not at all');
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /^Promotion diff: the labels of 127\.0\.0\.1:\d+\/shop\/a@sha256:1{64} could not be read/);
    assert.equal(warnings[1], `Promotion diff: ${host} could not be reached, so the commits of its 3 other image(s) are shown as unknown too.`);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
