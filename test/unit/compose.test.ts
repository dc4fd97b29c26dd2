import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { interpolate } from '../../tasks/lib/compose/interpolate';
import { composeBuild } from '../../tasks/lib/compose/build';
import { loadCompose } from '../../tasks/lib/compose/load';
import { parseYaml, toPlain } from '../../tasks/lib/util/yaml';

const env = { SET: 'value', EMPTY: '' };

test('interpolation follows the compose specification', () => {
  const cases: [string, string][] = [
    ['$SET', 'value'],
    ['${SET}', 'value'],
    ['${UNSET}', ''],
    ['${UNSET:-dflt}', 'dflt'],
    ['${EMPTY:-dflt}', 'dflt'],
    ['${EMPTY-dflt}', ''],
    ['${UNSET-dflt}', 'dflt'],
    ['${SET:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['$$SET', '$SET'],
    ['a-${UNSET:-${SET}}-b', 'a-value-b'],
    ['cost: 5$', 'cost: 5$'],
    ['${UNSET:-{}', '{'], // compose-go's brace counting: a '{' skips the character after it
    ['${UNSET:-{x}}-${SET}', '{x}-value'],
    ['$constructor${toString}', ''], // names are looked up in the environment only
  ];
  for (const [input, expected] of cases) assert.equal(interpolate(input, env, 'test'), expected, input);
});

test('required variables fail naming the variable and the place', () => {
  assert.throws(() => interpolate('${NEEDED:?set the registry}', env, "Compose file 'x.yml'"), /x\.yml.*'NEEDED' is not set: set the registry/);
  assert.throws(() => interpolate('${EMPTY:?}', env, 'here'), /'EMPTY' is empty/);
  assert.equal(interpolate('${EMPTY?}', env, 'here'), '');
  assert.throws(() => interpolate('${SET', env, 'here'), /unclosed/);
  assert.throws(() => interpolate('${1BAD}', env, 'here'), /not a valid variable reference/);
  assert.throws(() => interpolate('${UNSET:-a\nb}', env, 'here'), /unclosed '\$\{'. Close it on the same line/, 'as in compose-go, the } is on the line of the ${');
});

test('hostile YAML is refused with a clear message', () => {
  assert.throws(() => parseYaml('a: 1\na: 2\n', "Compose file 'dup.yml'"), /dup\.yml.*not valid YAML.*(unique|Map keys)/i);
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
  assert.throws(() => toPlain(parseYaml(bomb, 'bomb.yml'), 'bomb.yml'), /bomb\.yml.*aliases/);
  assert.throws(() => parseYaml('services: [unclosed\n', 'broken.yml'), /broken\.yml is not valid YAML/);
});

test('loadCompose merges files, interpolates with .env and resolves build paths', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-compose-'));
  fs.writeFileSync(path.join(dir, '.env'), 'REGISTRY=localhost:5000\nTAG=1\n');
  fs.writeFileSync(
    path.join(dir, 'docker-compose.yml'),
    'services:\n  api:\n    image: ${REGISTRY}/shop/api:${TAG}\n    build:\n      context: ./api\n      args:\n        - MODE=prod\n  cache:\n    image: redis:7\n',
  );
  fs.writeFileSync(path.join(dir, 'override.yml'), 'services:\n  api:\n    build:\n      target: final\n      args:\n        EXTRA: "1"\n');
  const app = loadCompose([path.join(dir, 'docker-compose.yml'), path.join(dir, 'override.yml')], { env: { TAG: '2' } });
  const api = app.services.find((s) => s.name === 'api')!;
  assert.equal(api.image, 'localhost:5000/shop/api:2', 'pipeline variables win over .env');
  const build = composeBuild(api.build, "service 'api'", app.projectDir, app.env);
  assert.equal(build.context, path.join(dir, 'api'));
  assert.equal(build.dockerfile, path.join(dir, 'api', 'Dockerfile'));
  assert.equal(build.target, 'final');
  assert.deepEqual(build.args, { MODE: 'prod', EXTRA: '1' }, 'build args of a later file merge with the earlier list (as `docker-compose config` shows)');
  assert.equal(app.services.find((s) => s.name === 'cache')?.build, undefined);
  assert.throws(() => loadCompose([path.join(dir, 'missing.yml')]), /missing\.yml' does not exist/);
  fs.writeFileSync(path.join(dir, 'empty.yml'), 'version: "3"\n');
  assert.throws(() => loadCompose([path.join(dir, 'empty.yml')]), /no services found/);
});
