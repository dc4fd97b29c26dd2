// Differential tests of the compose loader against Compose v2 (the oracle): small generated
// projects (a base and overrides, extends across files, include:, !reset/!override), each read
// by `docker compose config --format json` (the harness's Compose v2, -f for each file,
// --project-directory, an environment holding only what the case sets) and by loadCompose. Our
// model, brought to Compose's canonical form by test/support/compose-canonical.ts, must equal
// Compose's output as a whole. A case that Compose refuses must be refused by us too, with a
// message that names the file or service, the key, and what to do.
// Compose runs once per project, two at a time, before the comparisons.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCompose } from '../../tasks/lib/compose/load';
import { renderCompose } from '../../tasks/lib/compose/render';
import { ComposeProject as Case, Oracle, assertAgreesWithCompose, composeConfig, lines, pool, writeProject } from '../support/compose-oracle';
import { composeV2Binary } from '../support/stack';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'col-v2merge-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const B = ['compose.yml', 'override.yml'];

const CASES: Case[] = [
  // --- keys nothing special-cases merge, never replaced -------------------------------------
  {
    name: 'annotations and deploy.labels in both forms',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    annotations: {a: "1", b: "2"}', '    deploy: {labels: [x=1, y=2], replicas: 2}'),
      'override.yml': lines('services:', '  web:', '    annotations: [b=3, c=4]', '    deploy: {labels: [y=3, z=4]}'),
    },
  },
  {
    name: 'deploy.labels list over mapping, deploy resources merged',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    deploy: {labels: {x: "1"}, resources: {limits: {cpus: "0.5"}}}'),
      'override.yml': lines('services:', '  web:', '    deploy: {labels: [x=2, w=0], resources: {limits: {memory: 64M}}}'),
    },
  },
  {
    name: 'dns_opt appended, a repeated option once',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    dns_opt: [use-vc, ndots:2]'),
      'override.yml': lines('services:', '  web:', '    dns_opt: [timeout:3, use-vc]'),
    },
  },
  {
    name: 'build.additional_contexts and build.tags merged',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  app:', '    build:', '      context: ./app', '      additional_contexts: {base: ./base, img: "docker-image://alpine:3"}', '      tags: [reg.example.com/app:1, reg.example.com/app:latest]'),
      'override.yml': lines('services:', '  app:', '    build:', '      additional_contexts: [extra=./extra, base=./base2]', '      tags: [reg.example.com/app:qa]'),
    },
  },
  {
    name: 'top-level network labels and ipam merged',
    compose: B,
    files: {
      'compose.yml': lines(
        'services:',
        '  web: {image: nginx, networks: [front]}',
        'networks:',
        '  front:',
        '    labels: {team: shop, tier: web}',
        '    ipam: {driver: default, config: [{subnet: 10.5.0.0/24, gateway: 10.5.0.1}]}',
      ),
      'override.yml': lines('networks:', '  front:', '    labels: [tier=edge, env=qa]', '    ipam: {options: {o: "1"}, config: [{subnet: 10.5.0.0/24, ip_range: 10.5.0.0/25}]}'),
    },
  },
  {
    name: 'top-level volume labels merged, driver kept',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  db: {image: pg, volumes: ["data:/var/lib/data"]}', 'volumes:', '  data: {driver: local, labels: [a=1]}'),
      'override.yml': lines('volumes:', '  data: {labels: {b: "2"}}'),
    },
  },
  {
    name: 'build args and labels: a list over a mapping',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  app:', '    build: {context: ., args: {A: "1", B: "2"}, labels: [l1=a]}'),
      'override.yml': lines('services:', '  app:', '    build: {args: [B=3, C=4], labels: {l2: b}}'),
    },
  },
  // --- special rules ------------------------------------------------------------------------
  {
    name: 'extra_hosts in host:ip and host=ip forms across three files',
    compose: ['compose.yml', 'override.yml', 'late.yml'],
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    extra_hosts: ["db.local:10.0.0.2", "cache.local=10.0.0.3"]'),
      'override.yml': lines('services:', '  web:', '    extra_hosts: ["db.local=10.0.0.2", "api.local:10.0.0.4", "cache.local=10.0.0.3"]'),
      'late.yml': lines('services:', '  web:', '    extra_hosts: {v6.local: "::1", multi.local: [10.0.0.8, 10.0.0.9]}'),
    },
  },
  {
    name: 'extra_hosts mapping over list, IPv6 in brackets',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    extra_hosts: {a.local: 10.1.1.1}'),
      'override.yml': lines('services:', '  web:', '    extra_hosts: ["b.local=[::2]", "a.local=10.1.1.1"]'),
    },
  },
  {
    name: 'dns and dns_search: single values, no duplicates, in order',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    dns: 1.1.1.1', '    dns_search: [b.example, a.example]'),
      'override.yml': lines('services:', '  web:', '    dns: [8.8.8.8, 1.1.1.1]', '    dns_search: a.example'),
    },
  },
  {
    name: 'tmpfs: a single value, no duplicates',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    tmpfs: /run'),
      'override.yml': lines('services:', '  web:', '    tmpfs: [/tmp, /run]'),
    },
  },
  {
    name: 'env_file: no duplicates, in order, the later file winning',
    compose: B,
    files: {
      'a.env': 'X=from-a\nA=a\n',
      'b.env': 'X=from-b\nB=b\n',
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    env_file: a.env', '    environment: {OWN: "1"}'),
      'override.yml': lines('services:', '  web:', '    env_file: [b.env, a.env, {path: missing.env, required: false}]'),
    },
  },
  {
    name: 'secrets keyed by target',
    compose: B,
    files: {
      's1.txt': '1',
      's2.txt': '2',
      's3.txt': '3',
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    secrets: [s1, {source: s2, target: /etc/s2}]', 'secrets:', '  s1: {file: ./s1.txt}', '  s2: {file: ./s2.txt}', '  s3: {file: s3.txt}'),
      'override.yml': lines('services:', '  web:', '    secrets: [{source: s3, target: /run/secrets/s1}, {source: s2, target: /etc/s2, mode: 0440}, s2]'),
    },
  },
  {
    name: 'configs keyed by target',
    compose: B,
    files: {
      'c1.txt': '1',
      'c2.txt': '2',
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    configs: [c1, {source: c2, target: /etc/c2}]', 'configs:', '  c1: {file: ./c1.txt}', '  c2: {file: ./c2.txt}'),
      'override.yml': lines('services:', '  web:', '    configs: [{source: c2, target: /c1}, {source: c1, target: /etc/c2}]'),
    },
  },
  {
    name: 'security_opt by whole value',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    security_opt: ["label:user:U", "seccomp:unconfined"]'),
      'override.yml': lines('services:', '  web:', '    security_opt: ["label:user:V", "seccomp:unconfined", "no-new-privileges:true"]'),
    },
  },
  {
    name: 'links with aliases',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    links: [db, "db:database", cache]', '  db: {image: pg}', '  cache: {image: redis}'),
      'override.yml': lines('services:', '  web:', '    links: ["db:db2", cache, "db:database"]'),
    },
  },
  {
    name: 'depends_on merged per service, conditions kept',
    compose: ['compose.yml', 'override.yml', 'late.yml'],
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    depends_on: {db: {condition: service_healthy}}', '  db: {image: pg}', '  cache: {image: redis}', '  migrate: {image: m}'),
      'override.yml': lines('services:', '  web:', '    depends_on: [cache, db]'),
      'late.yml': lines('services:', '  web:', '    depends_on: {migrate: {condition: service_completed_successfully, required: false}, db: {restart: true}}'),
    },
  },
  {
    name: 'logging with another driver drops the options',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    logging: {driver: json-file, options: {max-size: 1m, max-file: "3"}}'),
      'override.yml': lines('services:', '  web:', '    logging: {driver: syslog, options: {tag: web}}'),
    },
  },
  {
    name: 'logging with the same driver or none merges the options',
    compose: ['compose.yml', 'override.yml', 'late.yml'],
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    logging: {driver: json-file, options: {max-size: 1m}}'),
      'override.yml': lines('services:', '  web:', '    logging: {driver: json-file, options: {max-file: "3"}}'),
      'late.yml': lines('services:', '  web:', '    logging: {options: {max-size: 5m}}'),
    },
  },
  {
    name: 'duplicates within one file removed as Compose does',
    compose: ['compose.yml'],
    files: {
      'a.env': 'A=1\n',
      's.txt': 's',
      'compose.yml': lines(
        'services:',
        '  web:',
        '    image: nginx',
        '    dns: [1.1.1.1, 8.8.8.8, 1.1.1.1]',
        '    volumes: ["./a:/data", "./b:/data", "/anon"]',
        '    ports: ["8080:80", "8080:80/tcp", "0.0.0.0:8080:80", {target: 80, published: 8080}]',
        '    env_file: [a.env, a.env]',
        '    secrets: [s, {source: s, target: /run/secrets/s, mode: 0400}]',
        '    environment: [A=1, A=2, B=3]',
        '    labels: [x=1, x=2]',
        '    cap_add: [NET_ADMIN, NET_ADMIN]',
        '    expose: [80, "80", 81]',
        'secrets:',
        '  s: {file: s.txt}',
      ),
    },
  },
  {
    name: 'ports: keyed by ip, published, target and protocol; ranges split where they meet',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    ports: ["8080:80", "9000", "7000-7001:70-71", {target: 81, published: "8081"}]'),
      'override.yml': lines('services:', '  web:', '    ports: ["7001:71/tcp", "127.0.0.1:8080:80", "8081:81", "9000", "53:53/udp"]'),
    },
  },
  {
    name: 'volumes keyed by container path, short and long syntax',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    volumes: ["./src:/src", "data:/data", "/cache"]', 'volumes:', '  data: {}', '  other: {}'),
      'override.yml': lines('services:', '  web:', '    volumes: [{type: volume, source: other, target: /src}, "./data:/data:ro", "/extra"]'),
    },
  },
  {
    name: 'environment: list and mapping, bare names from the environment',
    compose: B,
    env: { FROM_ENV: 'env-value', TAG: '2' },
    files: {
      'compose.yml': lines('services:', '  web:', '    image: "nginx:${TAG}"', '    environment: [A=1, B=2, FROM_ENV, UNSET_BARE]'),
      'override.yml': lines('services:', '  web:', '    environment: {B: "3", C: null, D: 4}'),
    },
  },
  {
    name: 'command, entrypoint and healthcheck.test replaced; healthcheck options merged',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    command: ["serve", "--port", "80"]', '    entrypoint: /entry.sh', '    healthcheck: {test: ["CMD", "true"], interval: 10s, retries: 3}'),
      'override.yml': lines('services:', '  web:', '    command: serve --port "8080 x"', '    entrypoint: [/other.sh]', '    healthcheck: {test: curl -f localhost, timeout: 2s}'),
    },
  },
  {
    name: 'cap_add, volumes_from, group_add, external_links: a value already there is not repeated',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    cap_add: [NET_ADMIN, SYS_TIME]', '    volumes_from: [db]', '    group_add: [audio]', '    external_links: [e1]', '  db: {image: pg}'),
      'override.yml': lines('services:', '  web:', '    cap_add: [CHOWN, NET_ADMIN]', '    volumes_from: [db, "db:ro"]', '    group_add: [audio, video]', '    external_links: [e1, e2]'),
    },
  },
  {
    name: 'x-* extensions merged deeply at the top level',
    compose: B,
    files: {
      'compose.yml': lines('x-common: {a: 1, list: [1, 3], nested: {k: v}}', 'services:', '  web: {image: nginx, x-own: 1}'),
      'override.yml': lines('x-common: {list: [1, 2], nested: {l: w}}', 'x-new: true'),
    },
  },
  {
    name: 'a null in a later file keeps the earlier value',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    environment: {A: "1"}', '    restart: always'),
      'override.yml': lines('services:', '  web:', '    image: null', '    environment:', '    restart: unless-stopped'),
    },
  },
  {
    name: 'ulimits and sysctls across three files',
    compose: ['compose.yml', 'override.yml', 'late.yml'],
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 64}', '    sysctls: [net.core.somaxconn=1024]'),
      'override.yml': lines('services:', '  web:', '    ulimits: {nofile: {soft: 4096}}', '    sysctls: {net.ipv4.tcp_syncookies: "0"}'),
      'late.yml': lines('services:', '  web:', '    ulimits: {nproc: 128, core: 0}', '    sysctls: [net.core.somaxconn=2048]'),
    },
  },
  {
    name: 'service networks: list and mapping merged, aliases unique',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    networks: [front, back]', 'networks:', '  front: {}', '  back: {}', '  admin: {}'),
      'override.yml': lines('services:', '  web:', '    networks:', '      front: {aliases: [www, web]}', '      admin: {aliases: [a]}'),
    },
  },
  {
    name: 'networks aliases appended without repeats',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    networks: {front: {aliases: [www], priority: 1}}', 'networks:', '  front: {}'),
      'override.yml': lines('services:', '  web:', '    networks: {front: {aliases: [web, www]}}'),
    },
  },
  {
    name: 'build as a path under a build mapping',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  app:', '    image: reg.example.com/app:1', '    build: ./app'),
      'override.yml': lines('services:', '  app:', '    build: {dockerfile: Dockerfile.qa, target: qa, args: [MODE=qa]}'),
    },
  },
  {
    name: 'build secrets: an earlier file\'s short entry is long by the time a later file merges',
    compose: B,
    files: {
      'tok.txt': 't',
      'compose.yml': lines('services:', '  app:', '    build: {context: ., secrets: [tok]}', 'secrets:', '  tok: {file: tok.txt}'),
      'override.yml': lines('services:', '  app:', '    build: {secrets: [tok, {source: tok}]}'),
    },
  },
  {
    name: 'profiles merged without repeats, active profile chosen',
    compose: B,
    profiles: ['debug'],
    files: {
      'compose.yml': lines('services:', '  web: {image: nginx}', '  tools: {image: busybox, profiles: [debug]}'),
      'override.yml': lines('services:', '  tools: {profiles: [debug, ops]}'),
    },
  },
  // --- extends ------------------------------------------------------------------------------
  {
    name: 'extends of a base with depends_on, volumes_from and network_mode: service from another file',
    compose: ['compose.yml'],
    files: {
      'compose.yml': lines('services:', '  web:', '    extends: {file: sub/base.yml, service: base}', '    image: web', '  db: {image: pg}', '  other: {image: o}'),
      'sub/base.yml': lines(
        'services:',
        '  base:',
        '    image: b',
        '    depends_on: {db: {condition: service_healthy}}',
        '    volumes_from: [other]',
        '    network_mode: "service:other"',
        '    build: ./ctx',
        '    env_file: e.env',
        '    volumes: ["./data:/data"]',
      ),
      'sub/e.env': 'FROM_BASE_FILE=1\n',
    },
  },
  {
    name: 'extends chain within one file, lists and mappings merged',
    compose: ['compose.yml'],
    files: {
      'compose.yml': lines(
        'services:',
        '  root: {image: r, environment: {A: "1"}, ports: ["80:80"], labels: [l=root]}',
        '  mid: {extends: root, environment: {B: "2"}, ports: ["81:81"], command: mid}',
        '  leaf: {extends: {service: mid}, environment: [A=3], ports: ["80:80"], labels: {l: leaf}}',
      ),
    },
  },
  {
    name: 'extends in an override file of a service of the same override file',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web: {image: nginx, environment: {A: "1"}}'),
      'override.yml': lines('services:', '  tmpl: {image: t, dns: [9.9.9.9]}', '  web: {extends: tmpl, environment: {B: "2"}}'),
    },
  },
  {
    name: 'extends with !reset and !override in the extending service',
    compose: ['compose.yml'],
    files: {
      'compose.yml': lines(
        'services:',
        '  base: {image: b, environment: {A: "1"}, ports: ["80:80"], dns: [x.example]}',
        '  web:',
        '    extends: base',
        '    ports: !reset []',
        '    environment: !override {B: "2"}',
        '    dns: [y.example]',
      ),
    },
  },
  {
    name: 'extends file: the base file extends a third file, paths from each file',
    compose: ['compose.yml'],
    files: {
      'compose.yml': lines('services:', '  web: {extends: {file: one/mid.yml, service: mid}}'),
      'one/mid.yml': lines('services:', '  mid: {extends: {file: ../two/root.yml, service: root}, volumes: ["./mid:/mid"]}'),
      'two/root.yml': lines('services:', '  root: {image: r, build: {context: ., additional_contexts: {x: ./x}}, volumes: ["./root:/root"]}'),
    },
  },
  // --- include ------------------------------------------------------------------------------
  {
    name: 'include (short form): its .env, the parent .env, its paths; a local definition merged over',
    compose: ['compose.yml'],
    files: {
      '.env': 'PARENT_VAR=from-parent-dotenv\n',
      'inc/.env': 'INC_VAR=from-inc-dotenv\n',
      'inc/lib.env': 'L=1\n',
      'inc/ls.txt': 'x',
      'inc/compose.yml': lines(
        'services:',
        '  lib:',
        '    image: lib:${LIBTAG:-none}',
        '    build: ./ctx',
        '    volumes: ["./data:/data"]',
        '    env_file: [lib.env]',
        '    secrets: [ls]',
        '    environment: {FROM_PARENT: "${PARENT_VAR:-unset}", FROM_INC_ENV: "${INC_VAR:-unset}"}',
        'secrets:',
        '  ls: {file: ./ls.txt}',
      ),
      'compose.yml': lines('include:', '  - inc/compose.yml', 'services:', '  web: {extends: lib, image: web}', '  lib:', '    environment: {LOCAL: "1"}'),
    },
  },
  {
    name: 'include (long form): several paths, project_directory, env_file',
    compose: ['compose.yml'],
    env: { KEPT: 'from-environment' },
    files: {
      'my.env': 'T=from-env-file\nKEPT=from-env-file\n',
      'lib/c.yml': lines('services:', '  l:', '    image: l:${T}', '    build: ctx', '    environment: {KEPT: "${KEPT}"}'),
      'lib/c.override.yml': lines('services:', '  l:', '    environment: {OVER: "1"}', '    volumes: ["./v:/v"]'),
      'lib/dir/.keep': '',
      'compose.yml': lines('include:', '  - path: [lib/c.yml, lib/c.override.yml]', '    project_directory: lib/dir', '    env_file: my.env', 'services:', '  s: {image: s}'),
    },
  },
  {
    name: 'include nested, with a config file relative to each project',
    compose: ['compose.yml'],
    files: {
      'a/compose.yml': lines('include: [../b/compose.yml]', 'services:', '  a: {image: a, configs: [ac]}', 'configs:', '  ac: {file: ./a.conf}'),
      'a/a.conf': 'a',
      'b/compose.yml': lines('services:', '  b: {image: b, configs: [bc]}', 'configs:', '  bc: {file: b.conf}'),
      'b/b.conf': 'b',
      'compose.yml': lines('include: [a/compose.yml]', 'services:', '  main: {image: m, depends_on: [a, b]}'),
    },
  },
  {
    name: 'include in an override file',
    compose: B,
    files: {
      'extra/compose.yml': lines('services:', '  extra: {image: e, volumes: ["./x:/x"]}'),
      'compose.yml': lines('services:', '  web: {image: nginx}'),
      'override.yml': lines('include: [extra/compose.yml]', 'services:', '  web: {depends_on: [extra]}'),
    },
  },
  // --- !reset and !override -----------------------------------------------------------------
  {
    name: '!reset in an override file',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    ports: ["8080:80"]', '    environment: {A: "1"}', '    dns: [1.1.1.1]', '    command: echo hi', '  db: {image: pg, build: ./db}'),
      'override.yml': lines('services:', '  web:', '    ports: !reset []', '    environment: !reset {}', '    dns: !reset null', '    command: !reset', '  db:', '    build: !reset'),
    },
  },
  {
    name: '!override in an override file',
    compose: B,
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    ports: ["8080:80", "9000:90"]', '    labels: {x: "1"}', '    volumes: ["./a:/a"]', '    deploy: {resources: {limits: {cpus: "1"}}}'),
      'override.yml': lines('services:', '  web:', '    ports: !override ["7000:70"]', '    labels: !override {y: "2"}', '    volumes: !override', '      - ./b:/b', '    deploy: !override {replicas: 2}'),
    },
  },
  {
    name: '!reset in the first file, and through a merge key',
    compose: ['compose.yml'],
    files: {
      'compose.yml': lines('x-defaults: &defaults', '  image: nginx', '  restart: always', 'services:', '  web:', '    <<: *defaults', '    restart: !reset', '    environment: !reset {A: "${NEVER:?not interpolated}"}'),
    },
  },
  {
    name: '!override on a service-level mapping in a third file',
    compose: ['compose.yml', 'override.yml', 'late.yml'],
    files: {
      'compose.yml': lines('services:', '  web:', '    image: nginx', '    environment: {A: "1", B: "2"}'),
      'override.yml': lines('services:', '  web:', '    environment: {C: "3"}'),
      'late.yml': lines('services:', '  web:', '    environment: !override {D: "4"}', '    image: !override httpd'),
    },
  },
  // --- what Compose refuses -----------------------------------------------------------------
  {
    name: 'refused: extends in an override file of a service only the first file has',
    compose: B,
    files: { 'compose.yml': lines('services:', '  base: {image: b}'), 'override.yml': lines('services:', '  web: {extends: base}') },
    refused: /override\.yml': service 'base' \(named by 'extends'\) does not exist in this file/,
  },
  {
    name: 'refused: extends of a base whose depends_on names a missing service',
    compose: ['compose.yml'],
    files: { 'compose.yml': lines('services:', '  web: {extends: {file: base.yml, service: base}}'), 'base.yml': lines('services:', '  base: {image: b, depends_on: [db]}', '  db: {image: d}') },
    refused: /service 'web' refers to service 'db' in 'depends_on', which is not defined/,
  },
  {
    name: 'refused: network_mode of a service that does not exist',
    compose: ['compose.yml'],
    files: { 'compose.yml': lines('services:', '  web: {image: w, network_mode: "service:ghost"}') },
    refused: /service 'web' refers to service 'ghost' in 'network_mode'/,
  },
  {
    name: 'refused: an include cycle',
    compose: ['compose.yml'],
    files: { 'compose.yml': lines('include: [b.yml]', 'services:', '  a: {image: a}'), 'b.yml': lines('include: [compose.yml]', 'services:', '  b: {image: b}') },
    refused: /makes a cycle/,
  },
  {
    name: 'refused: a mapping over a list',
    compose: B,
    files: { 'compose.yml': lines('services:', '  web: {image: w, healthcheck: {test: [CMD, a]}}'), 'override.yml': lines('services:', '  web: {healthcheck: [CMD, b]}') },
    refused: /override\.yml': 'services\.web\.healthcheck' is a list here but a mapping in the files before/,
  },
  {
    name: 'refused: a repeated security_opt within one file',
    compose: ['compose.yml'],
    files: { 'compose.yml': lines('services:', '  web: {image: w, security_opt: [a, a]}') },
    refused: /'services\.web\.security_opt' lists "a" twice/,
  },
  {
    name: 'refused: an include of a file that does not exist',
    compose: ['compose.yml'],
    files: { 'compose.yml': lines('include: [nope.yml]', 'services:', '  a: {image: a}') },
    refused: /include\[0\]: '.*nope\.yml' does not exist/,
  },
  {
    name: 'refused: include that is not a list',
    compose: ['compose.yml'],
    files: { 'compose.yml': lines('include: {path: x.yml}', 'services:', '  a: {image: a}') },
    refused: /'include' must be a list/,
  },
];

const writeCase = (c: Case, i: number) => writeProject(work, c, i);
const dirs = CASES.map(writeCase);
let binary = '';
let oracles: Oracle[] = [];

describe('the loader agrees with Compose v2 (`docker compose config`)', () => {
  before(async () => {
    binary = await composeV2Binary();
    oracles = await pool(CASES, 2, (c, i) => composeConfig(binary, dirs[i], c.compose, c.env ?? {}, c.profiles));
  });

  test('the corpus has at least 40 projects', () => assert.ok(CASES.length >= 40, `${CASES.length} cases`));

  CASES.forEach((c, i) => {
    test(c.name, () => assertAgreesWithCompose(c, dirs[i], oracles[i]));
  });
});

describe('relative paths in the rendered file', () => {
  test('secrets, configs and bind mounts point where Compose points when it reads the rendered file from elsewhere', async () => {
    const c: Case = {
      name: 'rendered paths',
      compose: ['compose.yml'],
      files: {
        'secrets/db.txt': 'pw',
        'conf/app.conf': 'x',
        'compose.yml': lines('services:', '  app:', '    image: "registry.example.com/app:1"', '    secrets: [db]', '    configs: [app]', '    volumes: ["./data:/data"]', 'secrets:', '  db: {file: ./secrets/db.txt}', 'configs:', '  app: {file: conf/app.conf}'),
      },
    };
    const dir = writeCase(c, CASES.length);
    const original = await composeConfig(binary || (await composeV2Binary()), dir, c.compose, {});
    assert.ok(original.ok, original.stderr);
    const rendered = renderCompose(loadCompose([path.join(dir, 'compose.yml')], { env: {} }), { allowUnpinned: true });
    const elsewhere = fs.mkdtempSync(path.join(work, 'rendered-'));
    fs.writeFileSync(path.join(elsewhere, 'rendered.yml'), rendered.text);
    const again = await composeConfig(binary, elsewhere, ['rendered.yml'], {});
    assert.ok(again.ok, again.stderr);
    const pick = (d: Record<string, unknown>) => ({ secrets: d.secrets, configs: d.configs, volumes: (d.services as Record<string, Record<string, unknown>>).app.volumes });
    const files = (d: Record<string, unknown>) => Object.values({ ...(d.secrets as object), ...(d.configs as object) }).map((e) => (e as { file: string }).file);
    assert.deepStrictEqual(files(again.data!), files(original.data!));
    for (const f of files(again.data!)) assert.ok(fs.existsSync(f), `${f} exists`);
    assert.deepStrictEqual(pick(again.data!).volumes, pick(original.data!).volumes);
  });
});
