// Artifact names: the one rule the tasks and the local runner share (what Azure Pipelines refuses),
// and PushWithDigest refusing a bad artifactName before it connects to the engine.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { artifactNameProblem, checkArtifactName } from '../../tasks/lib/artifact-name';
import { createCredentialSource } from '../../tasks/lib/auth';
import { InputError } from '../../tasks/lib/errors';
import { pushWithDigest } from '../../tasks/lib/push';
import type { RegistryClient } from '../../tasks/lib/registry/client';
import { createTestContext } from '../support/context';
import { pushWithDigestDefaults } from '../support/task-defaults';

test('names Azure Pipelines accepts pass; path separators, its forbidden characters, control characters and dots-only names do not', () => {
  for (const name of ['drop', 'image-lock', 'rendered-compose-qa', 'kubernetes-manifests', 'test results 2026.12', 'a..b', '.hidden']) {
    assert.equal(artifactNameProblem(name), undefined, name);
  }
  const refused: [string, RegExp][] = [
    ['../../../tmp/x', /contains '\/'/],
    ['a\\b', /contains '\\'/],
    ['x:y', /contains ':'/],
    ['"q"', /contains '"'/],
    ['a<b', /contains '<'/],
    ['a>b', /contains '>'/],
    ['a|b', /contains '\|'/],
    ['a*', /contains '\*'/],
    ['a?', /contains '\?'/],
    ['two\nlines', /'two\\nlines' .*contains the control character U\+000A/],
    ['tab\there', /U\+0009/],
    ['.', /dots only/],
    ['..', /dots only/],
    ['   ', /cannot be empty/],
  ];
  for (const [name, message] of refused) assert.match(artifactNameProblem(name) ?? 'accepted', message, JSON.stringify(name));
  assert.throws(() => checkArtifactName('a/b', 'artifactName'), (e: Error) => e instanceof InputError && /^Input 'artifactName': 'a\/b' is not a valid artifact name/.test(e.message));
});

test("PushWithDigest: a bad artifactName is refused before the engine is contacted", async () => {
  let connected = false;
  await assert.rejects(
    pushWithDigest(
      {
        engine: async () => {
          connected = true;
          throw new Error('connected');
        },
        client: {} as RegistryClient,
        credentials: createCredentialSource({ setSecret: () => undefined, useDockerConfig: false }),
        images: ['registry.example.com/shop/web:1'],
        additionalTags: [],
        lockFile: 'image-lock.json',
        publishArtifact: true,
        artifactName: '../../../tmp/x',
        pipeline: {},
        ...pushWithDigestDefaults(),
      },
      createTestContext(),
    ),
    /Input 'artifactName': '\.\.\/\.\.\/\.\.\/tmp\/x' is not a valid artifact name/,
  );
  assert.equal(connected, false);
});
